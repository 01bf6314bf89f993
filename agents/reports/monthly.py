"""A customer's monthly SLA report, as plain data, from compliance and breach records.

`MonthlyReport(customer, "2026-11")` is fed records (from the compliance and breach topics,
or from `slamon replay` output) with `add`, keeps those of the customer and the month, and
`build()` gives the report: per service and priority (and metric), compliance, breaches
with their tickets, percentiles, the credit owed and CSAT when the records carry it, plus
the daily series the trend chart draws.

The figures are the records' own: the monthly window's counts, percentiles and credit as
the monitor published them. While a month's window has not closed yet (the month is not
over, or its lateness has not passed), a row is summed from its closed daily windows and
marked provisional: percentiles and credits are only final in the monthly record. A
record is kept by id (the latest wins), so reading a topic twice changes nothing; a
breach withdrawn by a retraction is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sla.compliance import ratio
from sla.csat import CSAT_FIELDS, share
from sla.errors import SlamonError
from sla.events import parse_ts

__all__ = ["MonthlyReport", "month_bounds", "PeriodError", "CSAT_FIELDS", "csat_of",
           "daily_series"]

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_BREACH_FIELDS = ("id", "ticket_id", "service", "priority", "metric", "target_seconds",
                  "elapsed_seconds", "started_at", "deadline", "breached_at")


class PeriodError(SlamonError):
    """A report period that is not a month written YYYY-MM."""


def month_bounds(period: str) -> tuple[int, int]:
    """"2026-11" -> [start, end) of that UTC month in epoch ms; PeriodError if malformed."""
    match = _MONTH.fullmatch(period)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise PeriodError(f"--period {period!r} is not a month: use YYYY-MM, e.g. 2026-11")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()) * 1000, int(end.timestamp()) * 1000


class MonthlyReport:
    """The records of one customer and month, read from anywhere, and the report they make."""

    def __init__(self, customer: str, period: str) -> None:
        self.customer = customer
        self.period = period
        self.start, self.end = month_bounds(period)
        self._month: dict[str, dict] = {}  # compliance id -> monthly record
        self._days: dict[str, dict] = {}  # compliance id -> daily record in the month
        self._breaches: dict[str, dict] = {}
        self._retracted: set[str] = set()
        self.records = 0  # records read, of every customer
        self.customers_in_period: set[str] = set()  # who has figures this month

    def add(self, record: Any) -> None:
        """Take one record; other customers' and months', and other kinds, are skipped."""
        if not isinstance(record, dict):
            return
        self.records += 1
        kind = record.get("kind")
        if kind == "compliance":
            self._window(record)
        elif kind == "breach":
            self._breach(record)
        elif kind == "retraction" and record.get("retracts_kind") == "breach":
            withdrawn = str(record.get("retracts"))
            self._retracted.add(withdrawn)
            self._breaches.pop(withdrawn, None)

    def _window(self, record: dict) -> None:
        window = record.get("window")
        if window not in ("month", "day"):
            return
        try:
            start = parse_ts(record["window_start"])
        except (KeyError, SlamonError):
            return
        if not self.start <= start < self.end:
            return
        customer = record.get("customer")
        self.customers_in_period.add(str(customer))
        if customer != self.customer:
            return
        (self._month if window == "month" else self._days)[str(record["id"])] = record

    def _breach(self, record: dict) -> None:
        try:
            at = parse_ts(record["breached_at"])
        except (KeyError, SlamonError):
            return
        if not self.start <= at < self.end:
            return
        self.customers_in_period.add(str(record.get("customer")))
        if record.get("customer") != self.customer or record.get("id") in self._retracted:
            return
        self._breaches[str(record["id"])] = record

    @property
    def empty(self) -> bool:
        return not (self._month or self._days or self._breaches)

    def build(self, generated_at: str, source: str) -> dict[str, Any]:
        """The report as plain data (JSON types), what every format renders."""
        rows = self._rows()
        breaches = sorted(self._breaches.values(),
                          key=lambda r: (str(r.get("breached_at")), str(r.get("id"))))
        services = sorted({row["service"] for row in rows}
                          | {str(b.get("service")) for b in breaches})
        days = daily_series(self._days.values())
        return {
            "customer": self.customer,
            "period": self.period,
            "generated_at": generated_at,
            "source": source,
            "complete": all(not row["provisional"] for row in rows),
            "totals": {**_totals(rows), **csat_of(rows)},
            "services": [_service(service, [r for r in rows if r["service"] == service],
                                  [b for b in breaches if b.get("service") == service],
                                  days.get(service, []))
                         for service in services],
        }

    def _rows(self) -> list[dict[str, Any]]:
        """One row per (service, priority, metric): the monthly record, else its days."""
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for record in self._month.values():
            key = (str(record["service"]), str(record["priority"]), str(record["metric"]))
            rows[key] = _row(record, provisional=False)
        summed: dict[tuple[str, str, str], list[dict]] = {}
        for record in self._days.values():
            key = (str(record["service"]), str(record["priority"]), str(record["metric"]))
            if key not in rows:
                summed.setdefault(key, []).append(record)
        for key, days in summed.items():
            rows[key] = _summed(key, days)
        return [rows[key] for key in sorted(rows)]


def _row(record: dict, provisional: bool) -> dict[str, Any]:
    row = {"service": str(record["service"]), "priority": str(record["priority"]),
           "metric": str(record["metric"]), "provisional": provisional}
    for field in ("met", "breached", "total", "compliance_ratio", "p50_seconds",
                  "p90_seconds", "p99_seconds", "credit"):
        row[field] = record.get(field)
    if record.get("surveys") is not None:  # a record of a release that counts surveys
        for field in CSAT_FIELDS:
            row[field] = record.get(field)
    return row


def _summed(key: tuple[str, str, str], days: list[dict]) -> dict[str, Any]:
    """A month not closed yet: its closed days' counts (no percentiles, no credit yet)."""
    met = sum(int(day.get("met") or 0) for day in days)
    total = sum(int(day.get("total") or 0) for day in days)
    row: dict[str, Any] = {"service": key[0], "priority": key[1], "metric": key[2],
                           "provisional": True, "met": met, "breached": total - met,
                           "total": total, "compliance_ratio": ratio(met, total),
                           "p50_seconds": None, "p90_seconds": None, "p99_seconds": None,
                           "credit": None}
    counts = ("surveys", "positive", "surveys_met", "positive_met", "surveys_breached",
              "positive_breached")
    if any(day.get("surveys") is not None for day in days):
        for field in counts:
            row[field] = sum(int(day.get(field) or 0) for day in days)
        row["csat_ratio"] = share(row["positive"], row["surveys"])
        row["csat_met_ratio"] = share(row["positive_met"], row["surveys_met"])
        row["csat_breached_ratio"] = share(row["positive_breached"], row["surveys_breached"])
        scored = [(int(day.get("surveys") or 0), day.get("score_mean")) for day in days]
        weight = sum(n for n, mean in scored if mean is not None)
        row["score_mean"] = (sum(n * float(mean) for n, mean in scored if mean is not None)
                             / weight) if weight else None
    return row


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    met = sum(int(row["met"] or 0) for row in rows)
    total = sum(int(row["total"] or 0) for row in rows)
    credits = [float(row["credit"]) for row in rows if row["credit"] is not None]
    return {"met": met, "breached": total - met, "total": total,
            "compliance_ratio": ratio(met, total),
            "credit": max(credits, default=0.0) if credits else None}


def _service(service: str, rows: list[dict[str, Any]], breaches: list[dict],
             days: list[dict[str, Any]]) -> dict[str, Any]:
    """A service's rows, its breaches (tickets), its daily series and the credit owed.

    The credit of the month is the largest any of its rows (priority, metric) carries, as
    the portal counts it.
    """
    return {"service": service, **_totals(rows), **csat_of(rows), "rows": rows,
            "breaches": [{f: b.get(f) for f in _BREACH_FIELDS} for b in breaches],
            "daily": days}


def daily_series(records: Iterable[dict]) -> dict[str, list[dict[str, Any]]]:
    """service -> one point per day with closed windows: met, total, ratio, CSAT if any."""
    by_day: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        by_day.setdefault((str(record["service"]), str(record["window_start"])[:10]),
                          []).append(record)
    series: dict[str, list[dict[str, Any]]] = {}
    for (service, day), windows in sorted(by_day.items()):
        met = sum(int(w.get("met") or 0) for w in windows)
        total = sum(int(w.get("total") or 0) for w in windows)
        series.setdefault(service, []).append({
            "day": day, "met": met, "total": total, "compliance_ratio": ratio(met, total),
            **csat_of(windows)})
    return series


def csat_of(windows: Iterable[dict]) -> dict[str, Any]:
    """Surveys, positive and CSAT of a set of windows (rows), each survey counted once.

    A survey is counted in the window of every metric of its (service, customer, priority):
    so per priority the surveys are taken from one metric's window (the one with the most),
    then summed over priorities.
    """
    most: dict[tuple[str, str], tuple[int, int]] = {}  # (service, priority) -> surveys, positive
    for window in windows:
        surveys = int(window.get("surveys") or 0)
        key = (str(window.get("service")), str(window.get("priority")))
        if surveys > most.get(key, (0, 0))[0]:
            most[key] = (surveys, int(window.get("positive") or 0))
    surveys = sum(n for n, _ in most.values())
    positive = sum(p for _, p in most.values())
    return {"surveys": surveys, "positive": positive,
            "csat_ratio": positive / surveys if surveys else None}
