"""Compliance statistics: met / breached counts and percentiles per window, by event time.

Fed with outcome records (and retractions of outcomes); a clock counts once,
at its latest revision, in the hour, day and month (UTC) in which it stopped.
Windows close by watermark once `lateness` has passed their end; the record
emitted then carries counts, the compliance ratio, p50/p90/p99 of the counted
seconds and the service credit the customer's tiers give for that ratio.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from sla.events import format_ts, parse_ts

__all__ = ["Compliance", "window_bounds", "summarise", "ratio", "WINDOWS"]

WINDOWS = ("hour", "day", "month")
_HOUR = 3_600_000
_DAY = 86_400_000

Dims = tuple[str, str, str, str]  # service, customer, priority, metric
WindowKey = tuple[str, str, str, str, str, int]  # dims + window kind + window start
CreditLookup = Callable[[str, str, float], float]  # (service, customer, ratio) -> credit


def window_bounds(kind: str, ms: int) -> tuple[int, int]:
    """The UTC window of `kind` holding the instant `ms`: [start, end) in epoch ms."""
    if kind == "hour":
        start = ms - ms % _HOUR
        return start, start + _HOUR
    if kind == "day":
        start = ms - ms % _DAY
        return start, start + _DAY
    return _month_bounds(ms - ms % _DAY)  # a month is whole UTC days: its day decides


@lru_cache(maxsize=1024)
def _month_bounds(day_start: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(day_start / 1000, UTC)
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return int(first.timestamp()) * 1000, int(following.timestamp()) * 1000


def _windows_of(ms: int) -> tuple[tuple[str, int, int], ...]:
    """(kind, start, end) of each window holding `ms`, in WINDOWS order."""
    hour = ms - ms % _HOUR
    day = ms - ms % _DAY
    month = _month_bounds(day)
    return ("hour", hour, hour + _HOUR), ("day", day, day + _DAY), ("month", *month)


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


class Compliance:
    """Open windows and the outcomes counted in them."""

    def __init__(self, credit_for: CreditLookup, lateness_ms: int) -> None:
        self._credit_for = credit_for
        self._lateness = lateness_ms
        # window -> clock key -> (met?, counted seconds)
        self._windows: dict[WindowKey, dict[str, tuple[bool, float]]] = {}
        self._ends: list[tuple[int, WindowKey]] = []  # heap of (window end, window)
        # clock key -> (dims, stopped_at ms) of the outcome counted now
        self._counted: dict[str, tuple[Dims, int]] = {}
        self.late_outcomes = 0  # outcomes for windows already closed: not counted
        # Windows ending at or before this instant are closed: the watermark less the
        # lateness, or the watermark itself at the end of input.
        self._horizon = -(2**62)

    def observe(self, record: dict) -> None:
        """Count an outcome record, or withdraw the outcome a retraction withdraws."""
        kind = record["kind"]
        if kind == "retraction":
            if record.get("retracts_kind") == "outcome":
                clock = record["retracts"].rsplit(":outcome:", 1)[0]
                self._withdraw(clock)
            return
        if kind != "outcome":
            return
        clock = f"{record['ticket_id']}:{record['metric']}:{record['cycle']}"
        if clock in self._counted:  # a revision: the earlier outcome no longer counts
            self._withdraw(clock)
        if record["status"] == "cancelled":
            return
        stopped_ms = parse_ts(record["stopped_at"])
        dims: Dims = (record["service"], record["customer"], record["priority"], record["metric"])
        entry = (record["status"] == "met", record["elapsed_seconds"])
        for window, start, end in _windows_of(stopped_ms):
            key: WindowKey = (*dims, window, start)
            bucket = self._windows.get(key)
            if bucket is None:
                if self._closed(end):
                    self.late_outcomes += 1
                    continue
                bucket = self._windows[key] = {}
                heapq.heappush(self._ends, (end, key))
            bucket[clock] = entry
        self._counted[clock] = (dims, stopped_ms)

    def close_until(self, watermark: int, final: bool = False) -> list[dict]:
        """Close the windows whose end plus lateness has passed (their end, when `final`)."""
        self._horizon = watermark if final else watermark - self._lateness
        ends = self._ends
        if not ends or ends[0][0] > self._horizon:
            return []  # the usual case: the watermark moved within the open windows
        records: list[dict] = []
        while ends and ends[0][0] <= self._horizon:
            end, key = heapq.heappop(ends)
            bucket = self._windows.pop(key)
            if bucket:
                met = sum(1 for ok, _ in bucket.values() if ok)
                credit = self._credit_for(key[0], key[1], ratio(met, len(bucket)))
                records.append(summarise(key, end, bucket, credit))
            if key[4] == "month":
                for clock in bucket:
                    self._counted.pop(clock, None)
        return records

    def _closed(self, end: int) -> bool:
        return end <= self._horizon

    def _withdraw(self, clock: str) -> None:
        counted = self._counted.pop(clock, None)
        if counted is None:
            return
        dims, stopped_ms = counted
        for window, start, _ in _windows_of(stopped_ms):
            bucket = self._windows.get((*dims, window, start))
            if bucket is not None:
                bucket.pop(clock, None)


def summarise(key: WindowKey, end: int, bucket: Mapping[str, Sequence], credit: float) -> dict:
    """The compliance record of a closed window: `bucket` maps clock -> (met?, seconds)."""
    service, customer, priority, metric, window, start = key
    met = sum(1 for entry in bucket.values() if entry[0])
    total = len(bucket)
    seconds = sorted(entry[1] for entry in bucket.values())
    return {
        "id": f"{service}:{customer}:{priority}:{metric}:{window}:{format_ts(start)}",
        "kind": "compliance",
        "service": service, "customer": customer, "priority": priority, "metric": metric,
        "window": window, "window_start": format_ts(start), "window_end": format_ts(end),
        "met": met, "breached": total - met, "total": total, "compliance_ratio": ratio(met, total),
        "p50_seconds": _percentile(seconds, 0.5), "p90_seconds": _percentile(seconds, 0.9),
        "p99_seconds": _percentile(seconds, 0.99), "credit": credit,
    }


def ratio(met: int, total: int) -> float:
    return met / total if total else 1.0
