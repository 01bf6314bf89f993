"""agents.app.create_app: the Faust app is configured from Settings (no broker needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agents.app import create_app
from agents.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        app_id="slamon-unit",
        broker="kafka://broker-a:9092;kafka://broker-b:9092",
        store="memory://",
        data_dir=tmp_path / "data",
        partitions=6,
        replication_factor=1,
        web_port=7066,
        topic_prefix="unit.",
        worker_id="worker-a",
    )


def test_the_app_is_configured_from_settings(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    conf = app.conf
    assert conf.id == "slamon-unit"
    assert [(url.host, url.port) for url in conf.broker] == [("broker-a", 9092), ("broker-b", 9092)]
    assert conf.broker[0].scheme == "kafka"  # the aiokafka driver
    assert str(conf.store) == "memory:"
    assert conf.topic_partitions == 6 and conf.web_port == 7066
    assert Path(conf.datadir) == tmp_path / "data"


def test_the_producer_batches_up_to_producer_batch_bytes(tmp_path: Path) -> None:
    assert create_app(_settings(tmp_path)).conf.producer_max_batch_size == 262_144
    settings = dataclasses.replace(_settings(tmp_path), producer_batch_bytes=100_000)
    app = create_app(settings)
    assert app.conf.producer_max_batch_size == 100_000
    assert app.producer._settings_default()["max_batch_size"] == 100_000  # what aiokafka gets


def test_standby_replicas_go_to_faust(tmp_path: Path) -> None:
    assert create_app(_settings(tmp_path)).conf.table_standby_replicas == 1
    settings = dataclasses.replace(_settings(tmp_path), standby_replicas=0)
    assert create_app(settings).conf.table_standby_replicas == 0


def test_an_agent_consumes_the_prefixed_events_topic(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    consumed = {name for agent in app.agents.values() for name in agent.channel.topics}
    assert "unit.events" in consumed


def test_faust_environment_variables_do_not_override_slamon_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faust reads these itself (faust.types.settings); slamon's settings must win.
    for variable, value in {"WEB_PORT": "9999", "BROKER_URL": "kafka://elsewhere:1",
                            "APP_STORE": "rocksdb://", "TOPIC_PARTITIONS": "99",
                            "BROKER_SESSION_TIMEOUT": "60", "APP_ENV_PREFIX": "",
                            "CONSUMER_GROUP_INSTANCE_ID": "someone-else"}.items():
        monkeypatch.setenv(variable, value)
    conf = create_app(_settings(tmp_path)).conf
    assert conf.web_port == 7066
    assert [(url.host, url.port) for url in conf.broker] == [("broker-a", 9092), ("broker-b", 9092)]
    assert str(conf.store) == "memory:" and conf.topic_partitions == 6
    assert conf.broker_session_timeout == 10.0
    assert conf.consumer_group_instance_id == "worker-a"


def test_group_liveness_comes_from_settings(tmp_path: Path) -> None:
    settings = dataclasses.replace(_settings(tmp_path), session_timeout=8.0,
                                   heartbeat_interval=2.0, worker_id="monitor-3")
    conf = create_app(settings).conf
    assert (conf.broker_session_timeout, conf.broker_heartbeat_interval) == (8.0, 2.0)
    assert conf.consumer_group_instance_id == "monitor-3"
    assert conf.broker_request_timeout >= conf.broker_session_timeout
