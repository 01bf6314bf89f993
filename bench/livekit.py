"""Kafka plumbing for bench/live.py: topics, a cheap producer, the raw baseline, group offsets.

The bench's own Kafka work must cost the measured worker as little CPU as possible (the
machine is small and shared): events are encoded before the clock starts and produced
with aiokafka's batch API (one builder per partition, ~1 µs per record), paced when a
live stream is simulated. Keys go to the partition Kafka's default partitioner picks,
as a service desk's producer would put them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

from agents.batch.sender import partition_for
from agents.devkit import localkafka

__all__ = ["Encoded", "Offsets", "broker", "create_topics", "delete_topics", "free_port",
           "load_average", "produce", "quantiles", "raw_consume"]

BATCH_BYTES = 512 * 1024  # per produced batch; below the broker's 1 MiB message limit


class Encoded(NamedTuple):
    """One event ready to send: its partition, key and value bytes."""

    partition: int
    key: bytes
    value: bytes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def broker(stack: ExitStack, work: Path) -> str:
    """KAFKA_BOOTSTRAP_SERVERS if set (a shared broker), else a broker of the bench's own."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return external.split(",")[0]
    cfg = localkafka.BrokerConfig(port=free_port(), controller_port=free_port(),
                                  home=work / "kafka", heap="1g")
    localkafka.start(cfg, say=lambda line: print(f"bench: {line}", file=sys.stderr))
    stack.callback(localkafka.stop, cfg)
    return cfg.bootstrap


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1) for topic in topics])
    finally:
        admin.close()


def delete_topics(bootstrap: str, prefixes: Iterable[str]) -> int:
    """Delete the topics whose names start with one of `prefixes` (a run's own topics)."""
    from kafka.admin import KafkaAdminClient

    prefixes = tuple(prefixes)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        names = [name for name in admin.list_topics() if name.startswith(prefixes)]
        if names:
            admin.delete_topics(names, raise_errors=False)
        return len(names)
    finally:
        admin.close()


def encode(events: Iterable[dict], partitions: int) -> list[Encoded]:
    import orjson

    out = []
    for event in events:
        key = event["ticket_id"].encode()
        out.append(Encoded(partition_for(key, partitions), key, orjson.dumps(event)))
    return out


async def produce(bootstrap: str, topic: str, messages: Sequence[Encoded],
                  rate: float | None = None) -> dict[str, float]:
    """Send `messages` in order, at `rate` per second (None: as fast as possible)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5,
                                max_batch_size=BATCH_BYTES)
    await producer.start()
    try:
        started = time.perf_counter()
        sent = 0
        deliveries: list[asyncio.Future] = []
        while sent < len(messages):
            if rate:
                due = min(len(messages), int((time.perf_counter() - started) * rate) + 1)
                if due <= sent:
                    await asyncio.sleep(0.005)
                    continue
            else:
                due = min(len(messages), sent + 20_000)
            deliveries += await _send_slice(producer, topic, messages[sent:due])
            sent = due
            if len(deliveries) > 200:
                await asyncio.gather(*deliveries)
                deliveries = []
        await asyncio.gather(*deliveries)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"seconds": round(seconds, 3), "events_per_s": round(len(messages) / seconds)}


async def _send_slice(producer: object, topic: str, messages: Sequence[Encoded],
                      ) -> list[asyncio.Future]:
    groups: dict[int, list[Encoded]] = {}
    for message in messages:
        groups.setdefault(message.partition, []).append(message)
    futures = []
    for partition, group in groups.items():
        builder = producer.create_batch()  # type: ignore[attr-defined]
        for message in group:
            if builder.append(key=message.key, value=message.value, timestamp=None) is None:
                futures.append(await producer.send_batch(  # type: ignore[attr-defined]
                    builder, topic, partition=partition))
                builder = producer.create_batch()  # type: ignore[attr-defined]
                builder.append(key=message.key, value=message.value, timestamp=None)
        futures.append(await producer.send_batch(builder, topic,  # type: ignore[attr-defined]
                                                 partition=partition))
    return futures


async def raw_consume(bootstrap: str, topic: str, partitions: int, expected: int) -> dict:
    """The baseline: read every message of `topic` with aiokafka, doing nothing with it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        count = 0
        started = time.perf_counter()
        while count < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            count += sum(len(records) for records in batches.values())
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": round(count / seconds)}


class Offsets:
    """Committed offsets of a consumer group and end offsets of topics, summed over partitions.

    Read from the broker: it costs the measured worker nothing (scraping its /metrics,
    thousands of series, would).
    """

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaConsumer
        from kafka.admin import KafkaAdminClient

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap)

    def committed(self, group: str, *topics: str) -> dict[str, int] | None:
        """topic -> sum of committed offsets (None: the broker did not answer)."""
        from kafka.errors import KafkaError

        try:
            offsets = self.admin.list_group_offsets(group).get(group, {})
        except KafkaError:
            return None
        totals = dict.fromkeys(topics, 0)
        for tp, meta in offsets.items():
            if tp.topic in totals and meta.offset > 0:
                totals[tp.topic] += meta.offset
        return totals

    def end(self, topic: str) -> int:
        from kafka import TopicPartition

        partitions = self.consumer.partitions_for_topic(topic) or set()
        if not partitions:
            self.consumer.topics()  # refresh metadata: the topic may be new
            partitions = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return sum(self.consumer.end_offsets(tps).values()) if tps else 0

    def members(self, group: str) -> tuple[str, int]:
        """(state, member count) of `group`."""
        from kafka.errors import KafkaError

        try:
            described = self.admin.describe_groups([group])
        except KafkaError:
            return "unknown", 0
        info = described.get(group, {}) if isinstance(described, dict) else {}
        state = str(info.get("group_state") or info.get("state") or "unknown")
        return state, len(info.get("members") or ())

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 4)}
