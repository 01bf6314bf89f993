"""`slamon produce`: send service events from a JSON-lines file to `<prefix>events`.

Each line goes as it is, keyed by its ticket_id (the partition that owns the
ticket's clocks). A line without a readable ticket_id is still sent, unkeyed,
so the monitor's dead-letter handling can be exercised.
"""

from __future__ import annotations

import argparse
import sys
import time

from agents.settings import add_config_argument, settings_from_args

HELP = "send service events from a JSON-lines file (or -) to the events topic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("file", help="events as JSON lines; - for stdin")
    parser.add_argument("--topic", help="topic (default: <prefix>events)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="events per second (default: as fast as possible)")


def _key(line: bytes) -> bytes | None:
    import orjson

    try:
        ticket = orjson.loads(line).get("ticket_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return ticket.encode() if isinstance(ticket, str) else None


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from agents.kafkaclients import check_access, client_options

    topic = args.topic or settings.topics.events
    try:
        source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"slamon produce: {exc}", file=sys.stderr)
        return 2
    check_access(settings)  # says why Kafka refuses us, at once (KafkaAccessError)
    try:
        producer = KafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    except KafkaError as exc:
        print(f"slamon produce: cannot reach {settings.broker}: {exc}", file=sys.stderr)
        return 1
    sent = 0
    gap = 1.0 / args.rate if args.rate > 0 else 0.0
    with source:
        for line in source:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            producer.send(topic, key=_key(line), value=line)
            sent += 1
            if gap:
                time.sleep(gap)
    producer.flush(timeout=60)
    producer.close()
    print(f"slamon produce: {sent} events sent to {topic}", file=sys.stderr)
    return 0
