"""How the batch consumer hands a fetch's records over (agents/batch/consumer.py).

Records it fetched and did not hand over are fetched again (issue 10). aiokafka's
position is past every record it returned. When a recovery pauses a partition between
the fetch and the handling, or a rebalance begins mid-way through a fetch, the records
left over must be sought back to: the seek to committed offsets that ends a recovery
leaves alone a partition with no committed offset, so without the rewind the worker went
on after them (the chaos rebalance test lost 7,000 events this way).

Partitions are handed over side by side, one lane per partition number: a batch waiting
for Kafka's acks no longer holds up the other partitions' batches (the breach detection
delay waited behind them), and the topics of one partition number keep their order.

No broker: the consumer is built, never started; `seek` is recorded instead of sent.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import faust
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from agents.app import create_app
from agents.batch import consumer as batch_consumer
from agents.batch.consumer import Abandoned, BatchConsumer, BatchRouter
from agents.settings import Settings

EVENTS = "sla.events"
TICKS = "sla.ticks"


@dataclass
class Rec:
    offset: int
    key: bytes | None = b"t"
    value: bytes | None = b"{}"
    headers: tuple = ()


@pytest.fixture()
def app(tmp_path: Path) -> faust.App:
    return create_app(Settings(app_id="slamon-rewind", store="memory://",
                               data_dir=tmp_path / "data", partitions=4,
                               policies=Path("config/policies.yaml")))


@pytest.fixture()
def consumer(app: faust.App, monkeypatch: pytest.MonkeyPatch) -> BatchConsumer:
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer)
    consumer.sought = []  # type: ignore[attr-defined]

    async def seek(tp: TP, offset: int) -> None:
        consumer.sought.append((tp.partition, offset))  # type: ignore[attr-defined]
        consumer._read_offset[tp] = offset or None

    monkeypatch.setattr(consumer, "seek", seek)
    monkeypatch.setattr(consumer, "highwater", lambda tp: 100)
    consumer.flow_active = True
    return consumer


def _records(first: int, count: int) -> list[Rec]:
    return [Rec(offset) for offset in range(first, first + count)]


def _router(handled: list[tuple[int, int, int]], fail_at: int | None = None) -> BatchRouter:
    router = BatchRouter(max_records=10)

    async def handler(tp: TP, batch: list[Rec]) -> None:
        if batch[0].offset == fail_at:
            raise Abandoned("partitions were reassigned")
        handled.append((tp.partition, batch[0].offset, batch[-1].offset))

    router.route(EVENTS, handler)
    return router


async def test_a_partition_paused_after_the_fetch_is_sought_back(consumer: BatchConsumer) -> None:
    handled: list[tuple[int, int, int]] = []
    p0, p1 = TP(EVENTS, 0), TP(EVENTS, 1)
    records = {p1: _records(0, 25), p0: _records(40, 5)}
    await consumer._handle_records(_router(handled), records, active={p0})
    assert handled == [(0, 40, 44)]
    assert consumer.sought == [(1, 0)]  # type: ignore[attr-defined]


async def test_a_rebalance_mid_fetch_rewinds_every_partition_left(consumer: BatchConsumer,
                                                                  app: faust.App) -> None:
    handled: list[tuple[int, int, int]] = []
    p0, p1, p2 = TP(EVENTS, 0), TP(EVENTS, 1), TP(EVENTS, 2)
    router = _router(handled)
    inner = router.handlers[EVENTS]

    async def stop_flow_after(tp: TP, batch: list[Rec]) -> None:
        await inner(tp, batch)
        consumer.flow_active = False  # a rebalance began while this batch was handled

    router.route(EVENTS, stop_flow_after)
    consumer._read_offset[p1] = 7  # handled up to 7 before: the rewind starts there
    records = {p0: _records(0, 5), p1: _records(5, 10), p2: _records(30, 3)}
    await consumer._handle_records(router, records, active=None)
    assert handled == [(0, 0, 4)]
    assert consumer.sought == [(1, 7), (2, 30)]  # type: ignore[attr-defined]


async def test_an_abandoned_batch_is_sought_back_to(consumer: BatchConsumer) -> None:
    handled: list[tuple[int, int, int]] = []
    p0 = TP(EVENTS, 0)
    await consumer._handle_records(_router(handled, fail_at=10), {p0: _records(0, 25)},
                                   active=None)
    assert handled == [(0, 0, 9)]
    assert consumer.sought == [(0, 10)]  # type: ignore[attr-defined]


async def test_partitions_are_handed_over_side_by_side(consumer: BatchConsumer) -> None:
    """Partition 0's batch waits (for Kafka's acks, say) until partition 1's has run: one
    after the other, this would never end."""
    handled: list[tuple[int, int, int]] = []
    router = _router(handled)
    inner = router.handlers[EVENTS]
    partition_1_done = asyncio.Event()

    async def acks_wait(tp: TP, batch: list[Rec]) -> None:
        if tp.partition == 0:
            await partition_1_done.wait()
        await inner(tp, batch)
        if tp.partition == 1:
            partition_1_done.set()

    router.route(EVENTS, acks_wait)
    records = {TP(EVENTS, 0): _records(0, 3), TP(EVENTS, 1): _records(10, 3)}
    await asyncio.wait_for(consumer._handle_records(router, records, active=None), 5)
    assert handled == [(1, 10, 12), (0, 0, 2)]
    assert consumer._read_offset[TP(EVENTS, 0)] == 2


async def test_the_topics_of_one_partition_keep_their_order(consumer: BatchConsumer) -> None:
    """events-p and ticks-p share their tickets: ticks-p waits for events-p's batch, while
    partition 1 goes on beside them."""
    seen: list[tuple[str, int, str]] = []
    router = BatchRouter(max_records=10)

    def handler(topic: str):
        async def handle(tp: TP, batch: list[Rec]) -> None:
            seen.append((topic, tp.partition, "start"))
            await asyncio.sleep(0.01)  # the acks
            seen.append((topic, tp.partition, "end"))
        return handle

    router.route(EVENTS, handler("events"))
    router.route(TICKS, handler("ticks"))
    records = {TP(EVENTS, 0): _records(0, 3), TP(TICKS, 0): _records(0, 1),
               TP(EVENTS, 1): _records(0, 2)}
    await consumer._handle_records(router, records, active=None)
    lane_0 = [step for step in seen if step[1] == 0]
    assert lane_0 == [("events", 0, "start"), ("events", 0, "end"),
                      ("ticks", 0, "start"), ("ticks", 0, "end")]
    assert seen.index(("events", 1, "start")) < seen.index(("events", 0, "end"))


async def test_a_lane_that_fails_stops_the_others_with_its_own_error(
        consumer: BatchConsumer) -> None:
    """The drain loop tells a stopped consumer by the error's type, not an ExceptionGroup."""
    router = BatchRouter(max_records=10)
    cancelled = asyncio.Event()

    async def handle(tp: TP, batch: list[Rec]) -> None:
        if tp.partition == 1:
            raise asyncio.CancelledError()  # what a stopping consumer raises into a lane
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    router.route(EVENTS, handle)
    records = {TP(EVENTS, 0): _records(0, 3), TP(EVENTS, 1): _records(0, 3)}
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(consumer._handle_records(router, records, active=None), 5)
    assert cancelled.is_set()


async def test_records_fetched_while_the_flow_is_stopped_are_fetched_again(
        consumer: BatchConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebalance stopped the flow after the fetch: Faust seeks the partitions with a
    committed offset back to it; one with none (a new partition's first records, as a second
    worker joined) is rewound to its first record, or the worker would go on after them."""
    p0, p1 = TP(EVENTS, 0), TP(EVENTS, 1)

    async def seek_to_committed() -> None:
        consumer._committed_offset[p0] = 3  # what Faust's perform_seek leaves behind

    monkeypatch.setattr(consumer, "perform_seek", seek_to_committed)
    consumer.flow_active = False
    await consumer._seek_back({p0: _records(3, 4), p1: _records(0, 12)})
    assert consumer.sought == [(1, 0)]  # type: ignore[attr-defined]


async def test_a_rebalance_waits_for_a_batch_in_flight_and_collects_no_garbage(
        consumer: BatchConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    """`wait_empty` (a rebalance, a stop) returns once the batch in flight is handled; Faust's
    own ran a full garbage collection on every turn, seconds of standing still in a worker
    that keeps 200,000 decoded ticket states."""
    collections: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(1) or 0)
    commits: list[int] = []

    async def commit(*args: object, **kwargs: object) -> bool:
        commits.append(1)
        return True

    monkeypatch.setattr(consumer, "commit", commit)
    monkeypatch.setattr(consumer, "loop", asyncio.get_running_loop())  # built outside it
    release = asyncio.Event()
    handled: list[int] = []
    router = BatchRouter(max_records=10)

    async def handler(tp: TP, batch: list[Rec]) -> None:
        await release.wait()
        handled.append(batch[0].offset)

    router.route(EVENTS, handler)
    batch = asyncio.ensure_future(consumer._handle_batch(
        router, handler, TP(EVENTS, 0), _records(0, 3), consumer.app.consumer_generation_id))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(consumer.wait_empty())
    await asyncio.sleep(0.05)
    assert not waiting.done(), "wait_empty returned with a batch in flight"
    release.set()
    await asyncio.wait_for(waiting, timeout=5)
    assert handled == [0] and await batch
    assert commits, "wait_empty commits what was acked"
    assert collections == []


@dataclass
class _Cluster:
    known: set[str]

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1} if topic in self.known else None


def _cluster_and_subscription(consumer: BatchConsumer, monkeypatch: pytest.MonkeyPatch,
                              fetch: Callable[[], Awaitable[_Cluster]],
                              ) -> list[set[str]]:
    """The producer's client answers metadata with `fetch`; Faust's own subscribe records
    what it is given, in the list returned."""

    class Client:
        async def fetch_all_metadata(self) -> _Cluster:
            return await fetch()

    monkeypatch.setattr(consumer.app.producer, "_ensure_producer",
                        lambda: type("P", (), {"client": Client()})(), raising=False)
    subscribed: list[set[str]] = []

    async def subscribe(self: BatchConsumer, topics: set[str]) -> None:
        subscribed.append(set(topics))

    monkeypatch.setattr(faust_aiokafka.Consumer, "subscribe", subscribe)
    return subscribed


async def test_subscribing_waits_until_the_cluster_reports_the_topics(
        consumer: BatchConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust creates its internal topics just before it subscribes: a topic the broker does
    not report yet joined the subscription at the next metadata refresh, with a rebalance."""
    known = {"ticks"}
    answers: list[bool] = []  # per answer: had Faust subscribed before it was asked for?

    async def fetch() -> _Cluster:
        answers.append(bool(subscribed))
        if len(answers) == 3:
            known.add("raw")  # the third answer reports it
        return _Cluster(set(known))

    subscribed = _cluster_and_subscription(consumer, monkeypatch, fetch)
    await consumer.subscribe(["ticks", "raw"])
    assert subscribed == [{"ticks", "raw"}]
    assert answers == [False, False, False]  # subscribed right after the answer with both


async def test_subscribing_gives_up_waiting_for_a_topic_that_never_comes(
        consumer: BatchConsumer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    async def fetch() -> _Cluster:
        return _Cluster({"ticks"})

    subscribed = _cluster_and_subscription(consumer, monkeypatch, fetch)
    monkeypatch.setattr(batch_consumer, "SUBSCRIBE_WAIT_SECONDS", 0.2)
    await asyncio.wait_for(consumer.subscribe(["ticks", "events"]), timeout=5)
    assert subscribed == [{"ticks", "events"}]
    assert "does not report events yet" in caplog.text


async def test_subscribing_does_not_wait_past_the_deadline_for_a_silent_broker(
        consumer: BatchConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def fetch() -> _Cluster:
        await asyncio.sleep(3600)  # a broker that never answers
        raise AssertionError("unreachable")

    subscribed = _cluster_and_subscription(consumer, monkeypatch, fetch)
    monkeypatch.setattr(batch_consumer, "SUBSCRIBE_WAIT_SECONDS", 0.2)
    await asyncio.wait_for(consumer.subscribe(["ticks"]), timeout=5)
    assert subscribed == [{"ticks"}]


# -- changelog partitions: standbys, active recovery ----------------------------------------


@pytest.fixture()
def one_by_one(consumer: BatchConsumer, monkeypatch: pytest.MonkeyPatch) -> list[TP]:
    """The partitions handed to Faust's own per-message path (recorded, not run)."""
    handed: list[TP] = []

    async def faust_path(tp: TP, fresh: list[Rec]) -> None:
        handed.append(tp)

    monkeypatch.setattr(consumer, "_one_by_one", faust_path)
    return handed


def _changelog_event(tp: TP, offset: int, key: bytes, value: bytes | None) -> object:
    from agents.batch.consumer import _ChangelogEvent, _ChangelogMessage

    return _ChangelogEvent(key, value, _ChangelogMessage(tp, tp.partition, offset, key, value))


async def test_a_standby_partition_is_applied_to_its_table_in_one_write(
        consumer: BatchConsumer, app: faust.App, one_by_one: list[TP]) -> None:
    """Faust's recovery service takes a standby's records one message at a time; the batch
    consumer applies a fetch's worth at once, with the service's own bookkeeping."""
    table = app.tables["slamon-clocks"]
    changelog = table.changelog_topic.get_topic_name()
    standby, active = TP(changelog, 1), TP(changelog, 2)
    recovery = app.tables.recovery
    recovery.add_standby(table, standby)
    recovery.standby_offsets[standby] = 0  # offset 0 was applied before
    recovery.standby_highwaters[standby] = 5
    # Faust's path took an older record of `a` before: it must not land after the newer one.
    recovery.buffers[table].append(_changelog_event(standby, 0, b"a", b"old"))
    records = [Rec(0, b"z", b"applied before"), Rec(1, b"a", b"new"), Rec(2, b"b", b"1"),
               Rec(3, b"c", b"2"), Rec(4, b"b", None)]
    assert not app.tables.standbys_ready
    await consumer._handle_records(BatchRouter(), {standby: records, active: _records(0, 2)},
                                   active=None)
    assert one_by_one == [active]  # not a standby: Faust's own path
    assert dict(table.data.data) == {b"a": b"new", b"c": b"2"}
    assert recovery.buffers[table] == []
    assert recovery.standby_offsets[standby] == 4
    assert consumer._read_offset[standby] == 4
    assert not app.tables.standbys_ready  # one record behind its highwater
    await consumer._handle_records(BatchRouter(), {standby: [Rec(5, b"d", b"3")]}, active=None)
    assert table.data.data[b"d"] == b"3"
    assert app.tables.standbys_ready


async def test_an_active_recovery_is_applied_in_one_write_and_signalled_once_caught_up(
        consumer: BatchConsumer, app: faust.App, one_by_one: list[TP]) -> None:
    """A worker rebuilding a table it owns (after a rebalance, or without its data) read
    ~10,000 changelog records/s through Faust's loop; the batch consumer applies a fetch's
    worth at once and ends the recovery as the loop does: buffers flushed, the service out
    of recovery, its waiter woken, the signal clear again for the next recovery."""
    table = app.tables["slamon-clocks"]
    changelog = table.changelog_topic.get_topic_name()
    own = TP(changelog, 3)
    recovery = app.tables.recovery
    recovery.add_active(table, own)
    recovery.active_offsets[own] = 0  # offset 0 is in the store already
    recovery.active_highwaters[own] = 5  # the last offset of the changelog
    recovery._set_recovery_started()
    recovery.buffers[table].append(_changelog_event(own, 0, b"a", b"old"))
    ended = asyncio.create_task(recovery.signal_recovery_end.wait())
    await consumer._handle_records(BatchRouter(), {own: [
        Rec(0, b"z", b"applied before"), Rec(1, b"a", b"new"), Rec(2, b"b", b"1"),
        Rec(3, b"c", b"2"), Rec(4, b"b", None)]}, active=None)
    await asyncio.sleep(0)
    assert one_by_one == []
    assert dict(table.data.data) == {b"a": b"new", b"c": b"2"}
    assert recovery.active_offsets[own] == 4 and consumer._read_offset[own] == 4
    assert recovery.in_recovery and not ended.done()  # one record behind
    assert own in recovery._active_events_received_at
    await consumer._handle_records(BatchRouter(), {own: [Rec(5, b"d", b"3")]}, active=None)
    await asyncio.wait_for(ended, 1)
    assert table.data.data[b"d"] == b"3"
    assert not recovery.in_recovery and not app.in_recovery
    assert not recovery.signal_recovery_end.is_set()  # a pulse, as the loop's


async def test_changelog_records_in_a_transaction_take_faust_s_path(
        consumer: BatchConsumer, app: faust.App, one_by_one: list[TP],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's loop also moves the offsets of aborted transactions: with exactly-once on,
    its path keeps doing it."""
    table = app.tables["slamon-clocks"]
    own = TP(table.changelog_topic.get_topic_name(), 0)
    app.tables.recovery.add_active(table, own)
    monkeypatch.setattr(app, "in_transaction", True)
    await consumer._handle_records(BatchRouter(), {own: [Rec(0, b"a", b"1")]}, active=None)
    assert one_by_one == [own] and b"a" not in table.data.data
