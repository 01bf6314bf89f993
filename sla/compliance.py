"""Compliance statistics: met / breached counts and percentiles per window, by event time.

Fed with outcome records (and retractions of outcomes); a clock counts once,
at its latest revision, in the hour, day and month (UTC) in which it stopped.
Windows close by watermark once `lateness` has passed their end; the record
emitted then carries counts, the compliance ratio, p50/p90/p99 of the counted
seconds and the service credit the customer's tiers give for that ratio.

The rules live here once, in `Compliance`; the state they keep goes through a
`WindowStore`: one entry per (window, clock) and, per clock, the outcome it is
counted with. `slamon replay` keeps it in dicts (`DictStore`); the live agent
keeps it in a Kafka-backed table (`agents.complianceprocessor.TableStore`), so both
count and close windows the same way and emit the same records.

Watermarks are per lane: the live agent closes the windows of each input
partition by that partition's watermark; replay has one lane, 0.

Surveys (`survey` records, `sla.surveys`) are counted in the windows holding their time,
for each metric the record names, as `sla.csat.SurveyEntry`s beside the clocks: a window's
record then gains the CSAT fields (`sla.csat.csat_fields`). A window with surveys and no
clock is emitted too (met = total = 0); a window without surveys has no CSAT fields, so
records of a history without surveys are unchanged.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from sla.csat import SurveyEntry, csat_fields
from sla.events import format_ts, parse_ts

__all__ = [
    "Compliance", "WindowStore", "DictStore", "window_bounds", "windows_of", "summarise", "ratio",
    "WINDOWS",
    "Dims", "WindowKey", "Entry", "WindowEntry", "Counted", "CreditLookup", "split_entries",
]

WINDOWS: Final = ("hour", "day", "month")
_HOUR: Final = 3_600_000
_DAY: Final = 86_400_000
_NEVER: Final = -(2**62)  # the horizon of a lane that has no watermark yet: nothing is closed

Dims = tuple[str, str, str, str]  # service, customer, priority, metric
WindowKey = tuple[str, str, str, str, str, int]  # dims + window kind + window start
Entry = tuple[bool, float]  # one clock in one window: met?, counted seconds
WindowEntry = Entry | SurveyEntry  # a clock's entry, or a survey's (positive?, score, verdict)
Counted = tuple[Dims, int]  # what a clock is counted with: its dims, stopped_at (ms)
CreditLookup = Callable[[str, str, float], float]  # (service, customer, ratio) -> credit


class WindowStore:
    """The state of the open windows: their entries, one per (window, clock), and the
    outcome each clock is counted with (so that a revision or a retraction withdraws it).

    `Compliance` decides when a window opens and closes and what counts; a store only
    keeps what it is given.

    A base class rather than a Protocol: compiled, `Compliance` then calls a store's methods
    through its class's table, where it looked each one up by name on every call.
    """

    __slots__ = ()

    def open(self, window: WindowKey, end: int, lane: int) -> None:
        """Open `window`, ending at `end` and closed by the watermark of `lane`, empty."""
        raise NotImplementedError

    def put(self, window: WindowKey, clock: str, entry: WindowEntry) -> bool:
        """Count `clock` in `window` (replacing the entry it had there) if the window is
        open; False, storing nothing, if it is not."""
        raise NotImplementedError

    def delete(self, window: WindowKey, clock: str) -> None:
        """Withdraw `clock` from `window`; nothing when the window is not open or lacks it."""
        raise NotImplementedError

    def close(self, window: WindowKey) -> Mapping[str, WindowEntry]:
        """Remove `window` with its entries and return them (clock -> entry); {} if not open."""
        raise NotImplementedError

    def windows(self) -> Iterable[tuple[WindowKey, int, int]]:
        """(window, end, lane) of every open window: to pick up a store filled elsewhere."""
        raise NotImplementedError

    def counted(self, clock: str) -> Counted | None:
        """The outcome `clock` is counted with, or None."""
        raise NotImplementedError

    def set_counted(self, clock: str, counted: Counted) -> None:
        """Remember the outcome `clock` is counted with (replacing an earlier one)."""
        raise NotImplementedError

    def forget(self, clock: str) -> None:
        """Forget the outcome of `clock`, if one is remembered."""
        raise NotImplementedError

    def closed_until(self, lane: int, horizon: int) -> None:
        """`lane`'s windows ending at or before `horizon` are closed now (it only grows)."""
        raise NotImplementedError


_NO_ENTRIES: Final[Mapping[str, WindowEntry]] = MappingProxyType({})


class DictStore(WindowStore):
    """A `WindowStore` in memory (replay): window -> {clock: entry}, clock -> counted."""

    __slots__ = ("_windows", "_closes", "_counted")

    def __init__(self) -> None:
        self._windows: dict[WindowKey, dict[str, WindowEntry]] = {}
        self._closes: dict[WindowKey, tuple[int, int]] = {}  # window -> (end, lane)
        self._counted: dict[str, Counted] = {}

    def open(self, window: WindowKey, end: int, lane: int) -> None:
        self._windows[window] = {}
        self._closes[window] = (end, lane)

    def put(self, window: WindowKey, clock: str, entry: WindowEntry) -> bool:
        entries = self._windows.get(window)
        if entries is None:
            return False
        entries[clock] = entry
        return True

    def delete(self, window: WindowKey, clock: str) -> None:
        entries = self._windows.get(window)
        if entries is not None:
            entries.pop(clock, None)

    def close(self, window: WindowKey) -> Mapping[str, WindowEntry]:
        self._closes.pop(window, None)
        return self._windows.pop(window, _NO_ENTRIES)

    def windows(self) -> Iterable[tuple[WindowKey, int, int]]:
        return [(window, end, lane) for window, (end, lane) in self._closes.items()]

    def counted(self, clock: str) -> Counted | None:
        return self._counted.get(clock)

    def set_counted(self, clock: str, counted: Counted) -> None:
        self._counted[clock] = counted

    def forget(self, clock: str) -> None:
        self._counted.pop(clock, None)

    def closed_until(self, lane: int, horizon: int) -> None:
        pass  # the horizons are the rules' own, in memory


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


_WINDOWS_CACHE_SIZE: Final = 4096
_windows_by_hour: Final[dict[int, tuple[tuple[str, int, int], ...]]] = {}


def windows_of(ms: int) -> tuple[tuple[str, int, int], ...]:
    """(kind, start, end) of each window holding `ms`, in WINDOWS order.

    Kept per hour (bounded; cleared when full): outcomes come roughly in time order, so an
    hour's windows serve many of them.
    """
    hour = ms - ms % _HOUR
    windows = _windows_by_hour.get(hour)
    if windows is None:
        day = ms - ms % _DAY
        month = _month_bounds(day)
        windows = ("hour", hour, hour + _HOUR), ("day", day, day + _DAY), ("month", *month)
        if len(_windows_by_hour) >= _WINDOWS_CACHE_SIZE:
            _windows_by_hour.clear()
        _windows_by_hour[hour] = windows
    return windows


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


class _Lane:
    """What closes windows on one lane: its horizon, and its open windows by end."""

    __slots__ = ("horizon", "ends")

    def __init__(self) -> None:
        # Windows ending at or before this instant are closed: the watermark less the
        # lateness, or the watermark itself at the end of input.
        self.horizon = _NEVER
        self.ends: list[tuple[int, WindowKey]] = []  # heap of (window end, window)


class Compliance:
    """The window rules: count outcomes in their windows, close windows by watermark.

    Which windows are open and what they hold is in `store`; the order in which they
    close (a heap of ends per lane) and each lane's horizon are here, in memory: after
    the store was filled elsewhere (a restart), `reopen()` reads its open windows back.
    """

    def __init__(self, store: WindowStore, credit_for: CreditLookup, lateness_ms: int) -> None:
        self.store = store
        self._credit_for = credit_for
        self._lateness = lateness_ms
        self._lanes: dict[int, _Lane] = {}
        self.late_outcomes = 0  # outcomes for windows already closed: not counted
        self.late_surveys = 0  # surveys (per metric and window) for windows already closed
        self.reopen()

    def reopen(self) -> None:
        """Take the store's open windows as the ones to close (after it was refilled)."""
        for state in self._lanes.values():
            state.ends = []
        for window, end, lane in self.store.windows():
            self._lane(lane).ends.append((end, window))
        for state in self._lanes.values():
            heapq.heapify(state.ends)

    def observe(self, record: dict, lane: int = 0) -> None:
        """Count an outcome or a survey record, or withdraw the outcome a retraction withdraws.

        An outcome (survey) whose window the watermark of `lane` has closed is not counted
        there (`late_outcomes`, `late_surveys`); other kinds of record are ignored.
        """
        kind = record["kind"]
        if kind == "survey":
            self._count_survey(record, lane)
            return
        if kind == "retraction":
            if record.get("retracts_kind") == "outcome":
                clock = record["retracts"].rsplit(":outcome:", 1)[0]
                counted = self.store.counted(clock)
                if counted is not None:
                    self._withdraw(clock, counted, forget=True)
            return
        if kind != "outcome":
            return
        store = self.store
        # Typed locals: compiled, the f-string then joins strings instead of calling str().
        ticket_id: str = record["ticket_id"]
        metric: str = record["metric"]
        cycle: int = record["cycle"]
        status: str = record["status"]
        clock = f"{ticket_id}:{metric}:{cycle}"
        cancelled = status == "cancelled"
        counted = store.counted(clock)
        if counted is not None:  # a revision: the earlier outcome no longer counts
            self._withdraw(clock, counted, forget=cancelled)  # replaced below unless cancelled
        if cancelled:
            return
        stopped_ms = parse_ts(record["stopped_at"])
        service: str = record["service"]
        customer: str = record["customer"]
        priority: str = record["priority"]
        entry: Entry = (status == "met", record["elapsed_seconds"])
        put = store.put
        for window, start, end in windows_of(stopped_ms):
            # Spelled out: compiled, `(*dims, ...)` builds a list and converts it.
            key: WindowKey = (service, customer, priority, metric, window, start)
            if not put(key, clock, entry) and not self._open_window(key, end, clock, entry, lane):
                self.late_outcomes += 1
        store.set_counted(clock, ((service, customer, priority, metric), stopped_ms))

    def _count_survey(self, record: dict, lane: int) -> None:
        """Count a survey in the windows of its time, for each metric its record names."""
        windows = windows_of(parse_ts(record["at"]))
        positive, score = bool(record["positive"]), float(record["score_ratio"])
        survey = record["id"]
        for metric, verdict in record["clocks"].items():
            entry: SurveyEntry = (positive, score, verdict or "")
            for window, start, end in windows:
                key: WindowKey = (record["service"], record["customer"], record["priority"],
                                  metric, window, start)
                if not self._put(key, end, survey, entry, lane):
                    self.late_surveys += 1

    def _put(self, key: WindowKey, end: int, name: str, entry: WindowEntry, lane: int) -> bool:
        """Put `entry` in window `key`, opening it if need be; False if it closed already."""
        return self.store.put(key, name, entry) or self._open_window(key, end, name, entry, lane)

    def _open_window(self, key: WindowKey, end: int, name: str, entry: WindowEntry,
                     lane: int) -> bool:
        """Open window `key` (not open yet) with `entry` in it; False if it closed already."""
        store = self.store
        state = self._lane(lane)
        if end <= state.horizon:  # closed already
            return False
        store.open(key, end, lane)
        heapq.heappush(state.ends, (end, key))
        store.put(key, name, entry)
        return True

    def close_until(self, watermark: int | None, final: bool = False,
                    lane: int = 0) -> list[dict]:
        """Close the windows of `lane` whose end plus lateness has passed (their end, when
        `final`); their compliance records in closing order.

        The horizon only moves forward; a `watermark` of None closes what it allows already.
        """
        state = self._lanes.get(lane) or self._lane(lane)
        horizon = state.horizon
        if watermark is not None:
            moved = watermark if final else watermark - self._lateness
            if moved > horizon:
                horizon = state.horizon = moved
                self.store.closed_until(lane, horizon)
        ends = state.ends
        if not ends or ends[0][0] > horizon:
            return []  # the usual case: the watermark moved within the open windows
        store = self.store
        records: list[dict] = []
        while ends and ends[0][0] <= horizon:
            end, key = heapq.heappop(ends)
            entries = store.close(key)
            if entries:
                clocks, surveys = split_entries(entries)
                met = sum([ok for ok, _ in clocks])
                credit = self._credit_for(key[0], key[1], ratio(met, len(clocks)))
                records.append(_record(key, end, clocks, met, surveys, credit))
            if key[4] == "month":  # the last window a clock counts in
                for clock, entry in entries.items():
                    if len(entry) == 2:  # a clock's (a survey has no outcome to forget)
                        store.forget(clock)
        return records

    def _lane(self, lane: int) -> _Lane:
        state = self._lanes.get(lane)
        if state is None:
            state = self._lanes[lane] = _Lane()
        return state

    def _withdraw(self, clock: str, counted: Counted, forget: bool) -> None:
        """Take `clock` out of the open windows it is `counted` in (and forget its outcome)."""
        store = self.store
        (service, customer, priority, metric), stopped_ms = counted
        for window, start, _ in windows_of(stopped_ms):
            store.delete((service, customer, priority, metric, window, start), clock)
        if forget:
            store.forget(clock)


def split_entries(entries: Mapping[str, WindowEntry]) -> tuple[list[Entry], list[SurveyEntry]]:
    """A window's entries: those of clocks, those of surveys."""
    clocks: list[Entry] = [entry for entry in entries.values() if len(entry) == 2]
    if len(clocks) == len(entries):
        return clocks, []  # the usual window: no surveys
    surveys: list[SurveyEntry] = [entry for entry in entries.values() if len(entry) != 2]
    return clocks, surveys


def summarise(key: WindowKey, end: int, entries: Mapping[str, WindowEntry],
              credit: float) -> dict:
    """The compliance record of a closed window: `entries` maps clock -> (met?, seconds) and
    survey -> (positive?, score, verdict); the CSAT fields only when it counted surveys."""
    clocks, surveys = split_entries(entries)
    return _record(key, end, clocks, sum([ok for ok, _ in clocks]), surveys, credit)


def _record(key: WindowKey, end: int, clocks: list[Entry], met: int,
            surveys: list[SurveyEntry], credit: float) -> dict:
    """summarise, from the window's entries split (and its clocks met counted) already."""
    service, customer, priority, metric, window, start = key
    total = len(clocks)
    seconds = sorted([counted for _, counted in clocks])
    record = {
        "id": f"{service}:{customer}:{priority}:{metric}:{window}:{format_ts(start)}",
        "kind": "compliance",
        "service": service, "customer": customer, "priority": priority, "metric": metric,
        "window": window, "window_start": format_ts(start), "window_end": format_ts(end),
        "met": met, "breached": total - met, "total": total, "compliance_ratio": ratio(met, total),
        "p50_seconds": _percentile(seconds, 0.5), "p90_seconds": _percentile(seconds, 0.9),
        "p99_seconds": _percentile(seconds, 0.99), "credit": credit,
    }
    if surveys:
        record.update(csat_fields(surveys))
    return record


def ratio(met: int, total: int) -> float:
    """Met over total; 1.0 for an empty window."""
    return met / total if total else 1.0
