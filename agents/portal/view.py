"""What the portal shows, per customer: compliance windows, breaches, credits owed.

`PortalView` is fed the records of `<prefix>compliance` and `<prefix>breaches` (by
`agents.portal.feed`, which reads both topics in full on every worker, so any worker can
answer for any customer) and keeps the latest record per id: a compliance id names one
window of one (service, customer, priority, metric), and a breach withdrawn by a
`retraction` (retracts_kind=breach) is dropped. `report(customer, tiers)` builds the
plain dict that the JSON API returns and the HTML page renders. No Kafka, no I/O here.

Memory is bounded: per customer, windows older than a horizon behind the newest one of
their kind and breaches beyond the most recent `max_breaches` are forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from agents.reports.monthly import CSAT_FIELDS, csat_of, daily_series
from sla.events import parse_ts
from sla.model import CreditTier

__all__ = ["PortalView", "SHOWN_WINDOWS", "WINDOW_KINDS"]

WINDOW_KINDS = ("month", "day", "hour")  # longest first: the page's order
# Windows per kind shown on the page (and kept in memory, with some slack).
SHOWN_WINDOWS = {"month": 12, "day": 31, "hour": 24}
_KEEP_MS = {"month": 400 * 86_400_000, "day": 100 * 86_400_000, "hour": 7 * 86_400_000}
_PRUNE_EVERY = 4096
TiersLookup = Callable[[str, str], Sequence[CreditTier]]  # (customer, service) -> tiers


class PortalView:
    """Latest compliance windows and live breaches, per customer."""

    def __init__(self, max_breaches: int = 1000, shown_breaches: int = 50) -> None:
        self.max_breaches = max_breaches
        self.shown_breaches = shown_breaches
        self._windows: dict[str, dict[str, dict]] = {}  # customer -> compliance id -> record
        self._breaches: dict[str, dict[str, dict]] = {}  # customer -> breach id -> record
        self._retracted: dict[str, None] = {}  # breach ids withdrawn (ordered, bounded)
        self._newest: dict[str, int] = {}  # window kind -> newest window start seen (ms)
        self._since_prune = 0
        self.records = 0  # records applied
        self.skipped = 0  # messages that were not records
        self.loaded = False  # set by the feed once both topics were read to their end

    # -- feeding -------------------------------------------------------------------------------
    def apply_bytes(self, value: bytes | None) -> None:
        """Apply one message value; anything that is not a JSON record is counted and skipped."""
        try:
            record = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("customer"), str):
            self.skipped += 1
            return
        self.apply(record)

    def apply(self, record: dict) -> None:
        kind = record.get("kind")
        customer = record.get("customer")
        record_id = record.get("id")
        if not isinstance(customer, str) or not isinstance(record_id, str):
            self.skipped += 1
            return
        self.records += 1
        if kind == "compliance":
            self._add_window(customer, record_id, record)
        elif kind == "breach" and record_id not in self._retracted:
            breaches = self._breaches.setdefault(customer, {})
            breaches[record_id] = record
            if len(breaches) > self.max_breaches * 1.1:
                _keep_newest(breaches, self.max_breaches)
        elif kind == "retraction" and record.get("retracts_kind") == "breach":
            withdrawn = str(record.get("retracts"))
            self._breaches.get(customer, {}).pop(withdrawn, None)
            self._retracted[withdrawn] = None
            if len(self._retracted) > 100_000:
                del self._retracted[next(iter(self._retracted))]

    def _add_window(self, customer: str, record_id: str, record: dict) -> None:
        try:
            start = parse_ts(record["window_start"])
            window = str(record["window"])
        except (KeyError, TypeError, ValueError):
            self.skipped += 1
            return
        self._windows.setdefault(customer, {})[record_id] = record
        if start > self._newest.get(window, start - 1):
            self._newest[window] = start
        self._since_prune += 1
        if self._since_prune >= _PRUNE_EVERY:
            self.prune()

    def prune(self) -> None:
        """Forget windows older than their kind's horizon behind the newest window seen."""
        self._since_prune = 0
        horizon = {kind: newest - _KEEP_MS.get(kind, _KEEP_MS["month"])
                   for kind, newest in self._newest.items()}
        for windows in self._windows.values():
            old = [rid for rid, r in windows.items()
                   if parse_ts(r["window_start"]) < horizon.get(r["window"], 0)]
            for rid in old:
                del windows[rid]

    # -- reading -------------------------------------------------------------------------------
    def customers(self) -> list[str]:
        return sorted(set(self._windows) | set(self._breaches))

    def report(self, customer: str, tiers_for: TiersLookup) -> dict[str, Any]:
        """The customer's page as plain data: services with their windows, credits, breaches."""
        windows = list(self._windows.get(customer, {}).values())
        breaches = sorted(self._breaches.get(customer, {}).values(),
                          key=lambda r: (str(r.get("breached_at")), str(r["id"])), reverse=True)
        services = sorted({str(r["service"]) for r in windows}
                          | {str(r.get("service")) for r in breaches})
        months = sorted({str(r["window_start"])[:7] for r in windows
                         if r["window"] in ("day", "month")}, reverse=True)
        trend_month = months[0] if months else None
        trends = daily_series(r for r in windows if r["window"] == "day"
                              and str(r["window_start"])[:7] == trend_month)
        return {
            "customer": customer,
            "loaded": self.loaded,
            "services": [{**_service(s, [r for r in windows if r["service"] == s],
                                     tiers_for(customer, s)), "trend": trends.get(s, [])}
                         for s in services],
            "breach_count": len(breaches),
            "breaches": [_breach_row(r) for r in breaches[:self.shown_breaches]],
            "trend_month": trend_month,  # the newest month with daily windows: the charts'
            "months": months,  # months with daily or monthly windows: the report links'
        }

    def records_of(self, customer: str) -> list[dict]:
        """Every compliance window and breach kept for `customer` (for a monthly report)."""
        return [*self._windows.get(customer, {}).values(),
                *self._breaches.get(customer, {}).values()]


def _keep_newest(breaches: dict[str, dict], count: int) -> None:
    ordered = sorted(breaches, key=lambda rid: str(breaches[rid].get("breached_at")))
    for rid in ordered[:len(ordered) - count]:
        del breaches[rid]


_WINDOW_FIELDS = ("id", "priority", "metric", "window", "window_start", "window_end", "met",
                  "breached", "total", "compliance_ratio", "p50_seconds", "p90_seconds",
                  "p99_seconds", "credit")
_BREACH_FIELDS = ("id", "ticket_id", "service", "priority", "metric", "target_seconds",
                  "elapsed_seconds", "started_at", "deadline", "breached_at", "detected_at")


def _service(service: str, records: list[dict], tiers: Sequence[CreditTier]) -> dict[str, Any]:
    by_kind: dict[str, list[dict]] = {}
    for kind in WINDOW_KINDS:
        rows = [r for r in records if r["window"] == kind]
        starts = sorted({r["window_start"] for r in rows}, key=parse_ts, reverse=True)
        shown = set(starts[:SHOWN_WINDOWS[kind]])
        rows = [r for r in rows if r["window_start"] in shown]
        rows.sort(key=lambda r: (-parse_ts(r["window_start"]), str(r["priority"]),
                                 str(r["metric"])))
        if rows:
            by_kind[kind] = [_window_row(r) for r in rows]
    periods = _periods(by_kind)
    return {
        "service": service,
        "credit_tiers": [{"below": t.below, "credit": t.credit}
                         for t in sorted(tiers, key=lambda t: -t.below)],
        "latest": periods[0] if periods else None,
        "credits_owed": [p for p in periods if p["credit"] > 0],
        "windows": by_kind,
    }


def _window_row(record: dict) -> dict[str, Any]:
    """A window as the page lists it; with its CSAT fields when it counted surveys."""
    fields = (*_WINDOW_FIELDS, *CSAT_FIELDS) if record.get("surveys") else _WINDOW_FIELDS
    return {f: record.get(f) for f in fields}


def _periods(by_kind: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Each period of the longest window kind reported, newest first: overall ratio, credit.

    A period's credit is the largest that any of its records (one per priority and metric,
    each priced by the customer's tiers) carries.
    """
    for kind in WINDOW_KINDS:
        rows = by_kind.get(kind)
        if not rows:
            continue
        periods: dict[str, list[dict]] = {}
        for row in rows:  # newest first already
            periods.setdefault(row["window_start"], []).append(row)
        found = []
        for start, period in periods.items():
            met = sum(int(r["met"] or 0) for r in period)
            total = sum(int(r["total"] or 0) for r in period)
            csat = csat_of(period)
            found.append({"window": kind, "window_start": start,
                          "window_end": period[0]["window_end"], "met": met, "total": total,
                          "compliance_ratio": met / total if total else 1.0,
                          "credit": max(float(r["credit"] or 0.0) for r in period),
                          **(csat if csat["surveys"] else {})})  # CSAT once surveys count
        return found
    return []


def _breach_row(record: dict) -> dict[str, Any]:
    return {f: record.get(f) for f in _BREACH_FIELDS}
