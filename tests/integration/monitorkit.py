"""A running `slamon worker` for integration tests, and helpers to feed it and read its topics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Worker:
    """One `slamon worker` subprocess; its output goes to a log file shown on failure."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def prefix(self) -> str:
        return self.env["SLAMON_TOPIC_PREFIX"]

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.env['SLAMON_WEB_PORT']}"

    def start(self, ready_timeout: float = 90.0) -> Worker:
        self.starts += 1
        out = open(self.log, "a")  # noqa: SIM115 - closed with the process
        out.write(f"\n===== start {self.starts} =====\n")
        out.flush()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "worker"], cwd=REPO_ROOT, env=self.env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n"
                                     f"{self.tail()}")
            if self.get("/readyz")[0] == 200:
                return self
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {ready_timeout:.0f} s:\n{self.tail()}")

    def stop(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.web + path, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def worker_env(bootstrap: str, tmp: Path, port: int, policies: Path, **overrides: str,
               ) -> dict[str, str]:
    unique = uuid.uuid4().hex[:8]
    env = os.environ | {
        "SLAMON_BROKER": f"kafka://{bootstrap.split(',')[0]}",
        "SLAMON_APP_ID": f"test-monitor-{unique}",
        "SLAMON_TOPIC_PREFIX": f"test.{unique}.",
        "SLAMON_PARTITIONS": "2",
        "SLAMON_STORE": "memory://",
        "SLAMON_DATA_DIR": str(tmp / "data"),
        "SLAMON_WEB_PORT": str(port),
        "SLAMON_WEB_HOST": "127.0.0.1",
        "SLAMON_POLICIES": str(policies),
        "SLAMON_TICK_INTERVAL": "0.2",
        "SLAMON_LOG_LEVEL": "info",
    }
    return env | overrides


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]],
            **client: Any) -> int:
    """Send `messages`; `client`: more producer options (security: kafkaclients)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **client)
    count = 0
    for key, value in messages:
        producer.send(topic, key=key, value=value)
        count += 1
    producer.flush(timeout=30)
    producer.close()
    return count


def keyed(events: Iterable[dict]) -> list[tuple[bytes, bytes]]:
    return [(e["ticket_id"].encode(), orjson.dumps(e)) for e in events]


@dataclass
class Reader:
    """Reads topics from the beginning; `until` polls until a predicate holds on what was read."""

    bootstrap: str
    topics: list[str]
    records: list[dict] = field(default_factory=list)
    messages: list = field(default_factory=list)
    client: dict[str, Any] = field(default_factory=dict)  # more consumer options (security)

    def __post_init__(self) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                      **self.client)
        partitions = []
        for topic in self.topics:
            found = None
            deadline = time.monotonic() + 60
            while not found and time.monotonic() < deadline:
                found = self.consumer.partitions_for_topic(topic)
                if not found:
                    self.consumer.topics()  # refresh metadata
                    time.sleep(0.3)
            assert found, f"topic {topic} does not exist"
            partitions += [TopicPartition(topic, p) for p in found]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)

    def until(self, done: Callable[[list[dict]], bool], timeout: float,
              expected: bool = True) -> list[dict]:
        """Read until `done(records)` or `timeout` seconds; the records read so far. Callers
        assert on the records, so a timeout is no error here; when `done` was `expected`,
        it is said on stderr (shown with a failing test's output), so that a failure later
        on the records points back to the wait that came up short."""
        deadline = time.monotonic() + timeout
        while not (met := done(self.records)) and time.monotonic() < deadline:
            for batch in self.consumer.poll(timeout_ms=200).values():
                for message in batch:
                    self.messages.append(message)
                    value = orjson.loads(message.value) if message.value[:1] == b"{" else None
                    self.records.append({"_topic": message.topic,
                                         "_headers": dict(message.headers or []),
                                         "_arrived": time.time(), "_raw": message.value,
                                         **(value or {})})
        if expected and not met and not done(self.records):
            print(f"Reader.until: not done after {timeout} s, with {len(self.records)} "
                  f"records read from {sorted({r['_topic'] for r in self.records})}",
                  file=sys.stderr)
        return self.records

    def settle(self, quiet: float = 3.0, timeout: float = 60.0) -> list[dict]:
        """Read until nothing new arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        seen = -1
        while len(self.records) != seen and time.monotonic() < deadline:
            seen = len(self.records)
            self.until(_grown_after(seen, time.monotonic() + quiet), quiet, expected=False)
        return self.records

    def close(self) -> None:
        self.consumer.close()


# A breach or warning emitted again after a retraction carries a revision: the same output.
_REVISION = re.compile(r"(:breach|:warning:[0-9.]+):\d+$")


def net(records: Iterable[dict]) -> tuple[set[str], set[tuple]]:
    """What a consumer holds at the end: live breach/warning ids; latest outcome per clock."""
    records = [r for r in records if r.get("kind") in ("breach", "warning", "outcome",
                                                        "retraction")]
    retracted = {r["retracts"] for r in records if r["kind"] == "retraction"}
    alive = {_REVISION.sub(r"\1", r["id"]) for r in records
             if r["kind"] in ("breach", "warning") and r["id"] not in retracted}
    outcomes: dict[tuple, dict] = {}
    for r in records:
        if r["kind"] == "outcome" and r["id"] not in retracted:
            key = (r["ticket_id"], r["metric"], r["cycle"])
            if key not in outcomes or outcomes[key]["revision"] < r["revision"]:
                outcomes[key] = r
    finals = {(k, o["status"], o["elapsed_seconds"], o["stopped_at"])
              for k, o in outcomes.items()}
    return alive, finals


def _grown_after(count: int, stop: float) -> Callable[[list[dict]], bool]:
    """True once more than `count` records were read and the monotonic clock passed `stop`."""
    return lambda records: len(records) > count and time.monotonic() > stop
