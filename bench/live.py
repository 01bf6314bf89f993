"""Benchmark of the live monitor on a real local broker: throughput and breach detection delay.

    .venv/bin/python bench/live.py                       # 200,000 events, 100,000 clocks
    .venv/bin/python bench/live.py --events 50000 --clocks 20000 --profile bench/out/worker.prof

(a) Throughput: the events topic is filled first, then read twice in the same run:
    by a raw aiokafka consumer (the baseline: no parsing, no state) and by `slamon worker`.
    The worker's rate is taken from the offsets its consumer group commits, between
    10% and 90% of the input, so start-up and the tail do not count. A third reader gives
    the floor under any Faust processor (bench/faust_floor.py): a Faust agent that only
    iterates the stream, then also writes a table, then also sends one output.
(b) Detection delay: a second worker gets `--clocks` tickets opened at once, each with a
    response target that falls during the run (deadlines spread over --spread seconds);
    for each breach, `detected_at - deadline` (the worker's emission) and the arrival on
    the breaches topic minus the deadline (end to end) give p50/p99/max.

Prints JSON on stdout and one summary line on stderr. Nothing is asserted: the targets
(>= 20,000 events/s per worker, >= 1/3 of the raw consumer, p99 delay < 1 s) are printed
beside the figures. With --profile, the throughput worker runs under cProfile and the
top functions are printed on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import orjson

from agents.devkit import localkafka
from agents.devkit.traffic import ticket_events
from sla.events import format_ts, parse_ts

REPO = Path(__file__).resolve().parent.parent

PARTITIONS = 4
BENCH_POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: [0.5, 0.75, 0.9]
  targets:
    P1: {response: 15m, resolution: 4h}
    P2: {response: 1h, resolution: 8h}
    P3: {response: 4h, resolution: 3d}
    P4: {response: 1d, resolution: 10d}
"""
DELAY_POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: []
  targets:
    P1: {response: %ds, resolution: 8h}
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _broker(stack: ExitStack, work: Path) -> str:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return external.split(",")[0]
    cfg = localkafka.BrokerConfig(port=_free_port(), controller_port=_free_port(),
                                  home=work / "kafka", heap="1g")
    localkafka.start(cfg, say=lambda line: print(f"bench: {line}", file=sys.stderr))
    stack.callback(localkafka.stop, cfg)
    return cfg.bootstrap


def _create_topic(bootstrap: str, topic: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()


def _produce(bootstrap: str, topic: str, events: list[dict]) -> float:
    from kafka import KafkaProducer

    started = time.perf_counter()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                             batch_size=256 * 1024, compression_type=None)
    for event in events:
        producer.send(topic, key=event["ticket_id"].encode(), value=orjson.dumps(event))
    producer.flush(timeout=300)
    producer.close()
    return time.perf_counter() - started


async def _raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    """The baseline: read every message of `topic` with aiokafka, doing nothing with it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        count = 0
        started = time.perf_counter()
        while count < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            count += sum(len(records) for records in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


class Worker:
    def __init__(self, bootstrap: str, prefix: str, policies: Path, work: Path,
                 profile: Path | None = None) -> None:
        self.port = _free_port()
        env = os.environ | {
            "SLAMON_BROKER": f"kafka://{bootstrap}", "SLAMON_TOPIC_PREFIX": prefix,
            "SLAMON_APP_ID": prefix.rstrip(".").replace(".", "-"),
            "SLAMON_PARTITIONS": str(PARTITIONS), "SLAMON_STORE": "memory://",
            "SLAMON_DATA_DIR": str(work / prefix), "SLAMON_WEB_PORT": str(self.port),
            "SLAMON_WEB_HOST": "127.0.0.1", "SLAMON_POLICIES": str(policies),
            "SLAMON_TICK_INTERVAL": "0.25", "SLAMON_LOG_LEVEL": "warning",
        }
        command = [sys.executable]
        if profile is not None:
            command += ["-m", "cProfile", "-o", str(profile)]
        command += ["-m", "agents.cli", "worker"]
        from kafka.admin import KafkaAdminClient

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.group = env["SLAMON_APP_ID"]
        self.events_topic = prefix + "events"
        self.log = open(work / f"{prefix}log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def events_processed(self) -> float | None:
        """Offsets of the events topic committed by the worker's consumer group.

        Cheaper for the worker than scraping /metrics (thousands of series) while it runs.
        """
        from kafka.errors import KafkaError

        try:
            offsets = self.admin.list_group_offsets(self.group).get(self.group, {})
        except KafkaError:
            return None
        return float(sum(meta.offset for tp, meta in offsets.items()
                         if tp.topic == self.events_topic and meta.offset > 0))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def _worker_rate(worker: Worker, total: int, timeout: float) -> dict:
    """events/s between 10% and 90% of `total`, from the worker's own counter."""
    marks: dict[str, tuple[float, float]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = worker.events_processed()
        now = time.perf_counter()
        if count is not None:
            if "low" not in marks and count >= 0.1 * total:
                marks["low"] = (now, count)
            if count >= 0.9 * total:
                marks["high"] = (now, count)
                break
        if worker.process.poll() is not None:
            raise SystemExit(f"worker exited early; see {worker.log.name}")
        time.sleep(0.5)
    if "high" not in marks or "low" not in marks:
        raise SystemExit(f"worker did not reach 90% of {total} events in {timeout} s")
    (t0, c0), (t1, c1) = marks["low"], marks["high"]
    return {"events": int(c1 - c0), "seconds": round(t1 - t0, 3),
            "events_per_s": round((c1 - c0) / (t1 - t0))}


def throughput(bootstrap: str, work: Path, count: int, profile: Path | None,
               backlog: bool = False) -> dict:
    prefix = f"bench.{uuid.uuid4().hex[:6]}."
    topic = prefix + "events"
    _create_topic(bootstrap, topic)
    now = int(time.time() * 1000)
    if backlog:  # a day of history at once: every deadline already behind the wall clock
        events = list(ticket_events(count, now - 24 * 3_600_000, seed=11,
                                    tickets_per_hour=count / 24 / 4.5))
    else:  # a live stream: tickets from now on, their deadlines ahead
        events = list(ticket_events(count, now, seed=11, tickets_per_hour=count / 4.5))
    produced = _produce(bootstrap, topic, events)
    raw_seconds = asyncio.run(_raw_consume(bootstrap, topic, count))
    policies = work / "bench-policies.yaml"
    policies.write_text(BENCH_POLICIES)
    worker = Worker(bootstrap, prefix, policies, work, profile)
    try:
        monitor = _worker_rate(worker, count, timeout=1800)
    finally:
        worker.stop()
    raw_rate = count / raw_seconds
    outputs = _count_outputs(bootstrap, prefix)
    floor = _faust_floor(bootstrap, topic, count) if not backlog else None
    return {"events": count, "backlog": backlog, "outputs": outputs,
            "outputs_per_event": round(sum(outputs.values()) / count, 3),
            "produce_seconds": round(produced, 3),
            "raw_consumer": {"seconds": round(raw_seconds, 3), "events_per_s": round(raw_rate)},
            "faust_floor": floor,
            "monitor": monitor, "ratio_to_raw": round(monitor["events_per_s"] / raw_rate, 4)}


def _faust_floor(bootstrap: str, topic: str, count: int) -> dict[str, int]:
    """events/s of a Faust agent that only reads (and writes a table, and sends one output)."""
    rates = {}
    for mode in ("none", "table", "table+send"):
        done = subprocess.run([sys.executable, str(REPO / "bench" / "faust_floor.py"), bootstrap,
                               topic, str(count), mode], capture_output=True, text=True,
                              timeout=900, cwd=REPO)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        rates[mode] = json.loads(lines[-1])["events_per_s"] if lines else -1
    return rates


def _count_outputs(bootstrap: str, prefix: str) -> dict[str, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    counts = {}
    for name in ("breaches", "warnings", "outcomes", "compliance", "events.dlq"):
        partitions = [TopicPartition(prefix + name, p)
                      for p in consumer.partitions_for_topic(prefix + name) or ()]
        counts[name] = sum(consumer.end_offsets(partitions).values()) if partitions else 0
    consumer.close()
    return counts


def detection_delay(bootstrap: str, work: Path, clocks: int, spread: int) -> dict:
    from kafka import KafkaConsumer, TopicPartition

    prefix = f"bench.{uuid.uuid4().hex[:6]}."
    target = spread + 60  # deadlines fall 60 s .. 60 + spread s after the run starts
    policies = work / "delay-policies.yaml"
    policies.write_text(DELAY_POLICIES % target)
    _create_topic(bootstrap, prefix + "events")
    worker = Worker(bootstrap, prefix, policies, work)
    try:
        start = int(time.time() * 1000)
        events = [{"event_id": f"d{n}", "ticket_id": f"D{n}", "type": "opened",
                   "ts": start - spread * 1000 + (n * spread * 1000) // clocks,
                   "service": "bench", "customer": "bench", "priority": "P1"}
                  for n in range(clocks)]
        first_deadline = events[0]["ts"] + target * 1000
        _produce(bootstrap, prefix + "events", events)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        deadline = time.monotonic() + target + spread + 120
        while not consumer.partitions_for_topic(prefix + "breaches"):
            consumer.topics()
            time.sleep(0.5)
        partitions = [TopicPartition(prefix + "breaches", p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        emitted, arrived = [], []
        while len(emitted) < clocks and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
                received = time.time()
                for message in batch:
                    record = orjson.loads(message.value)
                    due = parse_ts(record["deadline"]) / 1000
                    emitted.append(parse_ts(record["detected_at"]) / 1000 - due)
                    arrived.append(received - due)
        consumer.close()
    finally:
        worker.stop()
    return {"clocks": clocks, "breaches": len(emitted),
            "first_deadline": format_ts(first_deadline),
            "emitted_delay_s": _quantiles(emitted), "arrival_delay_s": _quantiles(arrived)}


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 4)}


def _print_profile(path: Path) -> None:
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--clocks", type=int, default=100_000)
    parser.add_argument("--spread", type=int, default=60, help="seconds over which deadlines fall")
    parser.add_argument("--profile", type=Path, help="run the throughput worker under cProfile")
    parser.add_argument("--skip-delay", action="store_true")
    parser.add_argument("--backlog", action="store_true",
                        help="also measure a day of past events at once (every deadline due)")
    args = parser.parse_args(argv)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="slamon-bench-") as tmp:
        work = Path(tmp)
        bootstrap = _broker(stack, work)
        result = {"bench": "live", "partitions": PARTITIONS, "cpus": os.cpu_count(),
                  "throughput": throughput(bootstrap, work, args.events, args.profile)}
        if args.backlog:
            result["backlog"] = throughput(bootstrap, work, args.events, None, backlog=True)
        if not args.skip_delay:
            result["detection"] = detection_delay(bootstrap, work, args.clocks, args.spread)
    print(json.dumps(result, indent=2))
    t = result["throughput"]
    line = (f"live: {t['monitor']['events_per_s']:,} events/s per worker "
            f"({t['ratio_to_raw']:.3f} of raw aiokafka {t['raw_consumer']['events_per_s']:,}/s;"
            f" targets 20,000/s and 0.33; a Faust agent doing nothing: "
            f"{t['faust_floor']['none']:,}/s)")
    if "backlog" in result:
        line += f"; backlog {result['backlog']['monitor']['events_per_s']:,} events/s"
    if "detection" in result:
        d = result["detection"]
        line += (f"; breach delay p50 {d['arrival_delay_s'].get('p50')} s p99 "
                 f"{d['arrival_delay_s'].get('p99')} s over {d['breaches']:,} breaches "
                 f"of {d['clocks']:,} clocks (target p99 < 1 s)")
    print(line, file=sys.stderr)
    if args.profile is not None and args.profile.exists():
        _print_profile(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
