"""The live compliance agent: outcomes in, a `compliance` record per window when it closes.

The window rules are `sla.compliance.Compliance`, the same as in `slamon replay`;
this module gives them a store in Faust tables and wires the agent.

Outcomes (and retractions of outcomes) and surveys reach it on `<prefix>compliance.input`
keyed by service|customer, so every clock of a customer's service is counted
on one partition. Two tables hold the state, written in-stream, one small
entry per change (a window's clocks are never rewritten as a whole):

- entries: [*window, clock] -> [partition, window end, met, seconds]; a survey's row
  (its key ends with `:survey`) is [partition, window end, positive, score, verdict]
- clocks: clock -> [service, customer, priority, metric, stopped_ms], so a revision
  or a retraction withdraws the clock from the windows it was counted in.

Which clocks each open window holds is kept in memory, rebuilt from the
entries table after an assignment. A window closes when the watermark of its
partition passes its end plus the lateness; its record goes to
`<prefix>compliance`. The watermark is the event time of the clock agent (the
largest `ts` it had applied when it sent the outcome, carried in the message):
windows close before the outcome that moved time on is counted, as in replay.
With several clock partitions, an outcome that arrives after its window closed
(skew beyond the lateness) is not counted (`late_outcomes`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple, Protocol

import faust
import orjson
from faust.types import TP

from agents.batch.consumer import BatchRouter, KafkaRecord
from agents.batch.sender import BatchSender, app_sender
from agents.settings import Settings
from agents.tables import RawTable, raw_table, raw_topic
from sla.compliance import Compliance, Counted, CreditLookup, WindowEntry, WindowKey
from sla.engine import Engine
from streams.outputs import Output, record_output
from streams.topics import TopicCatalogue

__all__ = ["ComplianceProcessor", "ComplianceService", "TableStore", "add_compliance_agent"]

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


class ComplianceService:
    """The compliance input's batch handler: count a partition's records, send what closes.

    A batch's compliance records are sent and acknowledged by Kafka before the table
    writes that follow from it are committed (changelog, then store), as for the clocks;
    each key is written once per batch. A batch that fails leaves the tables as they
    were, and the open windows in memory are rebuilt from them before the next one.
    Batches take turns (the batch consumer hands partitions over side by side): the
    windows in memory are one `Compliance` for all partitions, and a batch points its
    store at that partition's overlays until the batch is done.
    """

    def __init__(self, app: faust.App, processor: ComplianceProcessor, entries: RawTable,
                 clocks: RawTable, output: faust.TopicT, partitions: int) -> None:
        self.app = app
        self.processor = processor
        self.entries = entries
        self.clocks = clocks
        self.output = output
        self.partitions = partitions
        self.stale = True
        self.declared = False
        self.turn = asyncio.Lock()

    @property
    def sender(self) -> BatchSender:
        return app_sender(self.app, self.partitions)

    def on_partitions_assigned(self) -> None:
        self.stale = True
        self.declared = False

    async def handle(self, tp: TP, records: Sequence[KafkaRecord]) -> None:
        async with self.turn:
            await self._handle(tp, records)

    async def _handle(self, tp: TP, records: Sequence[KafkaRecord]) -> None:
        if not self.declared:
            await self.output.maybe_declare()
            self.declared = True
        processor = self.processor
        if self.stale:
            processor.rebuild(self.entries.items())
            self.stale = False
        partition = tp.partition
        store = processor.store
        entries, clocks = self.entries.overlay(partition), self.clocks.overlay(partition)
        store.entries, store.clocks = entries, clocks
        try:
            outputs = []
            for record in records:
                try:
                    outputs += processor.handle(partition, record.value or b"")
                except Exception:  # a bug must cost one outcome, never the worker
                    logger.exception("compliance input at %s:%s could not be counted",
                                     partition, record.offset)
            deliveries = await self.sender.send(outputs)
            if deliveries:
                await asyncio.gather(*deliveries)
            await entries.commit(self.sender)
            await clocks.commit(self.sender)
        except BaseException:
            self.stale = True  # the windows in memory may hold what the tables do not
            raise
        finally:
            store.entries, store.clocks = self.entries, self.clocks


def add_compliance_agent(app: faust.App, settings: Settings, engine: Engine,
                         router: BatchRouter, observer: RecordObserver | None = None,
                         ) -> ComplianceProcessor:
    """Route the compliance input to a `ComplianceService`; add its two tables to `app`."""
    topics = settings.topics
    entries = raw_table(app, "slamon-compliance-entries", settings.partitions)
    clocks = raw_table(app, "slamon-compliance-clocks", settings.partitions)

    def credit_for(service: str, customer: str, value: float) -> float:
        return engine.policies.terms(service, customer).credit_for(value)

    processor = ComplianceProcessor(entries, clocks, topics, credit_for,
                                    round(settings.lateness * 1000), observer)
    source = raw_topic(app, topics.compliance_input, partitions=settings.partitions)
    output = raw_topic(app, topics.compliance, partitions=settings.partitions)
    service = ComplianceService(app, processor, entries, clocks, output, settings.partitions)
    router.route(topics.compliance_input, service.handle)

    async def unused(stream: faust.StreamT) -> None:
        # Subscribes the topic; the batch consumer hands its records to the service.
        async for _ in stream.events():
            logger.error("a compliance input record reached Faust's stream path")

    app.agent(source, name="slamon.compliance")(unused)

    @app.on_partitions_assigned.connect
    async def _assigned(*args: Any, **kwargs: Any) -> None:
        service.on_partitions_assigned()

    return processor
