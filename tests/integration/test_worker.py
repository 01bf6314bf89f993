"""`slamon worker` as a subprocess against the real broker: an event sent is consumed."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

pytestmark = pytest.mark.integration


@dataclass
class WorkerProcess:
    """A running `slamon worker` whose output lines a thread collects (shown on failure)."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def output(self, lines: int = 60) -> str:
        """The last output lines collected so far."""
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return "".join(self.seen[-lines:])


REPO_ROOT = Path(__file__).resolve().parents[2]


def _start_worker(env: dict[str, str]) -> WorkerProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "worker"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = WorkerProcess(process)
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(process.stdout, worker.lines), daemon=True).start()
    return worker


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.fixture
def worker_env(
    kafka_bootstrap: str, tmp_path: Path, free_port: Callable[[], int]
) -> dict[str, str]:
    """Environment of a worker with its own app id, topic prefix, data dir and web port."""
    unique = uuid.uuid4().hex[:8]
    return os.environ | {
        "SLAMON_BROKER": f"kafka://{kafka_bootstrap.split(',')[0]}",
        "SLAMON_APP_ID": f"test-worker-{unique}",
        "SLAMON_TOPIC_PREFIX": f"test.{unique}.",
        "SLAMON_PARTITIONS": "2",
        "SLAMON_STORE": "memory://",
        "SLAMON_DATA_DIR": str(tmp_path / "data"),
        "SLAMON_WEB_PORT": str(free_port()),
        "SLAMON_WEB_HOST": "127.0.0.1",
        "SLAMON_LOG_LEVEL": "info",
    }


@pytest.fixture
def worker(worker_env: dict[str, str]) -> Iterator[WorkerProcess]:
    running = _start_worker(worker_env)
    yield running
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait(timeout=10)


def _wait_for_topic(admin: KafkaAdminClient, topic: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = [t for t in admin.describe_topics([topic]) if t["error_code"] == 0]
        if described and described[0]["partitions"]:
            return len(described[0]["partitions"])
        time.sleep(0.2)
    pytest.fail(f"the worker did not create {topic} within {timeout:.0f} s")


def _committed(
    bootstrap: str, group: str, partition: TopicPartition, offset: int, timeout: float
) -> int | None:
    """The group's committed offset on `partition`, once it reaches `offset` (or at timeout)."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        while True:
            committed = reader.committed(partition)
            if (committed is not None and committed >= offset) or time.monotonic() > deadline:
                return committed
            time.sleep(0.5)
    finally:
        reader.close()


@pytest.fixture
def admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    yield client
    client.close()


def test_worker_consumes_an_event(
    kafka_bootstrap: str,
    worker_env: dict[str, str],
    worker: WorkerProcess,
    admin: KafkaAdminClient,
) -> None:
    """The worker declares `<prefix>events`, and its agent consumes (and commits) an event.

    The committed offset of the worker's consumer group is the evidence: it holds for the
    placeholder agent and for the clock agent that replaces it alike.
    """
    topic = worker_env["SLAMON_TOPIC_PREFIX"] + "events"
    assert _wait_for_topic(admin, topic, timeout=60) == 2  # declared by the worker

    event = {
        "event_id": "e-1",
        "ticket_id": "T-42",
        "type": "opened",
        "ts": int(time.time() * 1000),
        "service": "payments",
        "customer": "acme",
        "priority": "P2",
    }
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent = producer.send(topic, key=b"T-42", value=orjson.dumps(event)).get(timeout=30)
    producer.close()

    where = TopicPartition(topic, sent.partition)
    committed = _committed(kafka_bootstrap, worker_env["SLAMON_APP_ID"], where, sent.offset + 1, 90)
    assert committed == sent.offset + 1, f"committed {committed}; worker:\n{worker.output()}"

    worker.process.send_signal(signal.SIGTERM)
    code = worker.process.wait(timeout=60)
    assert code == 0, f"the worker exited with {code} on SIGTERM:\n{worker.output()}"
