"""agents.faststart without a broker: existing topics are not declared again, a missing or
unanswered one takes Faust's path, the probe names no topic, tables start without a wait.
The restart time itself is measured against a real broker (tests/integration/
test_worker_restart.py)."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka

from agents.app import create_app
from agents.faststart import (
    cluster_answers,
    topic_exists,
)
from agents.settings import Settings

POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  targets:
    P1: {response: 15m, resolution: 4h}
"""


class FakeClient:
    """What faststart reads of an aiokafka client: known brokers, and `send`."""

    def __init__(self, nodes: list[int], answers: dict[int, Any]) -> None:
        self.cluster = SimpleNamespace(brokers=lambda: [SimpleNamespace(nodeId=n) for n in nodes])
        self.answers = answers
        self.requests: list[tuple[int, Any]] = []

    async def send(self, node: int, request: Any) -> Any:
        self.requests.append((node, request))
        answer = self.answers[node]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _topics(*entries: tuple[int, str]) -> SimpleNamespace:
    # (error_code, name, is_internal, partitions) as aiokafka decodes metadata v1+
    return SimpleNamespace(topics=[(code, name, False, []) for code, name in entries])


def test_a_topic_exists_when_a_broker_lists_it_without_error() -> None:
    client = FakeClient([1], {1: _topics((0, "t.events"))})
    assert asyncio.run(topic_exists(client, "t.events")) is True
    [(node, request)] = client.requests
    assert request._topics == ["t.events"]
    assert request._allow_auto_topic_creation is False  # asking must never create it


def test_a_missing_topic_does_not_exist() -> None:
    client = FakeClient([1], {1: _topics((3, "t.events"))})  # UNKNOWN_TOPIC_OR_PARTITION
    assert asyncio.run(topic_exists(client, "t.events")) is False


def test_no_answer_is_not_knowing() -> None:
    client = FakeClient([1, 2], {1: KafkaConnectionError("down"), 2: OSError("refused")})
    assert asyncio.run(topic_exists(client, "t.events")) is None
    assert sorted(node for node, _ in client.requests) == [1, 2]  # every broker was asked


def test_the_probe_names_no_topic_and_tries_every_broker() -> None:
    answer = SimpleNamespace(topics=[])
    client = FakeClient([1, 2], {1: KafkaConnectionError("down"), 2: answer})
    for _ in range(5):  # random order: whichever comes first, the answer is the one
        assert asyncio.run(cluster_answers(client)) is answer
    assert all(request._topics == [] for _, request in client.requests)
    with pytest.raises(KafkaConnectionError):
        asyncio.run(cluster_answers(FakeClient([1], {1: KafkaConnectionError("down")})))
    with pytest.raises(Exception, match="no broker known"):
        asyncio.run(cluster_answers(FakeClient([], {})))


def test_the_faust_internals_faststart_replaces_are_where_it_expects() -> None:
    # An upgrade that moves them fails here: re-read Faust's source before adapting.
    base = inspect.getsource(TableManager.on_start)
    assert "self.sleep(1.0)" in base and "_update_channels()" in base
    assert "recovery.start()" in base
    source = inspect.getsource(faust_aiokafka.Producer.create_topic)
    assert "force_metadata_update()" in source and "_ensure_producer()" in source
    assert inspect.iscoroutinefunction(faust_aiokafka.Producer.create_topic)


def _app(tmp_path: Path):  # type: ignore[no-untyped-def]
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    return create_app(Settings(store="memory://", data_dir=tmp_path / "data",
                               policies=policies))
