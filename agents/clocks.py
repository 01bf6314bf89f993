"""The clock agent and its deadline ticks, on the batch path.

`<prefix>events` and `<prefix>ticks` are co-partitioned, so Faust assigns partition p
of both to the same worker; the batch consumer (agents/batch/consumer.py) hands each
partition's records to `handle_events` or `handle_ticks`. A batch's outputs are sent
and acknowledged by Kafka before the ticket states that record them are written
(agents/processor.py): a crash in between re-sends them, it never loses them.

Deadlines fire only from ticks, and a tick fires only what a partition can know is
due. The tick task sends `{"at": T}` to ticks-p when p has something due by T. The
broker answers the fetch that brings the tick after the tick was appended (after T),
and the same fetch (or a later one) reports the end of events-p: once events-p is
handled up to that end, every event that was on the topic at T has been applied, and
the deadlines due by T fire. A worker catching up on a backlog (after a restart, an
outage, a rebalance) therefore never fires a deadline that an event still queued would
have stopped: the tick waits until the backlog is applied. (With the two partitions on
different brokers the ends compare within a network delay.) A tick that cannot fire
although events-p is handled up to the end its last fetch reported (a fetch older than
the tick's) is sent again after TICK_RECHECK_MS, since a quiet events-p brings no batch
that would fire it; a tick that never comes back, after TICK_RETRY_MS.

Events held for a ticket not yet opened are judged against the wall clock while the
partition is live, and against its event time while it catches up, as replay would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import faust
import orjson
from faust.types import TP

from agents.batch.consumer import Abandoned, BatchRouter, KafkaRecord
from agents.batch.sender import BatchSender, Record, app_sender
from agents.processor import Batch, ClockObserver, ClockProcessor, wall_ms
from agents.settings import Settings
from agents.tables import raw_table, raw_topic
from sla.engine import Engine

__all__ = ["ClockService", "add_clock_agent"]

logger = logging.getLogger(__name__)

TICK_RETRY_MS = 5_000  # a tick not fired by then is sent again
# A tick that arrived but could not fire, with events-p handled up to the end its last
# fetch response reported, is sent again this soon instead (see `ClockService._held`).
TICK_RECHECK_MS = 200


class Tick(NamedTuple):
    """Fire what is due by `at` once events are handled up to their end as of `as_of`."""

    at: int
    as_of: int  # when the fetch that brought the tick was processed (>= at)

    @staticmethod
    def parse_at(value: bytes | None) -> int | None:
        try:
            return int(orjson.loads(value or b"")["at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None  # a tick of an older release: the tick task sends a new one

    @staticmethod
    def encode(at: int) -> bytes:
        return orjson.dumps({"at": at})


class TickRetries:
    """When each partition's tick may be sent again: not while one is on its way."""

    def __init__(self) -> None:
        self._retry_at: dict[int, int] = {}  # partition -> earliest instant to send again

    def sent(self, partition: int, at: int) -> None:
        self._retry_at[partition] = at + TICK_RETRY_MS

    def held(self, partition: int, now: int) -> None:
        """The partition's tick arrived but could not fire: let it be sent again soon."""
        soon = now + TICK_RECHECK_MS
        if soon < self._retry_at.get(partition, soon + 1):
            self._retry_at[partition] = soon

    def fired(self, partition: int) -> None:
        self._retry_at.pop(partition, None)

    def clear(self) -> None:
        self._retry_at.clear()

    def wait_ms(self, partition: int, now: int) -> int | None:
        """How long until the partition's tick may be sent again; None: it may be now."""
        retry_at = self._retry_at.get(partition)
        return None if retry_at is None or retry_at <= now else retry_at - now


class ClockService:
    """What the batch handlers and the tick task share: processor, table, ticks."""

    def __init__(self, app: faust.App, settings: Settings, engine: Engine,
                 router: BatchRouter, observer: ClockObserver | None = None,
                 before_first: asyncio.Event | None = None) -> None:
        self.app = app
        self.router = router
        self.before_first = before_first  # awaited before the first batch is handled
        self.catalogue = settings.topics
        self.tick_interval = settings.tick_interval
        self.partitions = partitions = settings.partitions
        self.table = raw_table(app, "slamon-clocks", partitions)
        self.processor = ClockProcessor(engine, self.table, self.catalogue, observer,
                                        max_future_ms=round(settings.max_future * 1000))
        self.source = raw_topic(app, self.catalogue.events, self.catalogue.ticks,
                                partitions=partitions)
        self.topics = {
            name: raw_topic(app, name, partitions=partitions)
            for name in (self.catalogue.events, self.catalogue.ticks,
                         self.catalogue.compliance_input, *self.catalogue.outputs)
        }
        router.route(self.catalogue.events, self.handle_events)
        router.route(self.catalogue.ticks, self.handle_ticks)
        self.index_stale = True
        self.declared = False
        self.pending_ticks: dict[int, Tick] = {}  # partition -> the latest tick not yet fired
        self.tick_retries = TickRetries()  # ticks on their way, and when to send again
        self.wake = asyncio.Event()

    @property
    def sender(self) -> BatchSender:
        return app_sender(self.app, self.partitions)

    # -- batches -------------------------------------------------------------
    async def declare_topics(self) -> None:
        """Create the output topics with the right partition count before the first send."""
        if not self.declared:
            for topic in self.topics.values():
                await topic.maybe_declare()
            self.declared = True

    async def _prepare(self) -> None:
        await self.declare_topics()
        if self.before_first is not None:
            await self.before_first.wait()
        if self.index_stale:
            count = self.processor.rebuild_index(self.table.items())
            self.index_stale = False
            logger.info("deadline index rebuilt: %d tickets with something due", count)

    async def handle_events(self, tp: TP, records: Sequence[KafkaRecord]) -> None:
        await self._prepare()
        partition = tp.partition
        position = records[-1].offset + 1
        live = position >= self.app.consumer.highwater(tp)
        batch = self.processor.apply_events(
            partition, ((r.key, r.value, r.offset) for r in records),
            now=wall_ms() if live else None)
        tick = self.pending_ticks.get(partition)
        if tick is not None:
            if await self.router.caught_up(tp, tick.as_of, position):
                self.processor.fire_due(partition, tick.at, batch)
            else:
                await self._held(partition, position)
        await self._complete(batch)

    async def handle_ticks(self, tp: TP, records: Sequence[KafkaRecord]) -> None:
        await self._prepare()
        partition = tp.partition
        fetched = self.router.fetched(tp)
        received = fetched[1] if fetched is not None else wall_ms()
        for record in records:
            at = Tick.parse_at(record.value)
            latest = self.pending_ticks.get(partition)
            if at is not None and (latest is None or at > latest.at):
                self.pending_ticks[partition] = Tick(at, max(at, received))
        tick = self.pending_ticks.get(partition)
        if tick is None:
            return
        if not await self.router.caught_up(TP(self.catalogue.events, partition), tick.as_of):
            await self._held(partition)  # with a backlog, its batches fire the tick
            return
        await self._complete(self.processor.fire_due(partition, tick.at))

    async def _held(self, partition: int, position: int | None = None) -> None:
        """The partition's tick could not fire. When events-p is handled up to the end its
        last fetch response reported, that response came before the tick's, and a quiet
        events-p brings no batch that would fire the tick (only fetch responses without
        records): send it again soon, not after TICK_RETRY_MS. While events-p has a backlog,
        its batches fire the tick, and the last of them comes here."""
        events = TP(self.catalogue.events, partition)
        fetched = self.router.fetched(events)
        if position is None:
            position = await self.router.consumed(events)
        if fetched is None or position is None or position >= fetched[0]:
            logger.debug("tick of partition %d held (events handled to %s, last fetch %s): "
                         "sending it again soon", partition, position, fetched)
            self.tick_retries.held(partition, wall_ms())
            self.wake.set()

    async def _complete(self, batch: Batch) -> None:
        """Outputs to Kafka, then the states to the changelog, then to the store: each waited
        for before the next, so no state ever records an output Kafka does not have."""
        processor = self.processor
        generation = self.app.consumer_generation_id
        try:
            deliveries = await self.sender.send(batch.outputs)
            if deliveries:
                await asyncio.gather(*deliveries)
            if self.app.consumer_generation_id != generation:
                raise Abandoned("partitions were reassigned while the batch was sent")
            await self.table.commit(batch.partition, processor.prepare(batch), self.sender)
        except BaseException:
            processor.abandon(batch)
            raise
        processor.commit(batch)
        partition = batch.partition
        tick = self.pending_ticks.get(partition)
        if tick is not None and batch.fired_upto is not None and tick.at <= batch.fired_upto:
            del self.pending_ticks[partition]
            self.tick_retries.fired(partition)
        self._maybe_wake(partition)  # the tick task sleeps while a tick is in flight

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
        self.processor.forget()
        self.index_stale = True
        self.declared = False
        self.pending_ticks.clear()
        self.tick_retries.clear()
        self.wake.set()

    async def tick_loop(self) -> None:
        """Send ticks to owned partitions whose earliest deadline is due; sleep until the next."""
        while True:
            timeout = self.tick_interval
            if not self.app.rebalancing:
                try:
                    await self.declare_topics()
                    timeout = await self._send_due_ticks()
                except Exception:  # the broker is away: try again at the next interval
                    logger.warning("ticks could not be sent; retrying", exc_info=True)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(timeout, 0.005))

    async def _send_due_ticks(self) -> float:
        now = wall_ms()
        sleep_ms = self.tick_interval * 1000
        index = self.processor.index
        due_partitions = []
        retries = self.tick_retries
        for partition in self.owned_partitions():
            wait_ms = retries.wait_ms(partition, now)
            if wait_ms is not None:  # its tick is on its way
                sleep_ms = min(sleep_ms, wait_ms)
                continue
            due = None if self.index_stale else index.next_due(partition)
            if self.index_stale or (due is not None and due <= now):
                due_partitions.append(partition)
            elif due is not None:
                sleep_ms = min(sleep_ms, due - now)
        if due_partitions:
            await self._send_ticks(due_partitions)
        return sleep_ms / 1000

    async def _send_ticks(self, partitions: list[int]) -> None:
        at = wall_ms()
        ticks = self.catalogue.ticks
        for partition in partitions:
            self.tick_retries.sent(partition, at)
            for delivery in await self.sender.send([Record(ticks, None, Tick.encode(at))],
                                                   partition=partition):
                delivery.add_done_callback(_log_failure)


def _log_failure(delivery: asyncio.Future) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        logger.warning("a tick was not delivered (sent again later): %s", delivery.exception())


def add_clock_agent(app: faust.App, settings: Settings, engine: Engine, router: BatchRouter,
                    observer: ClockObserver | None = None,
                    before_first: asyncio.Event | None = None) -> ClockService:
    """Route the clock topics to a `ClockService`; add its table and the tick task to `app`."""
    service = ClockService(app, settings, engine, router, observer, before_first)

    async def unused(stream: faust.StreamT) -> None:
        # Subscribes the topics and groups them for co-partitioned assignment; the batch
        # consumer hands their records to the service, so nothing ever arrives here.
        async for _ in stream.events():
            logger.error("a clock topic record reached Faust's stream path")

    app.agent(service.source, name="slamon.clocks")(unused)
    app.task(service.tick_loop)

    @app.on_partitions_assigned.connect
    async def _assigned(*args: Any, **kwargs: Any) -> None:
        service.on_partitions_assigned()

    return service
