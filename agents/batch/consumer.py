"""The batch path: each partition's fetched records go to one handler and are acked in bulk.

Faust's per-message stream path costs ~80 µs of CPU per message before slamon does any
work (../shared/FAUST-NOTES.md): a future race per message in `_drain_messages`, the
stream iterator, the conductor's decode and queue, the sensors. `BatchConsumer` replaces
that path only for the topics a `BatchRouter` names; the consumer group, co-partitioned
assignment, changelogged tables, recovery, standbys and commit-after-producer-flush stay
Faust's. A table's changelog records, read while the worker rebuilds a table it owns or
keeps a standby copy of another worker's, are applied to the table in one write per fetch
with the recovery service's bookkeeping (`_apply_changelog`); every other topic takes
Faust's own path.

A handler gets at most `max_records` records of one partition, in offset order. When it
returns, the offsets are acked (committed with Faust's next commit, after the producer
is flushed); when it raises, they are not, and the same records are handed to it again
after a pause, until they succeed or the partition moves to another worker. A batch in
flight stands in Faust's set of unacked messages, so a rebalance waits for it. The
partitions of a fetch are handed over side by side, one lane per partition number (its
topics in order), so a batch waiting for Kafka's acks holds up no other partition's:
handlers must keep what partitions share consistent across their waits.

Faust internals this relies on (faust-streaming is pinned; tests/unit/test_faust_contract.py
fails loudly when an upgrade changes them): `Consumer._drain_messages`, `subscribe`,
`_wait_next_records`, `flow_active`, `perform_seek`, `_buffered_partitions`,
`_read_offset`, `_committed_offset`, `_acked`, `_acked_index`, `_n_acked`, `_add_gap`,
`_commit_every`, `_unacked_messages`, `_waiting_for_ack`, `_wait_for_ack`,
`_clean_unacked_messages`, `commit_and_end_transactions`, `wait_empty` (replaced, to leave
out its garbage collections), `faust.types.tuples.ack_lock`, the recovery service's
bookkeeping (`active_tps`, `standby_tps`, `tp_to_table`, `active_offsets`,
`standby_offsets`, `buffers`, `in_recovery`, `need_recovery`, `standby_remaining_total`,
`flush_buffers`, `_set_recovery_ended`, `_actives_span`, `signal_recovery_end`,
`_active_events_received_at`, `_last_active_event_processed_at`, `_processing_times`,
`num_samples_required_for_estimate`; the table manager's `standbys_ready`,
`on_standbys_ready`), `app.in_transaction`, and
what a table's `apply_changelog_batch` reads of an event,
`app.consumer_generation_id`, `app.monitor.stream_inbound_time`, the consumer thread's
`_create_worker_consumer` and the consumer's `_new_consumer_thread` (to set aiokafka's
`_fetch_max_wait_ms` before it starts), the producer's aiokafka
client (`_ensure_producer().client`, to read the cluster's topics), the aiokafka
transport's `Consumer` class attribute, and aiokafka's per-partition fetch state
(`highwater`, `timestamp`) reached as Faust's `verify_event_path` reaches it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from time import monotonic
from typing import Any, NamedTuple, Protocol

import faust
from aiokafka import TopicPartition
from faust.transport.consumer import CONSUMER_WAIT_EMPTY
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ack_lock
from mode import Service
from mode.utils.futures import notify

__all__ = ["Abandoned", "BatchConsumer", "BatchRouter", "KafkaRecord", "install"]

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # pause before a failed batch is handed over again
# How long a subscription waits for the cluster to report topics Faust has just created.
SUBSCRIBE_WAIT_SECONDS = 5.0
# The longest the broker holds a fetch that finds no new record (Faust sets 1,500 ms).
# aiokafka has one fetch in flight per broker. When a partition's fetched records wait
# over 100 ms to be handled (its prefetch backoff, as a batch of thousands does), it
# fetches the other, quiet partitions alone, and the broker holds that fetch for want of
# records; the busy partition's next records then wait behind it. With 1,500 ms, the
# live benchmark's worker sat idle for up to a second at a time (a quarter of its run).
# Lower costs an idle worker more empty fetches: ten a second per broker at 100 ms.
FETCH_MAX_WAIT_MS = 100


class Abandoned(Exception):
    """Raised by a handler that gave its batch up (the partition moved): not acked, not retried."""


class KafkaRecord(Protocol):
    """What a handler reads of an aiokafka ConsumerRecord."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


BatchHandler = Callable[[TP, Sequence[KafkaRecord]], Awaitable[None]]


class BatchRouter:
    """Topic -> batch handler, and where each handled partition stands."""

    def __init__(self, max_records: int = 1000) -> None:
        self.max_records = max_records
        self.handlers: dict[str, BatchHandler] = {}
        # tp -> next offset to handle; known once a batch was handled or the committed
        # offset was read at assignment. Ticks compare it with the end of the log.
        self.positions: dict[TP, int] = {}
        self.in_hand: set[TP] = set()  # fetched and not yet handled
        self.consumer: Any = None  # the BatchConsumer, once it runs
        self.failures = 0

    def route(self, topic: str, handler: BatchHandler) -> None:
        self.handlers[topic] = handler

    def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)

    def fetched(self, tp: TP) -> tuple[int, int] | None:
        """(highwater, when) of the last fetch response for `tp`: the log's end as of then."""
        return None if self.consumer is None else self.consumer.fetch_state(tp)

    async def caught_up(self, tp: TP, as_of: int, position: int | None = None) -> bool:
        """True when `tp` is handled up to the end its log had at `as_of` (epoch ms) or later.

        The end comes from a fetch response processed at `as_of` or later; `position` is
        the next offset to handle (by default, what `consumed` says).
        """
        fetched = self.fetched(tp)
        if fetched is None or fetched[1] < as_of:
            return False
        if position is None:
            position = await self.consumed(tp)
        return position is not None and position >= fetched[0]

    async def consumed(self, tp: TP) -> int | None:
        """The next offset of `tp` not yet handled, stepping over transaction markers.

        With no record of `tp` in hand, aiokafka's position is exact (it moves past control
        records that never reach a handler); with records in hand, only the handled one is.
        """
        position = self.positions.get(tp)
        if tp in self.in_hand or self.consumer is None:
            return position
        try:
            fetched = await self.consumer.position(tp)
        except Exception:  # not assigned (any more): only the handled position counts
            return position
        if fetched is None:
            return position
        return fetched if position is None else max(position, fetched)


class _ChangelogMessage(NamedTuple):
    """What a table store reads of a changelog event's message."""

    tp: TP
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class _ChangelogEvent(NamedTuple):
    """What a table's `apply_changelog_batch` reads of a Faust event (the memory store reads
    its key and value, RocksDB its message's)."""

    key: bytes | None
    value: bytes | None
    message: _ChangelogMessage


class _InFlight:
    """Stands in `_unacked_messages` while a batch is handled, so `wait_empty` waits for it."""

    __slots__ = ("__weakref__", "acked", "refcount")

    def __init__(self) -> None:
        self.acked = False
        self.refcount = 1


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, its worker consumer fetching with `FETCH_MAX_WAIT_MS`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when it starts its fetcher
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """The aiokafka consumer with `_drain_messages` handing batches to a `BatchRouter`."""

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def router(self) -> BatchRouter | None:
        return getattr(self.app, "slamon_router", None)

    def fetch_state(self, tp: TP) -> tuple[int, int] | None:
        """(highwater, epoch ms) from aiokafka's last fetch response for `tp`, if any.

        Read from the consumer thread's subscription state, as Faust's own
        `verify_event_path` does: two ints, written together by the fetcher.
        """
        try:
            consumer = self._thread._ensure_consumer()
            assignment = consumer._fetcher._subscriptions.subscription.assignment
            state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
        except Exception:  # not started, not subscribed, not assigned
            return None
        if state is None or state.highwater is None or state.timestamp is None:
            return None
        return state.highwater, state.timestamp

    async def perform_seek(self) -> None:
        await super().perform_seek()
        router = self.router
        if router is not None:
            for tp, offset in self._committed_offset.items():
                if offset is not None and tp.topic in router.handlers:
                    router.positions[tp] = offset

    async def subscribe(self, topics: Iterable[str]) -> None:
        """Subscribe once the cluster reports every topic (or after `SUBSCRIBE_WAIT_SECONDS`).

        Faust creates its internal topics (ticks, raw, the tables' changelogs) just before
        it subscribes, and the broker may not report them yet. Such a topic joined the
        subscription at the consumer's next metadata refresh, 10 s later, and the group
        rebalanced: on a new deployment's first start, in the middle of its backlog.
        """
        wanted = set(topics)
        await self._wait_for_topics(wanted)
        await super().subscribe(wanted)

    async def _wait_for_topics(self, topics: set[str]) -> None:
        try:
            client = self.app.producer._ensure_producer().client  # type: ignore[attr-defined]
        except Exception:  # no producer yet: subscribe as Faust would
            return
        deadline = monotonic() + SUBSCRIBE_WAIT_SECONDS
        pause = 0.1  # doubled each time: a cluster of thousands of topics answers slowly
        while True:
            try:  # never past the deadline, even when the broker does not answer
                cluster = await asyncio.wait_for(client.fetch_all_metadata(),
                                                 timeout=max(deadline - monotonic(), 0.5))
            except Exception as exc:  # the broker is away: the consumer will say so
                logger.debug("no metadata before subscribing: %r", exc)
                return
            missing = sorted(topic for topic in topics if not cluster.partitions_for_topic(topic))
            if not missing:
                return
            if monotonic() >= deadline:
                logger.warning("subscribing although the cluster does not report %s yet: "
                               "when it does, the group rebalances", ", ".join(missing))
                return
            await asyncio.sleep(pause)
            pause = min(2 * pause, 1.0)

    @Service.transitions_to(CONSUMER_WAIT_EMPTY)
    async def wait_empty(self) -> None:
        """Faust's `wait_empty` (a rebalance or a stop waits for every batch in flight),
        without the full garbage collection it runs on every turn of its loop.

        A full collection traverses every ticket state the worker keeps decoded (up to
        200,000): 0.6-0.8 s each in `bench/live.py`'s backlog. Faust's loop turns once per
        acknowledgement, so a rebalance that found batches in flight ran one collection
        after another, and the worker stood still for seconds. Nothing here needs one: a
        batch's marker leaves `_unacked_messages` when the batch ends.
        """
        turns = 0
        while not self.should_stop and self._unacked_messages:
            turns += 1
            if not turns % 10:
                self.log.warning("wait_empty: waiting for %d batches or messages in flight",
                                 len(self._unacked_messages))
            await self.commit()
            if not self._unacked_messages:
                break
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        await self.commit_and_end_transactions()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        router = self.router
        if router is not None:
            for tp in revoked:
                router.positions.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs a broker
        router = self.router
        if router is None:
            await super()._drain_messages(fetcher)
            return
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    await self._seek_back(records)
                    continue
                await self._handle_records(router, records, active)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise

    async def _seek_back(self, records: Mapping[TP, list[Any]]) -> None:
        """Records fetched while the flow is stopped (a rebalance or a recovery began) are not
        handed over: seek back to them, to fetch them again once the flow resumes.

        Faust seeks to the committed offsets, which leaves alone a partition with none
        (aiokafka seeks only offsets > 0): those are rewound to their first record not
        handed over. Without it, a worker that fetched a new partition's first records as
        a second worker joined went on after them (tests/integration/test_portal_live.py,
        on a broker with thousands of topics, where joining takes seconds).
        """
        try:
            await self.perform_seek()
        except Exception as exc:
            self.log.warning("exception performing seek when flow not active %r", exc)
        uncommitted = {tp: self._first_unread(tp, fetched) for tp, fetched in records.items()
                       if not self._committed_offset.get(tp)}
        if uncommitted:
            logger.info("records fetched while the flow was stopped, fetched again: %s",
                        {f"{tp.topic}:{tp.partition}": offset
                         for tp, offset in uncommitted.items()})
            await self._rewind(uncommitted)

    async def _handle_records(self, router: BatchRouter, records: Mapping[TP, list[Any]],
                              active: set[TP] | None) -> None:
        """Hand a fetch's records over: each partition number's topics in one lane, in order;
        the lanes side by side.

        A batch's handler waits twice for Kafka (its outputs, then its table writes): one
        partition after another, every batch waited for the acks of all before it. The
        topics of one partition number (events-p, ticks-p) share their tickets, so they stay
        in one lane; topics with no batch handler take Faust's path first, one by one.
        """
        generation = self.app.consumer_generation_id
        router.consumer = self
        router.in_hand = set(records)
        lanes: dict[int, list[tuple[TP, list[Any]]]] = {}
        faust_path: list[tuple[TP, list[Any]]] = []
        for tp, fetched in records.items():
            if tp.topic in router.handlers:
                lanes.setdefault(tp.partition, []).append((tp, fetched))
            else:
                faust_path.append((tp, fetched))
        if faust_path:
            await self._handle_lane(router, faust_path, active, generation)
        if len(lanes) <= 1:
            for lane in lanes.values():
                await self._handle_lane(router, lane, active, generation)
            return
        tasks = [asyncio.ensure_future(self._handle_lane(router, lane, active, generation))
                 for lane in lanes.values()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # The first error (a cancelled lane counts: a delivery cancelled as the consumer
            # stops) goes up as one lane's would; the other lanes stop at their next wait.
            # (Not a TaskGroup: it ignores a lane that ends cancelled, and its records,
            # fetched and never handled, would be skipped.)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _handle_lane(self, router: BatchRouter, lane: list[tuple[TP, list[Any]]],
                           active: set[TP] | None, generation: int) -> None:
        for index, (tp, fetched) in enumerate(lane):
            router.in_hand.discard(tp)
            if self.app.consumer_generation_id != generation or not self.flow_active:
                # A rebalance or a recovery began: what is left is fetched again later.
                await self._rewind({left: self._first_unread(left, unread)
                                    for left, unread in lane[index:]})
                return
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                # Paused after the fetch (a recovery began; `active` is Faust's live set).
                await self._rewind({tp: self._first_unread(tp, fetched)})
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            fresh = await self._unread(tp, fetched)
            if not fresh:
                continue
            handler = router.handlers.get(tp.topic)
            if handler is None:
                if not await self._apply_changelog(tp, fresh):
                    await self._one_by_one(tp, fresh)
                continue
            size = router.max_records
            for start in range(0, len(fresh), size):
                if not await self._handle_batch(router, handler, tp, fresh[start:start + size],
                                                generation):
                    await self._rewind({tp: fresh[start].offset})
                    break

    def _first_unread(self, tp: TP, fetched: list[Any]) -> int:
        """The offset of the first record of `fetched` that `_unread` would hand over."""
        last = self._read_offset[tp]
        if last is None:
            return int(fetched[0].offset)
        return next((int(r.offset) for r in fetched if r.offset >= last), int(last))

    async def _rewind(self, offsets: Mapping[TP, int]) -> None:
        """Seek each partition back to records fetched and not handled, to fetch them again.

        aiokafka's position is already past them, and the seek to committed offsets that
        ends a recovery leaves alone a partition with no committed offset (aiokafka seeks
        only offsets > 0): without this, records fetched just before a recovery paused
        their partition were never handled, and the worker went on after them.
        """
        for tp, offset in offsets.items():
            try:
                await self.seek(tp, offset)
            except Exception as exc:  # not assigned any more: its owner starts from committed
                logger.debug("no rewind of %s to %s: %r", tp, offset, exc)

    async def _unread(self, tp: TP, fetched: list[Any]) -> list[Any]:
        """The records not read before, with offset gaps recorded as Faust does."""
        last = self._read_offset[tp]
        fresh = []
        gaps = self.app.topics.acks_enabled_for(tp.topic)
        for record in fetched:
            offset = record.offset
            if last is not None and offset < last:
                continue
            if gaps and last and offset - last > 1:
                await self._add_gap(tp, last + 1, offset)
            fresh.append(record)
            last = offset
        return fresh

    async def _apply_changelog(self, tp: TP, fresh: list[Any]) -> bool:
        """Apply a fetch of a table's changelog partition to the table in one write, as
        Faust's recovery service would; False when `tp` is not one it recovers (Faust's path).

        Faust hands each changelog record to its recovery service one message at a time,
        through the conductor and a queue (`Recovery._slurp_changelogs`), and after each one
        sums what every partition has left: a worker rebuilding its tables read ~10,000
        records/s, and two workers keeping standbys of each other's tables took 2.3-2.9
        times the CPU of two without (README, Performance). The bookkeeping is the
        service's, for a partition this worker recovers (active: its own, after a
        rebalance or without its data) or keeps a copy of (standby): its offsets (a record
        at or below one is applied already), its buffer of the table applied first (events
        Faust's path took before, older than these), the end of an active recovery
        signalled once none is behind, standbys reported ready likewise.
        """
        app: Any = self.app
        tables = app.tables  # faust.tables.TableManager: its recovery service
        recovery = tables.recovery
        active = tp in recovery.active_tps  # first, as Faust's loop looks
        if active:
            if app.in_transaction:  # Faust's loop also fixes offsets of aborted transactions
                return False
            offsets = recovery.active_offsets
        elif tp in recovery.standby_tps:
            offsets = recovery.standby_offsets
        else:
            return False
        table = recovery.tp_to_table[tp]
        pending = recovery.buffers.get(table)
        if pending:
            table.apply_changelog_batch(pending)
            pending.clear()
        seen = offsets.get(tp)
        events = [_ChangelogEvent(r.key, r.value,
                                  _ChangelogMessage(tp, tp.partition, r.offset, r.key, r.value))
                  for r in fresh if seen is None or r.offset > seen]
        if events:
            for event in events:
                await table.on_changelog_event(event)
            table.apply_changelog_batch(events)
            offsets[tp] = events[-1].message.offset
            if active:
                _note_recovery_progress(recovery, tp, len(events))
        self._read_offset[tp] = fresh[-1].offset
        if active and recovery.in_recovery and not recovery.need_recovery():
            _signal_recovery_end(recovery)
        if not tables.standbys_ready and not recovery.standby_remaining_total():
            tables.on_standbys_ready()
        return True

    async def _one_by_one(self, tp: TP, fresh: list[Any]) -> None:
        """Faust's own per-message path, for topics without a batch handler."""
        for record in fresh:
            await self.wait_first(self.callback(self._to_message(tp, record)),
                                  self.suspend_flow.wait())
            self._read_offset[tp] = record.offset

    async def _handle_batch(self, router: BatchRouter, handler: BatchHandler, tp: TP,
                            batch: Sequence[Any], generation: int) -> bool:
        """Hand `batch` over until it succeeds; ack it. False when the partition moved away."""
        marker = _InFlight()
        self._unacked_messages.add(marker)  # type: ignore[arg-type]
        failed = False
        try:
            while True:
                if (self.app.consumer_generation_id != generation or self.should_stop
                        or (failed and not self.flow_active)):
                    return False  # reassigned, stopping, or a rebalance waits on a failing batch
                try:
                    await handler(tp, batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Abandoned as reason:
                    logger.info("batch at %s:%s given up: %s", tp, batch[0].offset, reason)
                    return False
                except Exception:  # handlers catch bad input; this is Kafka or a bug: retry
                    router.failures += 1
                    failed = True
                    logger.exception("batch of %d records at %s:%s failed; retrying in %.0f s",
                                     len(batch), tp, batch[0].offset, RETRY_SECONDS)
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            marker.acked = True
            self._unacked_messages.discard(marker)  # type: ignore[arg-type]
            notify(self._waiting_for_ack)
        self._ack_offsets(tp, [record.offset for record in batch])
        self._read_offset[tp] = batch[-1].offset
        router.positions[tp] = batch[-1].offset + 1
        self.app.monitor.stream_inbound_time[tp] = monotonic()
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        return True

    def _ack_offsets(self, tp: TP, offsets: list[int]) -> None:
        """`Consumer.ack` for a whole batch: one lock, one notification."""
        if not self.app.topics.acks_enabled_for(tp.topic):
            return
        with ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            acked = self._acked[tp]
            for offset in offsets:
                if (committed is None or offset >= committed) and offset not in index:
                    index.add(offset)
                    acked.append(offset)
                    self._n_acked += 1
        notify(self._waiting_for_ack)


class _BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer


def _note_recovery_progress(recovery: Any, tp: TP, count: int) -> None:
    """What Faust's loop records per active changelog record, for its progress log (the
    time left, estimated from the mean time between records) and its stall warnings."""
    now = monotonic()
    recovery._active_events_received_at[tp] = now
    last = getattr(recovery, "_last_active_event_processed_at", None)  # set at a start
    if last is not None:
        samples = recovery._processing_times
        limit = recovery.num_samples_required_for_estimate
        samples.extend([(now - last) / count] * min(count, limit))
        while len(samples) > limit:
            samples.popleft()
    recovery._last_active_event_processed_at = now


def _signal_recovery_end(recovery: Any) -> None:
    """The end of an active recovery, as Faust's loop signals it: what its buffers hold
    applied, the service out of recovery, its waiter woken. The loop clears the signal again
    before it next waits, so a recovery that starts later waits for its own end: the same
    here."""
    recovery.flush_buffers()
    recovery._set_recovery_ended()
    if recovery._actives_span is not None:
        recovery._actives_span.set_tag("Actives-Ready", True)
    recovery.signal_recovery_end.set()
    recovery.signal_recovery_end.clear()


def install(app: faust.App, router: BatchRouter) -> None:
    """Give `app` the batch consumer; call before anything touches `app.consumer`."""
    app.slamon_router = router  # type: ignore[attr-defined]
    app.transport = _BatchTransport(app.conf.broker_consumer, app)
