"""agents.app.create_app: the Faust app is configured from Settings (no broker needed)."""

from __future__ import annotations

from pathlib import Path

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


def test_an_agent_consumes_the_prefixed_events_topic(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    consumed = {name for agent in app.agents.values() for name in agent.channel.topics}
    assert "unit.events" in consumed
