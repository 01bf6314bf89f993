"""The translator agent: `<prefix>raw` in, slamon events on `<prefix>events` out.

One agent reads the raw topic with a table of each ticket's last known state
(`slamon-ingest`, keyed `source|ticket` like the raw messages, so a ticket's state lives on
the partition its deliveries arrive on). For each delivery it runs the same translation as
`slamon translate` (`agents.ingest.translate`), writes the state, then sends the events
keyed by ticket_id (the clock agent's partitioning). A delivery that cannot be translated,
or names a source no longer configured, goes to `<prefix>raw.dlq` with the reason; any
other failure is logged with its traceback and dead-lettered as `internal_error`: the
worker never dies on a payload.

At least once, with no event lost and none doubled: the state changelog and the events are
both sent before the offset is committed (Faust flushes the producer before it commits).
If the worker dies in between, the delivery is read again from the same offset; the state
remembers which events that offset made and they are sent again with the same ids, which
the clock engine recognises (`agents.ingest.state`).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Mapping
from typing import Any

import faust
import orjson

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


class TranslatorService:
    """The translator agent's parts: sources, table, topics; `handle` is one message."""

    def __init__(self, app: faust.App, settings: Settings, sources: Mapping[str, Source],
                 metrics: IngestMetrics) -> None:
        self.app = app
        self.catalogue = settings.topics
        self.sources = sources
        self.metrics = metrics
        partitions = settings.partitions
        self.table = raw_table(app, TABLE_NAME, partitions)
        self.source_topic = raw_topic(app, self.catalogue.raw, partitions=partitions)
        self.topics = [raw_topic(app, name, partitions=partitions)
                       for name in (self.catalogue.raw, self.catalogue.raw_dlq,
                                    self.catalogue.events)]
        self.declared = asyncio.Event()  # the receiver waits for the raw topic
        self.receiver: Any = None  # set by add_ingest

    async def declare_topics(self) -> None:
        """Create raw, raw.dlq (and events) with the worker's partition count, once."""
        if not self.declared.is_set():
            for topic in self.topics:
                await topic.maybe_declare()
            self.declared.set()

    async def run_agent(self, stream: faust.StreamT) -> None:
        await self.declare_topics()
        producer = self.app.producer
        async for event in stream.events():
            message = event.message
            outputs = self.handle(message.key, message.value, message.headers,
                                  message.partition, message.offset)
            await self.table.flush_changelog()
            for output in outputs:
                await producer.send(output.topic, output.key, output.value, None, None,
                                    output.headers)

    def handle(self, key: bytes | None, value: bytes | None, headers: Any, partition: int,
               offset: int) -> list[Output]:
        """The messages one raw message makes: events and/or a dead letter. Never raises."""
        body = value or b""
        pairs = header_list(headers)
        origin = f"{self.catalogue.raw}:{partition}:{offset}"
        meta = raw_meta(pairs)
        source = self.sources.get(meta.source) if meta is not None else None
        if meta is None or source is None:
            name = meta.source if meta is not None else "?"
            self.metrics.translated(name if source else "", (), "unknown_source", 0)
            return [raw_dead_letter(self.catalogue.raw_dlq, key, body, pairs, "unknown_source",
                                    f"source {name!r} is not configured", origin)]
        try:
            result = translate_delivery(source, meta, body, self.table, offset)
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
    """Add the translator agent and its table to `app`."""
    service = TranslatorService(app, settings, sources, metrics)
    app.agent(service.source_topic, name="slamon.ingest")(service.run_agent)
    return service
