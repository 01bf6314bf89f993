"""Fixtures for tests against the session's real broker (`kafka_bootstrap`, tests/conftest.py).

kafka-python is imported inside the fixtures: this file may be imported before
tests/conftest.py's warning filters are in place (`pytest tests/integration`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kafka import KafkaAdminClient


@pytest.fixture
def kafka_admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    """A kafka-python admin client on the session's broker."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="slamon-tests")
    yield admin
    admin.close()


@pytest.fixture
def create_topic(
    kafka_admin: KafkaAdminClient, topic_name: Callable[[str], str]
) -> Iterator[Callable[..., str]]:
    """A factory: `create_topic(partitions=3)` creates a uniquely named topic, deleted after."""
    from kafka.admin import NewTopic

    created: list[str] = []

    def create(suffix: str = "t", partitions: int = 1) -> str:
        name = topic_name(suffix)
        kafka_admin.create_topics([NewTopic(name, partitions, 1)])
        created.append(name)
        _wait_for_leaders(kafka_admin, name, partitions)
        return name

    yield create
    if created:
        kafka_admin.delete_topics(created)


def _leader(partition: dict[str, int]) -> int:
    return partition.get("leader_id", partition.get("leader", -1))  # kafka-python 3 / 2


def _wait_for_leaders(admin: KafkaAdminClient, name: str, partitions: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = admin.describe_topics([name])
        found = described[0]["partitions"] if described else []
        if len(found) == partitions and all(_leader(p) >= 0 for p in found):
            return
        time.sleep(0.1)
    raise AssertionError(f"topic {name} has no leader for all {partitions} partitions in 30 s")
