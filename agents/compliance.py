"""The live compliance agent: outcomes in, a `compliance` record per window when it closes.

The window rules are `sla.compliance.Compliance`, the same as in `slamon replay`;
`agents.complianceprocessor` gives them a store in two tables (its docstring has their
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
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP

from agents.batch.consumer import BatchRouter, KafkaRecord
from agents.batch.sender import BatchSender, app_sender
from agents.complianceprocessor import ComplianceProcessor, RecordObserver, TableStore
from agents.settings import Settings
from agents.tables import RawTable, raw_table, raw_topic
from sla.engine import Engine

__all__ = ["ComplianceProcessor", "ComplianceService", "TableStore", "add_compliance_agent"]

logger = logging.getLogger(__name__)


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
