"""Compliance counting over a table of bytes, without Faust: what the compliance agent does
with each compliance-input message (`agents.compliance` wires it to Kafka).

One table holds the state, a row per counted outcome, not per window it counts in: the
windows of an outcome follow from its stop time, so a clock counted in its hour, day and
month windows is one row, written when it is counted and deleted when its month closes.
Rows (JSON values):

- `c:<clock>` -> [lane, service, customer, priority, metric, stopped_ms, met, seconds]: the
  outcome a clock is counted with; lane -1 when every window of it had closed already
- `s:<[survey, metric]>` -> [lane, service, customer, priority, hour_start, positive, score,
  verdict]: a survey, counted in the windows of its hour for one metric
- `h:<lane>` -> horizon: the lane's windows ending at or before it are closed

The open windows and their entries are kept in memory and rebuilt from the rows after an
assignment: each row's windows that end after its lane's horizon. Kept apart from the agent
so that the compiled build compiles it (setup.py's GLUE): a compiled module cannot hold
Faust's classes.

Before this layout, two tables held a row per (window, clock) and a row per clock, eight
writes per outcome; `legacy_rows` turns their rows into this table's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Final, Protocol

import orjson

from sla.compliance import (
    Compliance,
    Counted,
    CreditLookup,
    Entry,
    WindowEntry,
    WindowKey,
    WindowStore,
    windows_of,
)
from sla.csat import SurveyEntry
from sla.ticket import NEVER
from streams.outputs import Output, record_output
from streams.topics import TopicCatalogue

__all__ = ["ComplianceProcessor", "RecordObserver", "TableStore", "legacy_rows"]

logger: Final = logging.getLogger(__name__)

CLOCK: Final = b"c:"
SURVEY: Final = b"s:"
HORIZON: Final = b"h:"
NO_LANE: Final = -1  # a clock counted in no open window: its row only remembers the outcome


class RecordObserver(Protocol):
    """Told of every compliance record sent (the worker's metrics)."""

    def observe(self, record: dict, /) -> None: ...


class _OpenWindow:
    """An open window: the lane whose watermark closes it, its end, its entries."""

    __slots__ = ("lane", "end", "entries")

    def __init__(self, lane: int, end: int) -> None:
        self.lane = lane
        self.end = end
        self.entries: dict[str, WindowEntry] = {}


def _survey_key(survey: str, metric: str) -> bytes:
    return SURVEY + orjson.dumps([survey, metric])


class TableStore(WindowStore):
    """`sla.compliance.WindowStore` over one table of bytes (see the module for its rows).

    The open windows live in memory; the table gets a row when a clock is counted
    (`set_counted`), when a survey is counted in its month, and when a lane's horizon moves.
    """

    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table
        self._open: dict[WindowKey, _OpenWindow] = {}
        self._horizons: dict[int, int] = {}
        # The last successful put (clock, lane, entry): `set_counted`, which follows the puts
        # of an outcome, writes its row with them.
        self._last_put: tuple[str, int, WindowEntry] | None = None
        self._hour_start = 0  # the start of the last hour window put into (a survey's hour)

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Refill the open windows and the horizons from the table's rows."""
        self._open.clear()
        self._horizons.clear()
        self._last_put = None
        rows: list[tuple[bytes, list]] = []
        for key, value in items:
            if key.startswith(HORIZON):
                self._horizons[int(key[len(HORIZON):])] = orjson.loads(value)
            else:
                rows.append((key, orjson.loads(value)))
        for key, row in rows:
            if key.startswith(CLOCK):
                lane, service, customer, priority, metric, stopped_ms, met, seconds = row
                self._reopen(lane, (service, customer, priority, metric), stopped_ms,
                             key[len(CLOCK):].decode(), (met, seconds))
            elif key.startswith(SURVEY):
                lane, service, customer, priority, hour_start, positive, score, verdict = row
                survey, metric = orjson.loads(key[len(SURVEY):])
                self._reopen(lane, (service, customer, priority, metric), hour_start, survey,
                             (positive, score, verdict))

    def _reopen(self, lane: int, dims: tuple[str, str, str, str], ms: int, name: str,
                entry: WindowEntry) -> None:
        if lane == NO_LANE:
            return
        horizon = self._horizons.get(lane, NEVER)
        for kind, start, end in windows_of(ms):
            if end <= horizon:
                continue
            window: WindowKey = (*dims, kind, start)
            opened = self._open.get(window)
            if opened is None:
                opened = self._open[window] = _OpenWindow(lane, end)
            opened.entries[name] = entry

    def open(self, window: WindowKey, end: int, lane: int) -> None:
        self._open[window] = _OpenWindow(lane, end)

    def put(self, window: WindowKey, clock: str, entry: WindowEntry) -> bool:
        kind = window[4]
        if kind == "hour":
            self._hour_start = window[5]
        opened = self._open.get(window)
        if opened is None:
            return False
        opened.entries[clock] = entry
        self._last_put = (clock, opened.lane, entry)
        if kind == "month" and len(entry) == 3:  # a survey: its row, once its month counts it
            service, customer, priority, metric = window[:4]
            self.table[_survey_key(clock, metric)] = orjson.dumps(
                [opened.lane, service, customer, priority, self._hour_start, *entry])
        return True

    def delete(self, window: WindowKey, clock: str) -> None:
        opened = self._open.get(window)
        if opened is not None:
            opened.entries.pop(clock, None)

    def close(self, window: WindowKey) -> dict[str, WindowEntry]:
        opened = self._open.pop(window, None)
        if opened is None:
            return {}
        entries = opened.entries
        if window[4] == "month":  # a survey's last window: its row goes (a clock's: `forget`)
            table, metric = self.table, window[3]
            for name, entry in entries.items():
                if len(entry) == 3:
                    table.pop(_survey_key(name, metric), None)
        return entries

    def windows(self) -> Iterable[tuple[WindowKey, int, int]]:
        return [(window, opened.end, opened.lane) for window, opened in self._open.items()]

    def counted(self, clock: str) -> Counted | None:
        row = self.table.get(CLOCK + clock.encode())
        if row is None:
            return None
        _, service, customer, priority, metric, stopped_ms, _, _ = orjson.loads(row)
        return (service, customer, priority, metric), stopped_ms

    def set_counted(self, clock: str, counted: Counted) -> None:
        last, self._last_put = self._last_put, None
        lane, entry = (last[1], last[2]) if last is not None and last[0] == clock else (
            NO_LANE, (False, 0.0))
        dims, stopped_ms = counted
        self.table[CLOCK + clock.encode()] = orjson.dumps([lane, *dims, stopped_ms, *entry])

    def forget(self, clock: str) -> None:
        self.table.pop(CLOCK + clock.encode(), None)

    def closed_until(self, lane: int, horizon: int) -> None:
        if horizon > self._horizons.get(lane, NEVER):
            self._horizons[lane] = horizon
            self.table[HORIZON + str(lane).encode()] = orjson.dumps(horizon)


def legacy_rows(entries: Iterable[tuple[bytes, bytes]], clocks: Iterable[tuple[bytes, bytes]],
                partition_of: Callable[[str, str], int]) -> Iterator[tuple[int, bytes, bytes]]:
    """The rows of the table (partition, key, value) that hold what the two tables of the
    earlier layout held: entries ([*window, clock] -> [lane, end, met, seconds], or a
    survey's [lane, end, positive, score, verdict]) and clocks (clock -> [*dims, stopped_ms]).
    `partition_of(service, customer)`: the partition a row of theirs lives on (its lane: the
    compliance input is keyed by service|customer).

    The earlier layout kept no horizon: a window was open while it had rows. Each lane's
    horizon becomes the end of its earliest open window less 1 ms: every window of a clock
    that ends before it had closed (a clock stays in each open window it was counted in),
    and none that ends after it had.
    """
    first_end: dict[int, int] = {}
    counted_in: dict[str, tuple[int, Entry]] = {}  # clock -> (lane, entry) of an open window
    surveys: dict[tuple[str, str], tuple[int, tuple, SurveyEntry, int]] = {}
    for key, value in entries:
        service, customer, priority, metric, kind, start, name = orjson.loads(key)
        lane, end, *entry = orjson.loads(value)
        first_end[lane] = min(end, first_end.get(lane, end))
        if len(entry) == 2:
            counted_in[name] = (lane, (entry[0], entry[1]))
            continue
        # A survey: an instant in its hour (any open window's start is; its hour's, if open).
        found = surveys.get((name, metric))
        if found is None or kind == "hour":
            surveys[(name, metric)] = (lane, (service, customer, priority),
                                       (entry[0], entry[1], entry[2]), start)
    for lane, end in first_end.items():
        yield lane, HORIZON + str(lane).encode(), orjson.dumps(end - 1)
    for key, value in clocks:
        service, customer, priority, metric, stopped_ms = orjson.loads(value)
        lane, clock_entry = counted_in.get(key.decode(), (NO_LANE, (False, 0.0)))
        yield (partition_of(service, customer), CLOCK + key, orjson.dumps(
            [lane, service, customer, priority, metric, stopped_ms, *clock_entry]))
    for (survey, metric), (lane, dims, survey_entry, start) in surveys.items():
        yield lane, _survey_key(survey, metric), orjson.dumps(
            [lane, *dims, start, *survey_entry])


class ComplianceProcessor:
    """One compliance-input message in, the compliance records it closes out."""

    def __init__(self, table: MutableMapping[bytes, bytes], topics: TopicCatalogue,
                 credit_for: CreditLookup, lateness_ms: int,
                 observer: RecordObserver | None = None) -> None:
        self.store = TableStore(table)
        self.compliance = Compliance(self.store, credit_for, lateness_ms)
        self.topics = topics
        self.observer = observer

    @property
    def table(self) -> MutableMapping[bytes, bytes]:
        return self.store.table

    @property
    def late_outcomes(self) -> int:
        return self.compliance.late_outcomes

    def rebuild(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Refill the open windows from the table's rows (after an assignment)."""
        self.store.load(items)
        self.compliance.reopen()

    def handle(self, partition: int, value: bytes) -> list[Output]:
        """Close what the message's watermark closes on `partition`, then count it."""
        try:
            record = orjson.loads(value)
            kind = record["kind"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            logger.warning("compliance input at partition %d is not a record; skipped", partition)
            return []
        closed = self.compliance.close_until(record.get("watermark"), lane=partition)
        if kind not in ("outcome", "retraction", "survey"):
            logger.warning("compliance input at partition %d is a %r record, not an outcome; "
                           "skipped", partition, kind)
        self.compliance.observe(record, lane=partition)
        observer = self.observer
        outputs = []
        for compliance in closed:
            if observer is not None:
                observer.observe(compliance)
            outputs.append(record_output(self.topics, compliance))
        return outputs
