"""The faust-streaming and aiokafka internals the batch path relies on (agents/batch/consumer.py).

faust-streaming is pinned exactly; these tests fail loudly, naming what moved, when an
upgrade changes an internal the batch consumer, the tables or the sender use. No broker:
the app and its consumer are built, never started.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from pathlib import Path

import faust
import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.stores import memory, rocksdb
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from agents.app import create_app
from agents.batch.consumer import FETCH_MAX_WAIT_MS, BatchConsumer, BatchRouter
from agents.settings import Settings

PINNED = "0.15.3"


@pytest.fixture()
def app(tmp_path: Path) -> faust.App:
    return create_app(Settings(app_id="slamon-contract", store="memory://",
                               data_dir=tmp_path / "data", partitions=4,
                               policies=Path("config/policies.yaml")))


def test_faust_streaming_is_the_pinned_version() -> None:
    assert version("faust-streaming") == PINNED, (
        "faust-streaming changed: re-check agents/batch/consumer.py against the new "
        "transport/consumer.py, then update PINNED and pyproject.toml")
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert f'"faust-streaming=={PINNED}"' in pyproject.read_text()


def test_the_app_consumes_through_the_batch_consumer(app: faust.App) -> None:
    assert isinstance(app.consumer, BatchConsumer)
    assert isinstance(app.slamon_router, BatchRouter)  # type: ignore[attr-defined]
    assert faust_aiokafka.Transport.Consumer is faust_aiokafka.Consumer


def test_consumer_internals_exist(app: faust.App) -> None:
    consumer = app.consumer
    for name in ("_read_offset", "_committed_offset", "_acked", "_acked_index",
                 "_unacked_messages", "_buffered_partitions", "_commit_every", "_n_acked",
                 "_waiting_for_ack"):
        assert hasattr(consumer, name), f"Consumer.{name} is gone"
    for name in ("_drain_messages", "_wait_next_records", "perform_seek", "_add_gap",
                 "_to_message", "on_partitions_revoked", "commit", "wait_empty",
                 "highwater", "highwaters", "position", "subscribe", "_wait_for_ack",
                 "_clean_unacked_messages", "commit_and_end_transactions"):
        assert callable(getattr(consumer, name, None)), f"Consumer.{name}() is gone"
    assert isinstance(consumer.flow_active, bool)
    assert hasattr(faust_consumer, "ack_lock"), "faust.types.tuples.ack_lock is gone"
    drain = inspect.signature(faust_consumer.Consumer._drain_messages)
    assert list(drain.parameters) == ["self", "fetcher"]
    wait = inspect.signature(faust_consumer.Consumer._wait_next_records)
    assert list(wait.parameters) == ["self", "timeout"]


async def test_bulk_acks_commit_like_single_acks(app: faust.App) -> None:
    consumer = app.consumer
    tp = TP("sla.events", 0)
    app.topics.add(app.topic(tp.topic))  # as a started agent's stream does
    await app.topics._update_indices()  # as subscribing does
    assert app.topics.acks_enabled_for(tp.topic)
    consumer._committed_offset[tp] = 10
    consumer._ack_offsets(tp, [10, 11, 12, 9])  # 9 is below the committed offset: ignored
    assert consumer._n_acked == 3
    assert consumer._new_offset(tp) == 13  # what Faust's next commit would write


def test_app_internals_the_batch_path_reads(app: faust.App) -> None:
    assert isinstance(app.consumer_generation_id, int)
    assert isinstance(app.monitor.stream_inbound_time, dict)
    assert callable(app.monitor.track_tp_end_offset)


def test_store_internals_the_tables_use() -> None:
    assert callable(getattr(rocksdb.Store, "_db_for_partition", None))
    assert callable(getattr(rocksdb.Store, "set_persisted_offset", None))
    assert "self.data" in inspect.getsource(memory.Store.__post_init__)


def test_what_the_replaced_methods_replace() -> None:
    """BatchConsumer.wait_empty and RocksDBStore.revoke_partitions are Faust's without their
    garbage collections; RawTable._new_store_by_url builds the store as Faust does."""
    wait_empty = inspect.getsource(faust_consumer.Consumer.wait_empty)
    for part in ("self._unacked_messages", "gc.collect()", "self._wait_for_ack",
                 "self._clean_unacked_messages()", "self.commit_and_end_transactions"):
        assert part in wait_empty, f"Consumer.wait_empty changed: {part} is gone"
    assert faust_consumer.CONSUMER_WAIT_EMPTY == "WAIT_EMPTY"
    revoke = inspect.getsource(rocksdb.Store.revoke_partitions)
    assert list(inspect.signature(rocksdb.Store.revoke_partitions).parameters) == [
        "self", "table", "tps"]
    for part in ("table.changelog_topic.topics", "self._dbs.pop(tp.partition, None)",
                 "gc.collect()"):
        assert part in revoke, f"rocksdb.Store.revoke_partitions changed: {part} is gone"
    stop = inspect.getsource(rocksdb.Store.stop)
    assert "self._dbs.clear()" in stop and "gc.collect()" in stop, "rocksdb.Store.stop changed"
    assert "super()" not in stop, "rocksdb.Store.stop now calls its base: so must RocksDBStore"
    new_store = inspect.getsource(faust.Table._new_store_by_url)
    for part in ("stores.by_url(url)(", "url,", "self.app,", "self,", "table_name=self.name",
                 "key_type=self.key_type", "key_serializer=self.key_serializer",
                 "value_serializer=self.value_serializer", "value_type=self.value_type",
                 "loop=self.loop", "options=self.options"):
        assert part in new_store, f"Table._new_store_by_url changed: {part} is gone"


def test_producer_batch_api() -> None:
    builder = BatchBuilder(16_384, 0)
    assert builder.append(key=b"k", value=b"v", timestamp=None, headers=[]) is not None
    builder.close()
    assert builder.append(key=b"k", value=b"v", timestamp=None, headers=[]) is None
    assert callable(getattr(faust_aiokafka.Producer, "_ensure_producer", None))


def test_fetch_state_the_ticks_read() -> None:
    from aiokafka.consumer.subscription_state import TopicPartitionState

    source = inspect.getsource(TopicPartitionState.__init__)
    assert "self.highwater" in source and "self.timestamp" in source
    assert callable(getattr(faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer", None))
    fetcher = inspect.getsource(__import__("aiokafka.consumer.fetcher", fromlist=["x"]))
    assert "tp_state.highwater = highwater" in fetcher and "tp_state.timestamp = now_ms" in fetcher


async def test_the_worker_consumer_fetches_with_the_batch_paths_wait(app: faust.App) -> None:
    """Faust makes its aiokafka consumer with fetch_max_wait_ms=1500; the batch consumer's
    thread makes it with FETCH_MAX_WAIT_MS, which aiokafka hands its fetcher at start."""
    thread = app.consumer._thread  # made by Faust's consumer with _new_consumer_thread()
    assert isinstance(thread, faust_aiokafka.AIOKafkaConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500
    assert "fetch_max_wait_ms=1500" in inspect.getsource(
        faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    await consumer.stop()  # never started: only closes what it made
    start = inspect.getsource(type(consumer).start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start, (
        "aiokafka's consumer no longer hands _fetch_max_wait_ms to its fetcher at start")


def test_recovery_internals_the_changelog_path_uses(app: faust.App) -> None:
    """`BatchConsumer._apply_changelog` does for changelog records what the recovery
    service's loop does one by one: the same bookkeeping, the same signals, the same store
    call."""
    from faust.tables.recovery import Recovery

    recovery = app.tables.recovery  # type: ignore[attr-defined]
    assert isinstance(recovery, Recovery)
    for name in ("active_tps", "standby_tps", "tp_to_table", "active_offsets",
                 "standby_offsets", "active_highwaters", "standby_highwaters", "buffers",
                 "in_recovery", "signal_recovery_end", "_actives_span",
                 "_active_events_received_at", "_processing_times",
                 "num_samples_required_for_estimate"):
        assert hasattr(recovery, name), f"Recovery.{name} is gone"
    for name in ("standby_remaining_total", "need_recovery", "add_active", "add_standby",
                 "flush_buffers", "_set_recovery_ended", "_set_recovery_started"):
        assert callable(getattr(recovery, name, None)), f"Recovery.{name}() is gone"
    assert callable(getattr(app.tables, "on_standbys_ready", None))
    assert hasattr(app.tables, "standbys_ready")
    assert hasattr(app, "in_transaction")
    loop = inspect.getsource(Recovery._slurp_changelogs.fun)  # a mode ServiceTask
    for fragment in ("offset > seen_offset", "offsets[tp] = offset", "buf.append(event)",
                     "table.apply_changelog_batch(buf)", "await table.on_changelog_event(event)",
                     "self.tables.on_standbys_ready()", "if tp in active_tps:",
                     "elif tp in standby_tps:", "offsets = active_offsets",
                     "active_events_received_at[tp] = now",
                     "processing_times.append(now_after - last_processed_at)",
                     "self._last_active_event_processed_at = now_after",
                     "if self.in_recovery and not self.need_recovery():",
                     "self.flush_buffers()", "self._set_recovery_ended()",
                     'self._actives_span.set_tag("Actives-Ready", True)',
                     "self.signal_recovery_end.set()", "self.app.in_transaction"):
        assert fragment in loop, f"the recovery loop changed: no {fragment!r}"
    # The loop clears the signal before each wait: its end is a pulse, as the path's is.
    assert loop.index("self.signal_recovery_end.clear()") < loop.index("changelog_queue.get()")
    # Set when a recovery starts (the class only declares it).
    assert "self._last_active_event_processed_at = None" in inspect.getsource(
        Recovery._set_recovery_started)
    restart = inspect.getsource(Recovery._restart_recovery.fun)
    assert "await self._wait(self.signal_recovery_end.wait())" in restart
    rocks = inspect.getsource(rocksdb.Store.apply_changelog_batch)
    for fragment in ("event.message.tp", "event.message.offset", "msg.partition", "msg.key",
                     "msg.value", "set_persisted_offset"):
        assert fragment in rocks, f"RocksDB's apply_changelog_batch changed: no {fragment!r}"
    kept = inspect.getsource(memory.Store._create_batch_iterator)
    for fragment in ("event.key", "event.value", "event.message.value",
                     "event.message.partition"):
        assert fragment in kept, f"the memory store's changelog batch changed: no {fragment!r}"
