"""Where a report's records come from: a file of `slamon replay` output, or the topics.

`records_from_file` reads JSON lines (one record per line, `-` for stdin); a line that is
not a JSON object is an error naming the file and line. `records_from_topics` reads the
compliance and breach topics (names from the settings' topic catalogue, never spelled
here) from the beginning to the end they had when reading started, with kafka-python and
the settings' security options; messages that are not records are counted and skipped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

from agents.settings import Settings
from sla.errors import ProblemsError

__all__ = ["ReportInputError", "records_from_file", "records_from_topics", "TopicReader"]

POLL_MS = 500


class ReportInputError(ProblemsError):
    """Records that cannot be read: each problem names its file and line, or its topic."""


def records_from_file(path: str) -> Iterator[dict]:
    """The records of a JSON-lines file (`-`: stdin); ReportInputError on a line that is not
    a JSON object, naming the file and line; OSError if it cannot be read."""
    name = "<stdin>" if path == "-" else path
    source = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        for number, raw in enumerate(source, 1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise ReportInputError([f"{name}:{number}: not JSON: {error}"]) from None
            if not isinstance(record, dict):
                raise ReportInputError(
                    [f"{name}:{number}: expected a record (a JSON object), got "
                     f"{type(record).__name__}"])
            yield record
    finally:
        if source is not sys.stdin.buffer:
            source.close()


class TopicReader:
    """Reads topics in full, once: from the beginning to the end offsets seen at the start."""

    def __init__(self, settings: Settings, topics: list[str], timeout_s: float = 60.0) -> None:
        self.settings = settings
        self.topics = topics
        self.timeout_s = timeout_s
        self.skipped = 0  # messages that were not JSON records

    def __iter__(self) -> Iterator[dict]:
        from kafka import KafkaConsumer, TopicPartition

        from agents.kafkaclients import check_access, client_options

        check_access(self.settings)  # says why Kafka refuses us, at once
        consumer = KafkaConsumer(**client_options(self.settings), enable_auto_commit=False,
                                 group_id=None)
        try:
            partitions = []
            for topic in self.topics:
                found = consumer.partitions_for_topic(topic)
                if not found:
                    raise ReportInputError(
                        [f"no topic {topic!r} on {self.settings.broker}: has a worker run "
                         "with these settings (topic_prefix)?"])
                partitions += [TopicPartition(topic, p) for p in sorted(found)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends: dict[Any, int] = consumer.end_offsets(partitions)
            yield from self._read(consumer, ends)
        finally:
            consumer.close()

    def _read(self, consumer: Any, ends: dict[Any, int]) -> Iterator[dict]:
        deadline = time.monotonic() + self.timeout_s
        left = {tp for tp, end in ends.items() if end > 0}
        while left:
            if time.monotonic() > deadline:
                raise ReportInputError([f"reading {', '.join(self.topics)} took longer than "
                                        f"{self.timeout_s:.0f} s"])
            for tp, messages in consumer.poll(timeout_ms=POLL_MS).items():
                for message in messages:
                    record = _record(message.value)
                    if record is None:
                        self.skipped += 1
                    else:
                        yield record
                    if message.offset + 1 >= ends[tp]:
                        left.discard(tp)
            for tp in list(left):
                if consumer.position(tp) >= ends[tp]:
                    left.discard(tp)


def _record(value: bytes | None) -> dict | None:
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def records_from_topics(settings: Settings, timeout_s: float = 60.0) -> TopicReader:
    """A reader of the settings' compliance and breach topics (iterate it for the records)."""
    catalogue = settings.topics
    return TopicReader(settings, [catalogue.compliance, catalogue.breaches], timeout_s)
