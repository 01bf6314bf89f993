"""Benchmark of the webhook receiver: accepted webhooks/s, and POST-to-event time at 200/s.

    .venv/bin/python bench/ingest.py                    # 20,000 webhooks, then 30 s at 200/s
    .venv/bin/python bench/ingest.py --webhooks 5000 --rate 200 --seconds 10
    .venv/bin/python bench/ingest.py --profile bench/out/ingest.prof   # the worker profiled

A `slamon worker` with one Zendesk source runs on a local broker (KAFKA_BOOTSTRAP_SERVERS,
or one from deploy/kafka's jars on free ports). The webhooks are Zendesk ticket.created
events, each signed (base64 HMAC-SHA256 over timestamp + body, the dearest scheme to check)
before the clock starts, posted over keep-alive HTTP by an aiohttp client:

(a) accepted/s: `--webhooks` deliveries with `--concurrency` requests in flight; each 202
    means the raw payload was acknowledged by the broker (acks=all).
    Then the time until all their events are on <prefix>events (the translator's rate).
(b) latency: `--rate` webhooks a second for `--seconds`, sent on schedule (open loop); for
    each, the time from the POST to its `opened` event on <prefix>events (read by a
    consumer in this process), p50/p99/max.

Prints JSON on stdout and one summary line on stderr. Nothing is asserted: the targets
(>= 2,000 accepted webhooks/s; p99 < 100 ms at 200/s) are printed beside the figures. The
client shares the machine's cores with the worker and the broker, so the worker's own CPU
per webhook (receiving and translating, from /proc) is printed too: it does not depend on
what else the machine runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import orjson
from livekit import broker, free_port

from agents.ingest.desks import DESKS
from agents.ingest.signatures import sign

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 4
SECRET = "bench-secret"
SOURCES = """\
sources:
  zendesk:
    type: zendesk
    secret: {env: BENCH_ZENDESK_SECRET}
"""
POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: []
  targets:
    P1: {response: 15m, resolution: 4h}
    P2: {response: 1h, resolution: 8h}
    P3: {response: 4h, resolution: 3d}
    P4: {response: 1d, resolution: 10d}
"""


class Worker:
    """A `slamon worker` subprocess with the bench's source and policies."""

    def __init__(self, bootstrap: str, work: Path, profile: Path | None = None) -> None:
        self.port = free_port()
        self.prefix = f"bench.ingest.{uuid.uuid4().hex[:6]}."
        (work / "sources.yaml").write_text(SOURCES)
        (work / "policies.yaml").write_text(POLICIES)
        self.log = work / "worker.log"
        env = os.environ | {
            "SLAMON_BROKER": f"kafka://{bootstrap}", "SLAMON_TOPIC_PREFIX": self.prefix,
            "SLAMON_APP_ID": self.prefix.rstrip(".").replace(".", "-"),
            "SLAMON_PARTITIONS": str(PARTITIONS), "SLAMON_STORE": "memory://",
            "SLAMON_DATA_DIR": str(work / "data"), "SLAMON_WEB_PORT": str(self.port),
            "SLAMON_WEB_HOST": "127.0.0.1", "SLAMON_POLICIES": str(work / "policies.yaml"),
            "SLAMON_SOURCES": str(work / "sources.yaml"), "SLAMON_LOG_LEVEL": "warning",
            "BENCH_ZENDESK_SECRET": SECRET,
        }
        command = [sys.executable]
        if profile is not None:
            command += ["-m", "cProfile", "-o", str(profile.resolve())]
        self.process = subprocess.Popen([*command, "-m", "agents.cli", "worker"], cwd=REPO,
                                        env=env, stdout=self.log.open("w"),
                                        stderr=subprocess.STDOUT)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ingest/zendesk"

    def wait_ready(self, timeout: float = 120.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"worker exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz",
                                            timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("worker not ready")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _webhooks(count: int, run: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """(event id, body, signed headers) of `count` ticket.created events, signed now."""
    spec = DESKS["zendesk"].signature
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    made = []
    for n in range(count):
        event_id = f"{run}-{n}"
        body = orjson.dumps({
            "type": "zen:event-type:ticket.created", "account_id": 1, "id": event_id,
            "time": stamp, "subject": f"zen:ticket:{run}{n}",
            "detail": {"id": f"{run}{n}", "status": "NEW", "priority": "NORMAL",
                       "group_id": "360001", "organization_id": "360009",
                       "created_at": stamp, "updated_at": stamp, "tags": ["bench"],
                       "subject": "Card payments fail", "via": {"channel": "web"}},
            "event": {}})
        made.append((event_id, body, sign(spec, SECRET, body, stamp)
                     | {"Content-Type": "application/json"}))
    return made


async def _consumer(bootstrap: str, topic: str, from_end: bool) -> Any:
    """A consumer assigned every partition of `topic` (waiting for it to exist)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    deadline = time.monotonic() + 60
    while not consumer.partitions_for_topic(topic) and time.monotonic() < deadline:
        await consumer.topics()  # refresh metadata
        await asyncio.sleep(0.2)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    if from_end:
        await consumer.seek_to_end(*partitions)
    else:
        await consumer.seek_to_beginning(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    return consumer


async def accepted_rate(url: str, webhooks: list, concurrency: int) -> dict:
    import aiohttp

    statuses: dict[int, int] = {}
    queue = iter(webhooks)

    async def client(session: aiohttp.ClientSession) -> None:
        for _, body, headers in queue:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"webhooks": len(webhooks), "concurrency": concurrency,
            "seconds": round(elapsed, 3), "statuses": statuses,
            "accepted_per_s": round(statuses.get(202, 0) / elapsed)}


async def latency(url: str, bootstrap: str, topic: str, webhooks: list, rate: float) -> dict:
    import aiohttp

    consumer = await _consumer(bootstrap, topic, from_end=True)
    posted: dict[str, float] = {}
    arrived: dict[str, float] = {}
    statuses: dict[int, int] = {}

    wanted = {event_id for event_id, _, _ in webhooks}

    async def read() -> None:
        while len(arrived) < len(wanted):
            batches = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    event_id = orjson.loads(record.value)["event_id"].split(":")[1]
                    if event_id in wanted:
                        arrived.setdefault(event_id, now)

    async def send(session: aiohttp.ClientSession, event_id: str, body: bytes,
                   headers: dict[str, str]) -> None:
        posted[event_id] = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1

    reader = asyncio.create_task(read())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        started = time.perf_counter()
        sends = []
        for n, (event_id, body, headers) in enumerate(webhooks):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sends.append(asyncio.create_task(send(session, event_id, body, headers)))
        await asyncio.gather(*sends)
    with suppress(TimeoutError):
        await asyncio.wait_for(reader, timeout=60)
    await consumer.stop()
    delays = sorted(arrived[e] - posted[e] for e in arrived if e in posted)

    def pick(q: float) -> float | None:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000, 1) \
            if delays else None

    return {"rate_per_s": rate, "webhooks": len(webhooks), "statuses": statuses,
            "events_seen": len(delays), "ms": {"p50": pick(0.5), "p99": pick(0.99),
                                               "max": pick(1.0)}}


def translated(worker: Worker, expected: int, since: float, timeout: float = 300.0) -> dict:
    """Wait until the translator made `expected` events (its own count on /metrics)."""
    import urllib.request

    deadline = time.perf_counter() + timeout
    made = 0.0
    while made < expected and time.perf_counter() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith('slamon_ingest_events_total{source="zendesk",type="opened"}'):
                    made = float(line.rsplit(" ", 1)[1])
        time.sleep(0.1)
    elapsed = time.perf_counter() - since
    return {"events": int(made), "seconds": round(elapsed, 3),
            "events_per_s": round(made / elapsed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--webhooks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--profile", type=Path, help="run the worker under cProfile")
    args = parser.parse_args(argv)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="slamon-bench-ingest-") as tmp:
        work = Path(tmp)
        bootstrap = broker(stack, work)
        worker = Worker(bootstrap, work, args.profile)
        stack.callback(worker.stop)
        worker.wait_ready()
        warm = _webhooks(200, "warm")
        asyncio.run(accepted_rate(worker.url, warm, 8))  # topics made, connections open
        webhooks = _webhooks(args.webhooks, "burst")
        since, cpu = time.perf_counter(), worker.cpu_seconds()
        burst = asyncio.run(accepted_rate(worker.url, webhooks, args.concurrency))
        burst["worker_cpu_ms_per_webhook"] = round(
            1000 * (worker.cpu_seconds() - cpu) / len(webhooks), 3)
        drained = translated(worker, len(warm) + len(webhooks), since)
        timed = _webhooks(int(args.rate * args.seconds), "lat")
        delay = asyncio.run(latency(worker.url, bootstrap, f"{worker.prefix}events", timed,
                                    args.rate))
    result = {"bench": "ingest", "cpus": os.cpu_count(), "partitions": PARTITIONS,
              "accepted": burst, "translated": drained, "latency": delay}
    print(json.dumps(result, indent=2))
    ms = delay["ms"]
    print(f"ingest: {burst['accepted_per_s']:,} accepted webhooks/s ({burst['webhooks']:,} "
          f"signed Zendesk webhooks, {burst['concurrency']} in flight, "
          f"{burst['worker_cpu_ms_per_webhook']} ms of worker CPU each, translation "
          f"included; target 2,000/s), "
          f"all translated at {drained['events_per_s']:,} events/s; "
          f"POST to event at {args.rate:g}/s: p50 {ms['p50']} ms p99 {ms['p99']} ms "
          f"max {ms['max']} ms over {delay['events_seen']:,} events (target p99 < 100 ms)",
          file=sys.stderr)
    if args.profile is not None and args.profile.exists():
        import pstats

        pstats.Stats(str(args.profile), stream=sys.stderr).sort_stats("tottime").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
