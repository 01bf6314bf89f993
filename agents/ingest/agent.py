"""The translator agent: `<prefix>raw` in, slamon events on `<prefix>events` out.

On the batch path (agents/batch/consumer.py), like the clock agent: the batch consumer
hands each partition's raw records to `handle_batch`. A table (`slamon-ingest`, keyed
`source|ticket` like the raw messages, so a ticket's state lives on the partition its
deliveries arrive on) keeps each ticket's last known state. For each delivery the batch
runs the same translation as `slamon translate` (`agents.ingest.translate`) against a
per-batch overlay of the table; then the events (keyed by ticket_id, the clock agent's
partitioning), the dead letters and the states (changelog, then store: `RawTable.commit`)
go to Kafka. A delivery that cannot be
translated, or names a source no longer configured, goes to `<prefix>raw.dlq` with the
reason; any other failure is logged with its traceback and dead-lettered as
`internal_error`: the worker never dies on a payload.

At least once, none lost, none doubled in effect. The events and the states are sent
together and both acknowledged before the batch counts as handled. A worker killed with
the events on Kafka but not the states reads the batch again with the old states and makes
the same events with the same ids, which the clock engine recognises; one killed with the
states stored but not the events (or not the offsets) finds each delivery remembered with
its raw offset and sends the events it made again (`agents.ingest.state`).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import faust
import orjson
from faust.types import TP

from agents.batch.consumer import Abandoned, BatchRouter, KafkaRecord
from agents.batch.sender import BatchSender, app_sender
from agents.ingest.metrics import IngestMetrics
from agents.ingest.sources import Source
from agents.ingest.translate import translate_delivery
from agents.ingest.wire import DELIVERY, SOURCE, header_list, raw_dead_letter, raw_meta
from agents.settings import Settings
from agents.tables import raw_table, raw_topic
from streams.outputs import Output

__all__ = ["TranslatorService", "add_translator_agent", "TABLE_NAME"]

logger = logging.getLogger(__name__)

TABLE_NAME = "slamon-ingest"
DECLARE_RETRY_SECONDS = 2.0


class TranslatorService:
    """The translator's parts: sources, table, topics; `handle` is one raw message."""

    def __init__(self, app: faust.App, settings: Settings, sources: Mapping[str, Source],
                 metrics: IngestMetrics, router: BatchRouter | None = None) -> None:
        self.app = app
        self.catalogue = settings.topics
        self.sources = sources
        self.metrics = metrics
        self.partitions = partitions = settings.partitions
        self.table = raw_table(app, TABLE_NAME, partitions)
        self.source_topic = raw_topic(app, self.catalogue.raw, partitions=partitions)
        self.topics = [raw_topic(app, name, partitions=partitions)
                       for name in (self.catalogue.raw, self.catalogue.raw_dlq,
                                    self.catalogue.events)]
        if router is not None:
            router.route(self.catalogue.raw, self.handle_batch)
        self.declared = asyncio.Event()  # the receiver waits for the raw topic

    @property
    def sender(self) -> BatchSender:
        return app_sender(self.app, self.partitions)

    async def declare_topics(self) -> None:
        """Create raw, raw.dlq (and events) with the worker's partition count, retrying."""
        while not self.declared.is_set():
            try:
                for topic in self.topics:
                    await topic.maybe_declare()
            except Exception as error:  # the broker may be away: the receiver answers 503
                logger.warning("cannot create the ingest topics yet: %s", error)
                await asyncio.sleep(DECLARE_RETRY_SECONDS)
                continue
            self.declared.set()

    async def handle_batch(self, tp: TP, records: Sequence[KafkaRecord]) -> None:
        """Translate a partition's raw records; events and dead letters acknowledged by
        Kafka first, then the ticket states (changelog, then store)."""
        await self.declare_topics()
        generation = self.app.consumer_generation_id
        overlay = self.table.overlay(tp.partition)
        outputs: list[Output] = []
        for record in records:
            outputs += self.handle(record.key, record.value, record.headers, tp.partition,
                                   record.offset, overlay)
        # Events and states travel together (one round trip, not two): whichever reaches
        # Kafka first, a crash before the offsets are committed loses nothing (see above).
        deliveries = await self.sender.send(outputs)
        await overlay.commit(self.sender)
        if deliveries:
            await asyncio.gather(*deliveries)
        if self.app.consumer_generation_id != generation:
            raise Abandoned("partitions were reassigned while the batch was sent")

    def handle(self, key: bytes | None, value: bytes | None, headers: Any, partition: int,
               offset: int, memories: MutableMapping[bytes, bytes]) -> list[Output]:
        """The messages one raw message makes: events and/or a dead letter. Never raises."""
        body = value or b""
        pairs = header_list(headers)
        origin = f"{self.catalogue.raw}:{partition}:{offset}"
        meta = raw_meta(pairs)
        source = self.sources.get(meta.source) if meta is not None else None
        if meta is None or source is None:
            name = meta.source if meta is not None else "?"
            self.metrics.translated("", (), "unknown_source", 0)
            return [raw_dead_letter(self.catalogue.raw_dlq, key, body, pairs, "unknown_source",
                                    f"source {name!r} is not configured", origin)]
        try:
            result = translate_delivery(source, meta, body, memories, offset)
        except Exception as error:  # a bug must not stop the worker: dead-letter, log, go on
            logger.error("translating %s delivery %s failed:\n%s", meta.source,
                         meta.delivery_id, traceback.format_exc())
            self.metrics.translated(meta.source, (), "internal_error", 0)
            return [raw_dead_letter(self.catalogue.raw_dlq, key, body, pairs, "internal_error",
                                    f"{type(error).__name__} (see the worker's log)", origin)]
        self.metrics.translated(meta.source, [e["type"] for e in result.events], result.reason,
                                result.repeated)
        stamp = [(SOURCE, meta.source.encode()), (DELIVERY, meta.delivery_id.encode())]
        outputs = [Output(self.catalogue.events, event["ticket_id"].encode(),
                          orjson.dumps(event), stamp) for event in result.events]
        if result.reason is not None:
            outputs.append(raw_dead_letter(self.catalogue.raw_dlq, key, body, pairs,
                                           result.reason, result.message or "", origin))
        return outputs


def add_translator_agent(app: faust.App, settings: Settings, sources: Mapping[str, Source],
                         metrics: IngestMetrics) -> TranslatorService:
    """Route `<prefix>raw` to a `TranslatorService` on the batch path; add its table."""
    router: BatchRouter | None = getattr(app, "slamon_router", None)
    service = TranslatorService(app, settings, sources, metrics, router)

    async def unused(stream: faust.StreamT) -> None:
        # Subscribes the raw topic (and groups it for assignment); the batch consumer hands
        # its records to the service, so nothing arrives here.
        async for _ in stream.events():
            logger.error("a raw record reached Faust's stream path")

    app.agent(service.source_topic, name="slamon.ingest")(unused)
    app.task(service.declare_topics)
    return service
