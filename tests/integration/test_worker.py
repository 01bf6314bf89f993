"""`slamon worker` as a subprocess against the real broker: an event sent is consumed."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

pytestmark = pytest.mark.integration


@dataclass
class WorkerProcess:
    """A running `slamon worker` whose output lines are collected by a thread."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, timeout: float) -> str:
        """The first output line matching `pattern`; fails with the output so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        pytest.fail(f"no line matching {pattern!r} in {timeout:.0f} s; output:\n{self.output()}")

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
    stdout = process.stdout
    threading.Thread(target=lambda: [worker.lines.put(x) for x in stdout], daemon=True).start()
    return worker


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


def _wait_for_commit(
    bootstrap: str, group: str, partition: TopicPartition, offset: int, timeout: float
) -> None:
    """Until the worker's consumer group has committed `offset` on `partition`."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        committed = None
        while time.monotonic() < deadline:
            committed = reader.committed(partition)
            if committed is not None and committed >= offset:
                return
            time.sleep(0.5)
    finally:
        reader.close()
    pytest.fail(f"group {group} committed {committed} on {partition}, not {offset}, in {timeout} s")


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
    _wait_for_commit(kafka_bootstrap, worker_env["SLAMON_APP_ID"], where, sent.offset + 1, 90)

    worker.process.send_signal(signal.SIGTERM)
    code = worker.process.wait(timeout=60)
    assert code == 0, f"the worker exited with {code} on SIGTERM:\n{worker.output()}"
