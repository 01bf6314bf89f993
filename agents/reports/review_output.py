"""`slamon review`'s output: a `sla.review.Review` as a table, JSON, CSV or an HTML page.

`review_data` is the one plain-data form (what `--format json` prints); the HTML page is
rendered from it by a template, and the table and CSV read the same fields, so that the
four formats never disagree. JSON and CSV list every row and every ticket; the table
lists the rows that changed and the first tickets of each; the page lists every row with
the changed ones marked, the tickets in a disclosure (no script).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from agents.reports.render import percent, render_page
from sla.events import format_ts
from sla.review import Review, RowChange, Side

__all__ = ["Provenance", "Format", "render", "review_data"]

Format = Literal["table", "json", "csv", "html"]
SHOWN_TICKETS = 10  # per row and direction, in the table


@dataclass(frozen=True, slots=True)
class Provenance:
    """What was compared: the two policy files (and versions) and the history read."""

    old_file: str
    old_version: int
    new_file: str
    new_version: int
    events_file: str
    lines: int
    after_period: int  # events stamped after --to, not replayed


def render(review: Review, provenance: Provenance, fmt: str) -> str:
    """The review in format `fmt` (table, json, csv, html), as text ending in a newline."""
    data = review_data(review, provenance)
    if fmt == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        return _csv(data)
    if fmt == "html":
        return render_page("review.html", review=data)
    return _table(data)


def review_data(review: Review, provenance: Provenance) -> dict[str, Any]:
    """The review as plain data (JSON types only)."""
    period = review.period
    return {
        "passes": review.passes,
        "old": {"file": provenance.old_file, "version": provenance.old_version},
        "new": {"file": provenance.new_file, "version": provenance.new_version},
        "events": {"file": provenance.events_file, "lines": provenance.lines,
                   "after_period": provenance.after_period},
        "period": {"from": None if period.start is None else format_ts(period.start),
                   "to": None if period.end is None else format_ts(period.end)},
        "terms": [{"topic": t.topic, "where": t.where, "change": t.change, "old": t.old,
                   "new": t.new} for t in review.terms],
        "customers": [{"customer": c.customer, "old": _side(c.old), "new": _side(c.new),
                       "breaches_added": c.added, "breaches_removed": c.removed,
                       "rows_below_objective": c.below_objective} for c in review.customers],
        "rows": [_row(row) for row in review.rows],
        "credits": [{"customer": c.customer, "service": c.service, "priority": c.priority,
                     "metric": c.metric, "month": c.month, "old": c.old, "new": c.new}
                    for c in review.credits],
        "rejected": [{"reason": reason, "old": old, "new": new}
                     for reason, old, new in review.rejected],
    }


def _side(side: Side) -> dict[str, Any]:
    return {"met": side.met, "total": side.total, "compliance_ratio": side.ratio}


def _row(row: RowChange) -> dict[str, Any]:
    return {"customer": row.customer, "service": row.service, "priority": row.priority,
            "metric": row.metric, "objective": row.objective, "old": _side(row.old),
            "new": _side(row.new), "changed": row.changed,
            "breaches_added": list(row.added), "breaches_removed": list(row.removed),
            "lowered_below_objective": row.lowered_below_objective}


# -- CSV ----------------------------------------------------------------------------------------

CSV_COLUMNS = ("section", "customer", "service", "priority", "metric", "month", "objective",
               "old_met", "old_total", "old_compliance", "new_met", "new_total",
               "new_compliance", "breaches_added", "breaches_removed",
               "lowered_below_objective", "old_credit", "new_credit", "topic", "where",
               "old_value", "new_value")


def _csv(data: dict[str, Any]) -> str:
    """One table: `section` says what a line is (term, row, credit); other columns are empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for term in data["terms"]:
        writer.writerow({"section": "term", "topic": term["topic"], "where": term["where"],
                         "old_value": term["old"], "new_value": term["new"]})
    for row in data["rows"]:
        writer.writerow({
            "section": "row", **{k: row[k] for k in ("customer", "service", "priority", "metric")},
            "objective": row["objective"],
            "old_met": row["old"]["met"], "old_total": row["old"]["total"],
            "old_compliance": row["old"]["compliance_ratio"],
            "new_met": row["new"]["met"], "new_total": row["new"]["total"],
            "new_compliance": row["new"]["compliance_ratio"],
            "breaches_added": " ".join(row["breaches_added"]),
            "breaches_removed": " ".join(row["breaches_removed"]),
            "lowered_below_objective": row["lowered_below_objective"]})
    for credit in data["credits"]:
        writer.writerow({"section": "credit",
                         **{k: credit[k] for k in ("customer", "service", "priority", "metric",
                                                   "month")},
                         "old_credit": credit["old"], "new_credit": credit["new"]})
    return out.getvalue()


# -- the table ----------------------------------------------------------------------------------

def _table(data: dict[str, Any]) -> str:
    lines = [f"Policy review: {data['old']['file']} (version {data['old']['version']}) -> "
             f"{data['new']['file']} (version {data['new']['version']})",
             f"History: {data['events']['file']}, {data['events']['lines']:,} lines"
             + _period_text(data)]
    lines += ["", f"Terms changed ({len(data['terms'])})"]
    lines += _columns([(t["topic"], t["where"], _value(t["old"]), "->", _value(t["new"]))
                       for t in data["terms"]]) or ["  none"]
    lines += ["", "Customers"]
    lines += _columns([("customer", "old", "new", "breaches +", "breaches -", "below objective")]
                      + [(c["customer"], _ratio(c["old"]), _ratio(c["new"]),
                          str(c["breaches_added"]), str(c["breaches_removed"]),
                          str(c["rows_below_objective"])) for c in data["customers"]]) \
        if data["customers"] else ["  none in the period"]
    changed = [row for row in data["rows"] if row["changed"]]
    lines += ["", f"Changed rows ({len(changed)} of {len(data['rows'])})"]
    if changed:
        lines += _columns(
            [("customer", "service", "priority", "metric", "old", "new", "objective", "")]
            + [(r["customer"], r["service"], r["priority"], r["metric"], _ratio(r["old"]),
                _ratio(r["new"]), percent(r["objective"]),
                "BELOW OBJECTIVE" if r["lowered_below_objective"] else "")
               for r in changed])
        for row in changed:
            for sign, key in (("+", "breaches_added"), ("-", "breaches_removed")):
                if row[key]:
                    lines.append(f"  {sign} {row['customer']}/{row['service']}/{row['priority']}"
                                 f"/{row['metric']}: {_tickets(row[key])}")
    credits = [c for c in data["credits"] if c["old"] != c["new"]]
    lines += ["", f"Credits changed ({len(credits)})"]
    lines += _columns([(c["customer"], c["service"], c["priority"], c["metric"], c["month"],
                        percent(c["old"]), "->", percent(c["new"])) for c in credits]) \
        or ["  none"]
    rejected = [r for r in data["rejected"] if r["old"] or r["new"]]
    if rejected:
        lines += ["", "Rejected events (old -> new)"]
        lines += _columns([(r["reason"], str(r["old"]), "->", str(r["new"])) for r in rejected])
    failures = [r for r in data["rows"] if r["lowered_below_objective"]]
    lines.append("")
    lines.append("Verdict: passes: no customer's compliance is lowered below its objective"
                 if not failures else
                 f"Verdict: FAILS: {len(failures)} rows lowered below their objective")
    return "\n".join(lines) + "\n"


def _period_text(data: dict[str, Any]) -> str:
    start, end = data["period"]["from"], data["period"]["to"]
    if start is None and end is None:
        return ", the whole history"
    text = f", period {start or 'start'} to {end or 'end'}"
    after = data["events"]["after_period"]
    return text + (f" ({after:,} later events not replayed)" if after else "")


def _value(value: str | None) -> str:
    return "(not set)" if value is None else value


def _ratio(side: dict[str, Any]) -> str:
    return f"{percent(side['compliance_ratio'])} ({side['met']}/{side['total']})"


def _tickets(tickets: list[str]) -> str:
    shown = ", ".join(tickets[:SHOWN_TICKETS])
    more = len(tickets) - SHOWN_TICKETS
    return f"{shown} and {more} more" if more > 0 else shown


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows of cells, left-aligned in columns, indented by two spaces."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip() for row in rows]
