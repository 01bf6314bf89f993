"""agents.batch.sender.BatchSender: messages grouped per topic-partition, in order, into
aiokafka's real record batches (read back here with aiokafka's own record reader)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from hypothesis import given
from hypothesis import strategies as st

from agents.batch.sender import BatchSender, Record, murmur2, partition_for

Sent = tuple[str, int, bytes | None, bytes | None, list[tuple[str, bytes]]]


class Producer:
    """aiokafka's producer as the sender uses it: real builders, submissions recorded."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.batches: list[tuple[str, int, BatchBuilder]] = []
        self.alone: list[Sent] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, builder: BatchBuilder, topic: str, *,
                         partition: int) -> asyncio.Future:
        self.batches.append((topic, partition, builder))
        return _done()

    async def send(self, topic: str, value: bytes | None, key: bytes | None, partition: int,
                   timestamp_ms: int | None, headers: list | None) -> asyncio.Future:
        self.alone.append((topic, partition, key, value, list(headers or [])))
        return _done()

    def sent(self) -> list[Sent]:
        """Every message of the submitted batches, in submission order, as Kafka reads it."""
        out: list[Sent] = []
        for topic, partition, builder in self.batches:
            records = MemoryRecords(bytes(builder._build()))
            while (batch := records.next_batch()) is not None:
                out += [(topic, partition, r.key, r.value, list(r.headers)) for r in batch]
        return out


def _done() -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


# Kafka's own test vectors (UtilsTest.testMurmur2), as Java's signed ints.
KAFKA_MURMUR2 = [(b"21", -973932308), (b"foobar", -790332482),
                 (b"a-little-bit-long-string", -985981536),
                 (b"a-little-bit-longer-string", -1486304829),
                 (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
                 (b"abc", 479470107)]


@pytest.mark.parametrize(("key", "signed"), KAFKA_MURMUR2)
def test_murmur2_is_kafkas(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed % 2**32


@given(st.binary(max_size=70))
def test_murmur2_agrees_with_aiokafkas_on_any_key(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


async def test_messages_go_to_their_keys_partition_in_order_with_their_headers() -> None:
    producer = Producer(batch_size=16_384)
    sender = BatchSender(producer, partitions=12)
    outputs = [Record("out", f"t-{i % 5}".encode(), f"v{i}".encode(),
                      [("slamon-reason", b"bad")] if i == 3 else None) for i in range(40)]
    futures = await sender.send(outputs)
    assert len(futures) == len(producer.batches)
    sent = producer.sent()
    assert sorted(sent) == sorted(
        ("out", partition_for(o.key, 12), o.key, o.value, list(o.headers or ()))
        for o in outputs if o.key is not None)
    for key in {o.key for o in outputs}:  # per key, the order they were given in
        assert [s[3] for s in sent if s[2] == key] == [o.value for o in outputs if o.key == key]


async def test_changes_go_to_one_partition_in_order_with_tombstones() -> None:
    producer = Producer(batch_size=200)  # a few records per batch: several batches in a row
    sender = BatchSender(producer, partitions=12)
    changes: dict[bytes, bytes | None] = {f"k{i}".encode(): (None if i % 4 == 0 else b"x" * i)
                                          for i in range(30)}
    futures = await sender.send_changes("log", 7, changes)
    assert len(producer.batches) > 3 and len(futures) == len(producer.batches)
    assert producer.sent() == [("log", 7, key, value, []) for key, value in changes.items()]
    assert producer.alone == []


async def test_a_message_larger_than_a_batch_gets_a_batch_of_its_own_in_its_place() -> None:
    producer = Producer(batch_size=100)
    sender = BatchSender(producer, partitions=1)
    big = b"y" * 500
    await sender.send_changes("log", 0, {b"a": b"1", b"b": big, b"c": b"3", b"d": b"4"})
    assert [s[2] for s in producer.sent()] == [b"a", b"b", b"c", b"d"]
    sizes = [b.record_count() for *_, b in producer.batches]
    assert sizes == [1, 1, 2]  # a's batch was full with b; b alone; c and d
