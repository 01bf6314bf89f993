"""agents.tables.Overlay: one partition of a table during a batch, written once at commit."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from agents.tables import Overlay


class PartitionedStore:
    """Stands in for a RawTable: per-partition dicts, and what each commit wrote."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[bytes, bytes]] = {0: {b"a": b"1"}, 1: {b"a": b"other"}}
        self.writes: list[tuple[int, dict[bytes, bytes | None]]] = []
        self.reads = 0

    def read(self, partition: int, key: bytes) -> bytes | None:
        self.reads += 1
        return self.partitions.get(partition, {}).get(key)

    async def commit(self, partition: int, changes: Mapping[bytes, bytes | None],
                     sender: object) -> None:
        self.writes.append((partition, dict(changes)))
        data = self.partitions.setdefault(partition, {})
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value


def test_reads_go_through_to_its_partition_and_see_the_batch_writes() -> None:
    store = PartitionedStore()
    view = Overlay(store, 0)  # type: ignore[arg-type]
    assert view[b"a"] == b"1" and view.get(b"b") is None
    view[b"b"] = b"2"
    view[b"a"] = b"3"
    del view[b"a"]
    assert view.get(b"a") is None and view[b"b"] == b"2" and b"a" not in view
    with pytest.raises(KeyError):
        del view[b"missing"]
    assert store.partitions[0] == {b"a": b"1"}  # nothing written before commit


async def test_commit_writes_each_changed_key_once_and_only_to_its_partition() -> None:
    store = PartitionedStore()
    view = Overlay(store, 0)  # type: ignore[arg-type]
    for value in (b"x", b"y", b"z"):
        view[b"b"] = value
    view.pop(b"a")
    await view.commit(sender=None)  # type: ignore[arg-type]
    assert store.writes == [(0, {b"b": b"z", b"a": None})]
    assert store.partitions == {0: {b"b": b"z"}, 1: {b"a": b"other"}}
    await view.commit(sender=None)  # type: ignore[arg-type]
    assert len(store.writes) == 1  # nothing new to write


def test_get_pop_and_in_read_the_store_once_each() -> None:
    store = PartitionedStore()
    view = Overlay(store, 0)  # type: ignore[arg-type]
    assert view.get(b"missing", b"d") == b"d" and store.reads == 1
    assert b"a" in view and store.reads == 2
    assert view.pop(b"a") == b"1" and store.reads == 3  # the generic pop reads twice
    assert view.pop(b"missing", None) is None and store.reads == 4
    assert view.changes == {b"a": None}  # a pop of a missing key deletes nothing
    with pytest.raises(KeyError):
        view.pop(b"a")  # deleted in this batch: gone without reading the store
    assert store.reads == 4 and view.get(b"a") is None and b"a" not in view
