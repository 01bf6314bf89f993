"""`slamon tail`: print the records of an output topic as JSON lines, as they arrive.

A dead-letter message is printed as an object with its reason, message and
source (from its headers) and the original value.
"""

from __future__ import annotations

import argparse
import sys
import time

from agents.settings import add_config_argument, settings_from_args

HELP = "print records from a topic (breaches, warnings, outcomes, compliance, events.dlq)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("topic", help="a topic: its name after the prefix (breaches, "
                        "events.dlq, ...) or its full name")
    parser.add_argument("--from-beginning", action="store_true",
                        help="start at the oldest record (default: only new ones)")
    parser.add_argument("--count", type=int, default=0, help="stop after N records")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="stop after S seconds without a record (default: never)")


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    import orjson
    from kafka import KafkaConsumer, TopicPartition

    from agents.kafkaclients import check_access, client_options

    topic = settings.topics.named(args.topic)
    check_access(settings)  # says why Kafka refuses us, at once (KafkaAccessError)
    consumer = KafkaConsumer(**client_options(settings), enable_auto_commit=False)
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        print(f"slamon tail: no topic {topic!r} on {settings.broker}", file=sys.stderr)
        return 1
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    (consumer.seek_to_beginning if args.from_beginning else consumer.seek_to_end)(*assigned)
    printed = 0
    quiet_since = time.monotonic()
    out = sys.stdout.buffer
    try:
        while not args.count or printed < args.count:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                if args.timeout and time.monotonic() - quiet_since > args.timeout:
                    break
                continue
            quiet_since = time.monotonic()
            for records in batch.values():
                for record in records:
                    out.write(_render(record, orjson) + b"\n")
                    printed += 1
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def _render(record, orjson) -> bytes:  # type: ignore[no-untyped-def]
    from streams.outputs import read_dead_letter

    dead = read_dead_letter(record.headers)
    if dead is None:
        return record.value or b"null"
    value = (record.value or b"").decode(errors="replace")
    return orjson.dumps({"kind": "dead_letter", **dead, "value": value})
