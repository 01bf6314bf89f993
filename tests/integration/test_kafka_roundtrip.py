"""A real round trip through the session's broker: kafka-python produces, aiokafka consumes."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


async def _consume(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[int, bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    received.extend((r.partition, r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return received


async def test_kafka_python_to_aiokafka_round_trip(
    kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    topic = create_topic("events", partitions=3)
    messages = [
        (f"T-{i % 7}".encode(), orjson.dumps({"event_id": f"e{i}", "ticket_id": f"T-{i % 7}"}))
        for i in range(50)
    ]

    await asyncio.to_thread(_produce, kafka_bootstrap, topic, messages)
    received = await _consume(kafka_bootstrap, topic, len(messages))

    assert sorted((k, v) for _, k, v in received) == sorted(messages)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    for partition, key, _ in received:
        partitions_of_key[key].add(partition)
    assert all(len(p) == 1 for p in partitions_of_key.values()), "a key spans partitions"
    assert len({partition for partition, _, _ in received}) > 1, "all keys on one partition"
