"""The clock agent and its deadline ticks, wired into a Faust app.

One agent reads `<prefix>events` and `<prefix>ticks` together: the topics are
co-partitioned, so Faust assigns partition p of both to the same worker, and
a tick is handled in-stream like any event (table writes, changelog and
offsets stay consistent; a timer could not write the table). A background
task sends a tick to a partition this worker actively owns when the earliest
deadline of that partition is due, or at once after a rebalance so the
deadline index is rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import faust

from agents.processor import ClockProcessor, wall_ms
from agents.settings import Settings
from agents.tables import raw_table, raw_topic
from sla.engine import Engine
from streams.outputs import Output

__all__ = ["ClockService", "add_clock_agent"]

logger = logging.getLogger(__name__)

TICK_RETRY_MS = 5_000  # a tick not handled by then is sent again


async def send_outputs(app: faust.App, outputs: list[Output]) -> None:
    """Hand outputs to the Kafka producer, without waiting for their delivery.

    Straight to the producer: Faust's topic/buffer layers cost several times more per
    message. Faust flushes the producer before it commits offsets, so an output is on
    Kafka before the event that caused it counts as processed (at least once).
    """
    producer = app.producer
    for output in outputs:
        await producer.send(output.topic, output.key, output.value, None, None,
                            output.headers)


class ClockService:
    """Holds what the agent and the tick task share: processor, topics, in-flight ticks."""

    def __init__(self, app: faust.App, settings: Settings, engine: Engine,
                 observer: Any = None, before_first: asyncio.Event | None = None) -> None:
        self.app = app
        self.before_first = before_first  # awaited before the first message is handled
        self.catalogue = settings.topics
        self.tick_interval = settings.tick_interval
        partitions = settings.partitions
        self.table = raw_table(app, "slamon-clocks", partitions)
        self.processor = ClockProcessor(engine, self.table, self.catalogue, observer)
        self.source = raw_topic(app, self.catalogue.events, self.catalogue.ticks,
                                partitions=partitions)
        self.topics = {
            name: raw_topic(app, name, partitions=partitions)
            for name in (self.catalogue.events, self.catalogue.ticks,
                         self.catalogue.compliance_input, *self.catalogue.outputs)
        }
        self.index_stale = True
        self.declared = False
        self.ticks_in_flight: dict[int, int] = {}  # partition -> when its tick was sent
        self.wake = asyncio.Event()

    # -- the agent -----------------------------------------------------------
    async def declare_topics(self) -> None:
        """Create the output topics with the right partition count before the first send."""
        if not self.declared:
            for topic in self.topics.values():
                await topic.maybe_declare()
            self.declared = True

    async def run_agent(self, stream: faust.StreamT) -> None:
        await self.declare_topics()
        if self.before_first is not None:
            await self.before_first.wait()
        processor = self.processor
        ticks = self.catalogue.ticks
        async for event in stream.events():
            message = event.message
            if self.index_stale:
                self._rebuild_index()
            if message.topic == ticks:
                self.ticks_in_flight.pop(message.partition, None)
                outputs = processor.handle_tick(message.partition)
            else:
                outputs = processor.handle_event(message.partition, message.key, message.value,
                                                 message.offset)
                self._maybe_wake(message.partition)
            await self.table.flush_changelog()
            await send_outputs(self.app, outputs)

    def _rebuild_index(self) -> None:
        count = self.processor.rebuild_index(self.table.items())
        self.index_stale = False
        logger.info("deadline index rebuilt: %d tickets with something due", count)

    def _maybe_wake(self, partition: int) -> None:
        due = self.processor.index.next_due(partition)
        if due is not None and due <= wall_ms() + self.tick_interval * 1000:
            self.wake.set()

    # -- ticks ---------------------------------------------------------------
    def owned_partitions(self) -> list[int]:
        events = self.catalogue.events
        return sorted(tp.partition for tp in self.app.assignor.assigned_actives()
                      if tp.topic == events)

    def on_partitions_assigned(self) -> None:
        self.index_stale = True
        self.declared = False
        self.ticks_in_flight.clear()
        self.wake.set()

    async def tick_loop(self) -> None:
        """Send ticks to owned partitions whose earliest deadline is due; sleep until the next."""
        await self.declare_topics()
        while True:
            timeout = self.tick_interval
            if not self.app.rebalancing:
                timeout = await self._send_due_ticks()
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(timeout, 0.005))

    async def _send_due_ticks(self) -> float:
        now = wall_ms()
        sleep_ms = self.tick_interval * 1000
        index = self.processor.index
        for partition in self.owned_partitions():
            sent = self.ticks_in_flight.get(partition)
            if sent is not None and now - sent < TICK_RETRY_MS:
                continue
            due = None if self.index_stale else index.next_due(partition)
            if self.index_stale or (due is not None and due <= now):
                self.ticks_in_flight[partition] = now
                await self.topics[self.catalogue.ticks].send(value=b"", partition=partition)
            elif due is not None:
                sleep_ms = min(sleep_ms, due - now)
        return sleep_ms / 1000


def add_clock_agent(app: faust.App, settings: Settings, engine: Engine, observer: Any = None,
                    before_first: asyncio.Event | None = None) -> ClockService:
    """Add the clock agent, its table and the tick task to `app`."""
    service = ClockService(app, settings, engine, observer, before_first)
    app.agent(service.source, name="slamon.clocks")(service.run_agent)
    app.task(service.tick_loop)

    @app.on_partitions_assigned.connect
    async def _assigned(*args: Any, **kwargs: Any) -> None:
        service.on_partitions_assigned()

    return service
