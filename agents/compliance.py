"""The live compliance agent: outcomes in, a `compliance` record per window when it closes.

The window rules are `sla.compliance.Compliance`, the same as in `slamon replay`;
`agents.complianceprocessor` gives them a store in one table (its docstring has its
rows), and this module wires it to Kafka.

Outcomes (and retractions of outcomes) and surveys reach it on `<prefix>compliance.input`
keyed by service|customer, so every clock of a customer's service is counted
on one partition. A window closes when the watermark of its
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
from collections.abc import Iterable, Sequence
from typing import Any

import faust
import orjson
from faust.types import TP

from agents.batch.consumer import BatchRouter, KafkaRecord
from agents.batch.sender import BatchSender, app_sender
from agents.complianceprocessor import (
    ComplianceProcessor,
    RecordObserver,
    TableStore,
    legacy_rows,
)
from agents.settings import Settings
from agents.tables import Overlay, RawTable, raw_table, raw_topic
from sla.engine import Engine

__all__ = ["ComplianceProcessor", "ComplianceService", "TableStore", "add_compliance_agent"]

logger = logging.getLogger(__name__)

COUNTS_TABLE = "slamon-compliance-counts"


class ComplianceService:
    """The compliance input's batch handler: count a partition's records, send what closes.

    A batch's compliance records are sent and acknowledged by Kafka before the table
    writes that follow from it are committed (changelog, then store), as for the clocks;
    each key is written once per batch. A batch that fails leaves the table as it was,
    and the open windows in memory are rebuilt from it before the next one. Batches take
    turns (the batch consumer hands partitions over side by side): the windows in memory
    are one `Compliance` for all partitions, and a batch points its store at that
    partition's overlay until the batch is done.

    `legacy`: the two tables of the earlier layout. Before the first rebuild their rows move
    into the table (`legacy_rows`), then leave them.
    """

    def __init__(self, app: faust.App, processor: ComplianceProcessor, table: RawTable,
                 output: faust.TopicT, partitions: int,
                 legacy: tuple[RawTable, RawTable] | None = None) -> None:
        self.app = app
        self.processor = processor
        self.table = table
        self.legacy = legacy
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
            await self.move_legacy_rows()
            processor.rebuild(self.table.items())
            self.stale = False
        partition = tp.partition
        store = processor.store
        table = store.table = self.table.overlay(partition)
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
            await table.commit(self.sender)
        except BaseException:
            self.stale = True  # the windows in memory may hold what the table does not
            raise
        finally:
            store.table = self.table

    async def move_legacy_rows(self) -> int:
        """Move the rows of the earlier layout's two tables into the table; how many.

        The new rows are committed first, then the old clocks rows are deleted, then the old
        entries rows: whatever a crash interrupts, the next rebuild moves what is left to
        the same rows, and a row the table has already is kept.
        """
        if self.legacy is None:
            return 0
        old_entries, old_clocks = self.legacy
        entries, clocks = list(old_entries.items()), list(old_clocks.items())
        if not entries and not clocks:
            return 0
        sender = self.sender

        def partition_of(service: str, customer: str) -> int:
            return sender.partition(f"{service}|{customer}".encode())

        await self._commit(self.table, legacy_rows(entries, clocks, partition_of))
        await self._commit(old_clocks, ((partition_of(*orjson.loads(value)[:2]), key, None)
                                        for key, value in clocks))
        await self._commit(old_entries, ((orjson.loads(value)[0], key, None)
                                         for key, value in entries))
        logger.info("compliance: moved %d rows of the earlier layout (%d entries, %d clocks) "
                    "into %s", len(entries) + len(clocks), len(entries), len(clocks),
                    self.table.name)
        return len(entries) + len(clocks)

    async def _commit(self, table: RawTable,
                      rows: Iterable[tuple[int, bytes, bytes | None]]) -> None:
        """Write `rows` (partition, key, value) to `table` through an overlay per partition,
        then commit them: a value where the table has no row yet, None deleting the row."""
        overlays: dict[int, Overlay] = {}
        for partition, key, value in rows:
            if partition not in overlays:
                overlays[partition] = table.overlay(partition)
            overlay = overlays[partition]
            if value is None:
                overlay.pop(key, None)
            elif key not in overlay:
                overlay[key] = value
        for overlay in overlays.values():
            await overlay.commit(self.sender)


def add_compliance_agent(app: faust.App, settings: Settings, engine: Engine,
                         router: BatchRouter, observer: RecordObserver | None = None,
                         ) -> ComplianceProcessor:
    """Route the compliance input to a `ComplianceService`; add its table to `app` (and the
    earlier layout's two, whose rows it moves into it)."""
    topics = settings.topics
    table = raw_table(app, COUNTS_TABLE, settings.partitions)
    legacy = (raw_table(app, "slamon-compliance-entries", settings.partitions),
              raw_table(app, "slamon-compliance-clocks", settings.partitions))

    def credit_for(service: str, customer: str, value: float) -> float:
        return engine.policies.terms(service, customer).credit_for(value)

    processor = ComplianceProcessor(table, topics, credit_for, round(settings.lateness * 1000),
                                    observer)
    source = raw_topic(app, topics.compliance_input, partitions=settings.partitions)
    output = raw_topic(app, topics.compliance, partitions=settings.partitions)
    service = ComplianceService(app, processor, table, output, settings.partitions, legacy)
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
