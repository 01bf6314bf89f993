"""agents.tables.RocksDBStore: Faust's RocksDB store without a full garbage collection at
every rebalance, only at one that closes a database (a revoked partition's)."""

from __future__ import annotations

import gc
from pathlib import Path

import faust
import pytest
from faust.types import TP

from agents.app import create_app
from agents.settings import Settings
from agents.tables import RawTable, RocksDBStore


@pytest.fixture()
def table(tmp_path: Path) -> RawTable:
    app = create_app(Settings(app_id="slamon-rocks", store="rocksdb://",
                              data_dir=tmp_path / "data", partitions=4,
                              policies=Path("config/policies.yaml")))
    tables = [t for t in app.tables.values() if isinstance(t, RawTable)]
    assert tables, "the app has no RawTable"
    return tables[0]


def _collections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    collected: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *args: collected.append(1) or 0)
    return collected


def test_a_rocksdb_table_gets_the_store(table: RawTable) -> None:
    assert isinstance(table.data, RocksDBStore)


def test_a_rebalance_that_revokes_nothing_collects_nothing(
        table: RawTable, monkeypatch: pytest.MonkeyPatch) -> None:
    store = table.data
    assert isinstance(store, RocksDBStore)
    store._dbs.update({0: object(), 1: object()})  # open databases: only their presence counts
    collected = _collections(monkeypatch)
    store.revoke_partitions(table, set())
    store.revoke_partitions(table, {TP("another-topic", 0)})
    store.revoke_partitions(table, {TP(table.changelog_topic.get_topic_name(), 3)})  # not open
    assert collected == [] and set(store._dbs) == {0, 1}


def test_a_revoked_partition_is_closed_and_collected(
        table: RawTable, monkeypatch: pytest.MonkeyPatch) -> None:
    store = table.data
    assert isinstance(store, RocksDBStore)
    store._dbs.update({0: object(), 1: object()})
    collected = _collections(monkeypatch)
    store.revoke_partitions(table, {TP(table.changelog_topic.get_topic_name(), 1)})
    assert collected == [1] and set(store._dbs) == {0}


def test_a_memory_table_keeps_faust_s_store(tmp_path: Path) -> None:
    app: faust.App = create_app(Settings(app_id="slamon-memory", store="memory://",
                                         data_dir=tmp_path / "data", partitions=4,
                                         policies=Path("config/policies.yaml")))
    stores = [t.data for t in app.tables.values() if isinstance(t, RawTable)]
    assert stores and not any(isinstance(store, RocksDBStore) for store in stores)


async def test_a_stop_drops_the_databases_and_collects_nothing(
        table: RawTable, monkeypatch: pytest.MonkeyPatch) -> None:
    store = table.data
    assert isinstance(store, RocksDBStore)
    store._dbs.update({0: object(), 1: object()})
    collected = _collections(monkeypatch)
    await store.stop()
    assert store._dbs == {} and collected == []
