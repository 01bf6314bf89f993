"""Faust tables of raw bytes whose changelog goes straight to the producer.

A plain `faust.Table` hands every write to its changelog topic through Faust's
per-message buffer (`send_soon`), which costs several times the work of the
write itself. Here writes are queued and `flush_changelog()`, awaited by the
agent after each message, sends them with the producer directly, keeping
Faust's contract: the changelog partition is the source event's partition,
and RocksDB remembers the offset of each write it has (for fast recovery).
The worker flushes the producer before it commits offsets, so a write is on
Kafka before the event that made it counts as processed.

The batch path (agents/batch/consumer.py) has no current Faust event, which Faust's own
`table[key]` needs to find the partition: it reads one partition's store directly
(`read`) and commits a batch's writes with `commit`: first to the changelog, waiting
until Kafka has them, then to the local store together with the changelog offset they
reached (one RocksDB write batch). The local store is so never ahead of the changelog:
a worker killed in between recovers the writes from the changelog, and a worker that
takes the partition over sees everything its previous owner's store held.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator, Mapping, MutableMapping, Set
from typing import Any

import faust
from faust import stores
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP

from agents.batch.sender import BatchSender

__all__ = ["Overlay", "RawTable", "RocksDBStore", "raw_table", "raw_topic", "write_rocksdb"]


class RawTable(faust.Table):
    """bytes -> bytes; changelog writes batched per message by `flush_changelog()`."""

    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.key_serializer = self.value_serializer = "raw"
        self._pending: list[tuple[int | None, Any, Any]] = []

    def send_changelog(self, partition: int | None, key: Any, value: Any,
                       key_serializer: Any = None, value_serializer: Any = None) -> Any:
        self._pending.append((partition, key, value))
        # Table.on_key_set reads the partition back from what this returns.
        return _Queued(_QueuedMessage(partition))

    async def flush_changelog(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        producer = self.app.producer
        topic = self.changelog_topic.get_topic_name()
        for partition, key, value in pending:
            delivery = await producer.send(topic, key, value, partition, None, None)
            delivery.add_done_callback(self._remember_offset)  # type: ignore[attr-defined]

    def _new_store_by_url(self, url: Any) -> Any:
        """Faust's store for `url`; for RocksDB, `RocksDBStore`."""
        store_class = stores.by_url(url)
        if store_class is faust_rocksdb.Store:
            store_class = RocksDBStore
        return store_class(url, self.app, self, table_name=self.name, key_type=self.key_type,
                           key_serializer=self.key_serializer,
                           value_serializer=self.value_serializer, value_type=self.value_type,
                           loop=self.loop, options=self.options)

    # -- the batch path ------------------------------------------------------------
    def read(self, partition: int, key: bytes) -> bytes | None:
        """The value of `key` in `partition`'s local store."""
        store: Any = self.data
        if hasattr(store, "_db_for_partition"):  # RocksDB: one database per partition
            value: bytes | None = store._db_for_partition(partition).get(key)
            return value
        return store.data.get(key)  # type: ignore[no-any-return]

    async def commit(self, partition: int, changes: Mapping[bytes, bytes | None],
                     sender: BatchSender) -> None:
        """Put `changes` (None deletes) on the changelog, wait for Kafka, then in the store."""
        if not changes:
            return
        deliveries = await sender.send_changes(self.changelog_topic.get_topic_name(), partition,
                                               changes)
        sent = await asyncio.gather(*deliveries)
        offsets = [metadata.offset for metadata in sent if metadata is not None]
        self._write(partition, changes, max(offsets) if offsets else None)

    def write(self, partition: int, changes: Mapping[bytes, bytes | None]) -> None:
        """Write `changes` to the local store only (tools and tests; the worker `commit`s)."""
        self._write(partition, changes, None)

    def _write(self, partition: int, changes: Mapping[bytes, bytes | None],
               offset: int | None) -> None:
        store: Any = self.data
        if hasattr(store, "_db_for_partition"):  # RocksDB: the writes and the offset at once
            # Faust's key -> partition index is left alone: it is only a cache for Faust's own
            # `table[key]` (which scans the partitions on a miss), and updating it, an LRU
            # under a lock, cost more than the write itself.
            write_rocksdb(store._db_for_partition(partition), changes,
                          None if offset is None else (store.offset_key, offset))
            return
        data = store.data  # memory: recovery replays the whole changelog anyway
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value

    def overlay(self, partition: int) -> Overlay:
        """A view of `partition` for one batch: reads through, writes held until committed."""
        return Overlay(self, partition)

    def _remember_offset(self, delivery: Any) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            return  # the producer logs and raises the failure on flush
        sent = delivery.result()
        if sent is None:
            return
        self.data.set_persisted_offset(sent.topic_partition, sent.offset)


def write_rocksdb(db: Any, changes: Mapping[bytes, bytes | None],
                  offset: tuple[bytes, int] | None) -> None:
    """`changes` (None deletes) and the changelog offset they reached, under its key, in one
    RocksDB write batch to `db` (a rocksdict `Rdict`), so the store is never ahead of it."""
    import rocksdict

    batch = rocksdict.WriteBatch(raw_mode=True)
    for key, value in changes.items():
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    if offset is not None:  # a batch's first offset: recovery re-reads, never skips
        offset_key, reached = offset
        batch.put(offset_key, str(reached).encode())
    db.write(batch)


class RocksDBStore(faust_rocksdb.Store):
    """Faust's RocksDB store, collecting garbage at a rebalance only when it closed a database,
    and not at all when it stops.

    Faust runs a full collection at every rebalance, once per table, to close the databases
    of revoked partitions that a reference cycle would keep open. A full collection
    traverses every ticket state the worker keeps decoded: 0.6-0.8 s each in
    `bench/live.py`'s backlog, four tables, while the worker stands still. Most rebalances
    revoke nothing from a worker (another joins, a topic appears): those now cost nothing.
    At a stop, the process ends next: a database closes when its last reference goes, and
    one a cycle kept open loses nothing (RocksDB's log holds every write), so the 2-3 s of
    collections a graceful stop took are gone.
    """

    async def stop(self) -> None:
        self.logger.info("Closing rocksdb on stop")
        self._dbs.clear()

    def revoke_partitions(self, table: Any, tps: Set[TP]) -> None:
        closed = []
        for tp in tps:
            if (tp.topic in table.changelog_topic.topics
                    and self._dbs.pop(tp.partition, None) is not None):
                closed.append(tp.partition)
        if closed:
            self.logger.info("closing the databases of partitions %s", sorted(closed))
            gc.collect()


class Overlay(MutableMapping[bytes, bytes]):
    """One partition of a `RawTable` during a batch; `commit()` writes what changed, once."""

    def __init__(self, table: RawTable, partition: int) -> None:
        self.table = table
        self.partition = partition
        self.changes: dict[bytes, bytes | None] = {}

    # get, pop and `in` read the store once and raise nothing on a miss; the generic
    # MutableMapping versions go through __getitem__'s KeyError, and pop reads twice.
    def _value(self, key: bytes) -> bytes | None:
        changes = self.changes
        return changes[key] if key in changes else self.table.read(self.partition, key)

    def __getitem__(self, key: bytes) -> bytes:
        value = self._value(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
        value = self._value(key)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self._value(key) is not None

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.changes[key] = value

    def __delitem__(self, key: bytes) -> None:
        self.pop(key)  # KeyError when absent, as a mapping must

    def pop(self, key: bytes, *default: Any) -> Any:  # type: ignore[override]
        value = self._value(key)
        if value is None:
            if default:
                return default[0]
            raise KeyError(key)
        self.changes[key] = None
        return value

    def __iter__(self) -> Iterator[bytes]:
        raise TypeError("an overlay reads keys, it does not list them")

    def __len__(self) -> int:
        raise TypeError("an overlay reads keys, it does not count them")

    async def commit(self, sender: BatchSender) -> None:
        """Commit the changes (changelog first, then the local store): see `RawTable.commit`."""
        changes, self.changes = self.changes, {}
        if changes:
            await self.table.commit(self.partition, changes, sender)


class _QueuedMessage:
    __slots__ = ("partition",)

    def __init__(self, partition: int | None) -> None:
        self.partition = partition


class _Queued:
    __slots__ = ("message",)

    def __init__(self, message: _QueuedMessage) -> None:
        self.message = message


def raw_table(app: faust.App, name: str, partitions: int) -> RawTable:
    """A RawTable registered on `app` like `app.Table` would."""
    table = RawTable(app, name=name, partitions=partitions, key_type=bytes, value_type=bytes,
                     beacon=app.tables.beacon)
    return app.tables.add(table)  # type: ignore[return-value]


def raw_topic(app: faust.App, *names: str, partitions: int) -> faust.TopicT:
    """Topic(s) of raw bytes, created with `partitions` when the worker declares them."""
    return app.topic(*names, partitions=partitions, internal=True, key_type=bytes,
                     value_type=bytes, key_serializer="raw", value_serializer="raw")
