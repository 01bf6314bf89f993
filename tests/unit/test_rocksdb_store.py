"""agents.tables.RocksDBStore: Faust's RocksDB store without a full garbage collection at
every rebalance, only at one that closes a database (a revoked partition's)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from faust.types import TP

from agents.app import create_app
from agents.settings import Settings
from agents.tables import RawTable, RocksDBStore


def _raw_tables(tmp_path: Path, store: str) -> list[RawTable]:
    app = create_app(Settings(app_id="slamon-stores", store=store, data_dir=tmp_path / "data",
                              partitions=4, policies=Path("config/policies.yaml")))
    tables = [t for t in app.tables.values() if isinstance(t, RawTable)]
    assert tables, "the app has no RawTable"
    return tables


@pytest.fixture()
def table(tmp_path: Path) -> RawTable:
    return _raw_tables(tmp_path, "rocksdb://")[0]


@pytest.fixture()
def store(table: RawTable) -> RocksDBStore:
    """The table's store, with partitions 0 and 1 open (only their presence counts)."""
    store = table.data
    assert isinstance(store, RocksDBStore)
    store._dbs.update({0: object(), 1: object()})
    return store


def _collections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    collected: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *args: collected.append(1) or 0)
    return collected


def test_a_rocksdb_table_gets_the_store(table: RawTable) -> None:
    assert isinstance(table.data, RocksDBStore)


def test_a_rebalance_that_revokes_nothing_collects_nothing(
        table: RawTable, store: RocksDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    collected = _collections(monkeypatch)
    store.revoke_partitions(table, set())
    store.revoke_partitions(table, {TP("another-topic", 0)})
    store.revoke_partitions(table, {TP(table.changelog_topic.get_topic_name(), 3)})  # not open
    assert collected == [] and set(store._dbs) == {0, 1}


def test_a_revoked_partition_is_closed_and_collected(
        table: RawTable, store: RocksDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    collected = _collections(monkeypatch)
    store.revoke_partitions(table, {TP(table.changelog_topic.get_topic_name(), 1)})
    assert collected == [1] and set(store._dbs) == {0}


def test_a_memory_table_keeps_faust_s_store(tmp_path: Path) -> None:
    stores = [t.data for t in _raw_tables(tmp_path, "memory://")]
    assert not any(isinstance(store, RocksDBStore) for store in stores)


async def test_a_stop_drops_the_databases_and_collects_nothing(
        store: RocksDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    collected = _collections(monkeypatch)
    await store.stop()
    assert store._dbs == {} and collected == []
