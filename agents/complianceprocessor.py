"""Compliance counting over tables of bytes, without Faust: what the compliance agent does
with each compliance-input message (`agents.compliance` wires it to Kafka).

Two tables hold the state, written in-stream, one small entry per change (a window's
clocks are never rewritten as a whole):

- entries: [*window, clock] -> [partition, window end, met, seconds]; a survey's row
  (its key ends with `:survey`) is [partition, window end, positive, score, verdict]
- clocks: clock -> [service, customer, priority, metric, stopped_ms], so a revision
  or a retraction withdraws the clock from the windows it was counted in.

Which clocks each open window holds is kept in memory, rebuilt from the entries table
after an assignment. Kept apart from the agent so that the compiled build compiles it
(setup.py's GLUE): a compiled module cannot hold Faust's classes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableMapping
from typing import NamedTuple, Protocol

import orjson

from sla.compliance import Compliance, Counted, CreditLookup, WindowEntry, WindowKey
from streams.outputs import Output, record_output
from streams.topics import TopicCatalogue

__all__ = ["ComplianceProcessor", "RecordObserver", "TableStore"]

logger = logging.getLogger(__name__)

class RecordObserver(Protocol):
    """Told of every compliance record sent (the worker's metrics)."""

    def observe(self, record: dict, /) -> None: ...


class _StoredEntry(NamedTuple):
    """The value of an entries-table row, as stored: [partition, end, met, seconds], or for
    a survey [partition, end, positive, score, verdict]."""

    partition: int
    end: int
    met: bool  # a survey's: positive?
    seconds: float  # a survey's: score on 0..1
    verdict: str | None = None  # a survey's only: met, breached or ""

    @property
    def entry(self) -> WindowEntry:
        if self.verdict is None:
            return (self.met, self.seconds)
        return (self.met, self.seconds, self.verdict)


class _OpenWindow:
    """An open window: the partition whose watermark closes it, its end, its clocks."""

    __slots__ = ("partition", "end", "clocks")

    def __init__(self, partition: int, end: int) -> None:
        self.partition = partition
        self.end = end
        self.clocks: set[str] = set()


def _entry_key(window: WindowKey, clock: str) -> bytes:
    return orjson.dumps([*window, clock])


class TableStore:
    """`sla.compliance.WindowStore` over two tables of bytes (entries, clocks).

    Every change is one table write; the clocks of each open window are also kept in
    memory, so counting never reads the entries table; `load` refills them from it.
    """

    def __init__(self, entries: MutableMapping[bytes, bytes],
                 clocks: MutableMapping[bytes, bytes]) -> None:
        self.entries = entries
        self.clocks = clocks
        self._open: dict[WindowKey, _OpenWindow] = {}

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Refill the open windows from the rows of the entries table."""
        self._open.clear()
        for key, value in items:
            service, customer, priority, metric, kind, start, clock = orjson.loads(key)
            window: WindowKey = (service, customer, priority, metric, kind, start)
            opened = self._open.get(window)
            if opened is None:
                stored = _StoredEntry(*orjson.loads(value))
                opened = self._open[window] = _OpenWindow(stored.partition, stored.end)
            opened.clocks.add(clock)

    def open(self, window: WindowKey, end: int, lane: int) -> None:
        self._open[window] = _OpenWindow(lane, end)

    def put(self, window: WindowKey, clock: str, entry: WindowEntry) -> bool:
        opened = self._open.get(window)
        if opened is None:
            return False
        opened.clocks.add(clock)
        self.entries[_entry_key(window, clock)] = orjson.dumps(
            [opened.partition, opened.end, *entry])
        return True

    def delete(self, window: WindowKey, clock: str) -> None:
        opened = self._open.get(window)
        if opened is not None and clock in opened.clocks:
            opened.clocks.discard(clock)
            del self.entries[_entry_key(window, clock)]

    def close(self, window: WindowKey) -> Mapping[str, WindowEntry]:
        opened = self._open.pop(window, None)
        if opened is None:
            return {}
        closed: dict[str, WindowEntry] = {}
        for clock in opened.clocks:
            stored = _StoredEntry(*orjson.loads(self.entries.pop(_entry_key(window, clock))))
            closed[clock] = stored.entry
        return closed

    def windows(self) -> Iterable[tuple[WindowKey, int, int]]:
        return [(window, opened.end, opened.partition) for window, opened in self._open.items()]

    def counted(self, clock: str) -> Counted | None:
        stored = self.clocks.get(clock.encode())
        if stored is None:
            return None
        service, customer, priority, metric, stopped_ms = orjson.loads(stored)
        return (service, customer, priority, metric), stopped_ms

    def set_counted(self, clock: str, counted: Counted) -> None:
        dims, stopped_ms = counted
        self.clocks[clock.encode()] = orjson.dumps([*dims, stopped_ms])

    def forget(self, clock: str) -> None:
        self.clocks.pop(clock.encode(), None)


class ComplianceProcessor:
    """One compliance-input message in, the compliance records it closes out."""

    def __init__(self, entries: MutableMapping[bytes, bytes], clocks: MutableMapping[bytes, bytes],
                 topics: TopicCatalogue, credit_for: CreditLookup, lateness_ms: int,
                 observer: RecordObserver | None = None) -> None:
        self.store = TableStore(entries, clocks)
        self.compliance = Compliance(self.store, credit_for, lateness_ms)
        self.topics = topics
        self.observer = observer

    @property
    def entries(self) -> MutableMapping[bytes, bytes]:
        return self.store.entries

    @property
    def clocks(self) -> MutableMapping[bytes, bytes]:
        return self.store.clocks

    @property
    def late_outcomes(self) -> int:
        return self.compliance.late_outcomes

    def rebuild(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Refill the open windows from the entries table (after an assignment)."""
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
