"""The chaos kit's processes and eyes: workers to kill, a broker to freeze, an outside reader.

Crash tests treat slamon as an operator's black box: real `slamon worker` subprocesses
(`python -m agents.cli worker`, settings only through `SLAMON_*`), a real broker, and an
outside kafka-python consumer reading every output topic from the beginning. Nothing here
imports the worker's code, so a test sees what a downstream consumer would see.

- `ChaosWorker`: launch without waiting, wait for /readyz, SIGKILL / SIGTERM / SIGHUP,
  restart on the same data dir (RocksDB state survives a kill, as in production).
- `OwnBroker`: a broker of the test's own (agents.devkit.localkafka on free ports) that may
  be frozen (SIGSTOP/SIGCONT) or stopped and started. The session's shared broker is never
  touched that way: other tests and helpers use it.
- `OutsideReader`: every record of the given topics, raw bytes kept, JSON decoded when it is
  an object; random bytes on the DLQ do not trip it.

Workers and `slamon replay` run from `CODE_ROOT`: the repository by default, or the tree
named by `SLAMON_CHAOS_CODE` (e.g. a `git archive` of a commit, to measure it while the
working tree moves).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition

from agents.devkit import localkafka
from tests.integration.monitorkit import worker_env

__all__ = [
    "CODE_ROOT",
    "ChaosWorker",
    "OutsideReader",
    "OwnBroker",
    "Seen",
    "chaos_env",
    "free_port",
    "own_broker",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CODE_ROOT = Path(os.environ.get("SLAMON_CHAOS_CODE") or REPO_ROOT).resolve()
# What a dying agent or an unhandled error leaves in a worker's log.
_CRASH = re.compile(r"Traceback \(most recent call last\)|[Cc]rashed|MessageSizeTooLarge")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chaos_env(bootstrap: str, app_id: str, prefix: str, policies: Path, data_dir: Path,
              web_port: int, **overrides: str) -> dict[str, str]:
    """A worker's environment: RocksDB store, its own data dir and web port, fast ticks.

    Workers of one deployment share `app_id` and `prefix`; each has its own data dir.
    """
    return worker_env(bootstrap, data_dir.parent, web_port, policies, **{
        "SLAMON_APP_ID": app_id,
        "SLAMON_TOPIC_PREFIX": prefix,
        "SLAMON_STORE": "rocksdb://",
        "SLAMON_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(CODE_ROOT),
        "PYTHONUNBUFFERED": "1",
    } | overrides)


@dataclass
class ChaosWorker:
    """One `slamon worker` that may be killed and started again; output appended to `log`."""

    env: dict[str, str]
    log: Path
    name: str = "worker"
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    launched_at: float = 0.0  # time.time() of the last launch

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.env['SLAMON_WEB_PORT']}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> None:
        """Start the process and return at once (readiness is `wait_ready`'s business)."""
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        with open(self.log, "ab") as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"\n===== {self.name} start {self.starts} at {stamp} =====\n".encode())
            out.flush()
            self.launched_at = time.time()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "worker"], cwd=CODE_ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float) -> float | None:
        """Seconds from launch until /readyz answered 200; None if not within `timeout`
        or if the process exited (see `alive`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                return None
            if self.get("/readyz")[0] == 200:
                return time.time() - self.launched_at
            time.sleep(0.2)
        return None

    def start(self, timeout: float = 90.0) -> float:
        """Launch and wait until ready; AssertionError with the log tail when it is not."""
        self.launch()
        ready = self.wait_ready(timeout)
        if ready is None:
            state = "exited" if not self.alive else f"not ready in {timeout:.0f} s"
            raise AssertionError(f"{self.name} {state}:\n{self.tail()}")
        return ready

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None, f"{self.name} was never started"
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, and reap it: nothing of the worker runs afterwards."""
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`); the exit status, None if never run."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def get(self, path: str, timeout: float = 3.0) -> tuple[int, bytes]:
        """(status, body) of a GET on the worker's web server; (0, b"") when it does not answer."""
        try:
            with urllib.request.urlopen(self.web + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def policy_version(self) -> int | None:
        """The running policy version, as /readyz reports it (None when it does not answer)."""
        status, body = self.get("/readyz")
        if not status:
            return None
        with contextlib.suppress(ValueError):
            version = orjson.loads(body).get("policy_version")
            return version if isinstance(version, int) else None
        return None

    def log_bytes(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_lines(self, since: int = 0) -> list[str]:
        """Log lines from byte offset `since` (see `log_bytes`)."""
        if not self.log.exists():
            return []
        with open(self.log, "rb") as text:
            text.seek(since)
            return text.read().decode(errors="replace").splitlines()

    def crash_lines(self) -> list[str]:
        """Lines that show an agent died or an error escaped (tracebacks, crashes)."""
        return [line for line in self.log_lines() if _CRASH.search(line)]

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_lines()[-lines:])


@dataclass
class OwnBroker:
    """A local broker this test owns: free to freeze, stop and start (never the shared one)."""

    config: localkafka.BrokerConfig

    @property
    def bootstrap(self) -> str:
        return self.config.bootstrap

    @property
    def pid(self) -> int:
        pid = localkafka.status(self.config).pid
        assert pid is not None, f"own broker {self.bootstrap} is not running"
        return pid

    def start(self) -> None:
        localkafka.start(self.config, tie_to_parent=True,
                         say=lambda line: print(f"own broker: {line}", file=sys.stderr))

    def stop(self) -> None:
        localkafka.stop(self.config)

    def freeze(self) -> None:
        """SIGSTOP: the broker holds every connection and answers nothing."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


@contextlib.contextmanager
def own_broker(home: Path) -> Iterator[OwnBroker]:
    """A broker on free ports under `home`, stopped (thawed first) at the end."""
    config = localkafka.BrokerConfig(port=free_port(), controller_port=free_port(), home=home,
                                     heap="512m")
    broker = OwnBroker(config)
    broker.start()
    try:
        yield broker
    finally:
        pid = localkafka.status(config).pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        broker.stop()


@dataclass(slots=True)
class Seen:
    """One record read from a topic by the outside consumer."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    arrived: float  # time.time() when the reader got it
    record: dict | None  # the value as a JSON object, else None
    created: float = 0.0  # the record's Kafka timestamp (the producer's send time), seconds

    @property
    def id(self) -> str | None:
        value = None if self.record is None else self.record.get("id")
        return value if isinstance(value, str) else None

    @property
    def kind(self) -> str | None:
        value = None if self.record is None else self.record.get("kind")
        return value if isinstance(value, str) else None


def _decode(value: bytes | None) -> dict | None:
    if not value or value[:1] != b"{":
        return None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


@dataclass
class OutsideReader:
    """Reads `topics` from the beginning with kafka-python, as a downstream consumer would."""

    bootstrap: str
    topics: list[str]
    seen: list[Seen] = field(default_factory=list)
    # (kind, metric, ticket_id) -> (first arrival, its Kafka timestamp): waits look here
    # instead of scanning `seen`
    first: dict[tuple[str, str | None, str], tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False,
            client_id=f"chaos-reader-{uuid.uuid4().hex[:6]}",
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024)
        partitions: list[TopicPartition] = []
        for topic in self.topics:
            found = None
            deadline = time.monotonic() + 60
            while not found and time.monotonic() < deadline:
                found = self.consumer.partitions_for_topic(topic)
                if not found:
                    self.consumer.topics()  # refresh metadata
                    time.sleep(0.3)
            assert found, f"topic {topic} does not exist after 60 s"
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)

    def poll(self, timeout: float = 0.2) -> int:
        """Read what is there (waiting up to `timeout` s); how many records arrived."""
        batches = self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=100_000)
        now = time.time()
        count = 0
        for batch in batches.values():
            for message in batch:
                record = _decode(message.value)
                created = message.timestamp / 1000 if message.timestamp else 0.0
                self.seen.append(Seen(message.topic, message.partition, message.offset,
                                      message.key, message.value,
                                      {k: v or b"" for k, v in message.headers or []},
                                      now, record, created))
                count += 1
                if record is not None and isinstance(record.get("ticket_id"), str):
                    self.first.setdefault((str(record.get("kind")), record.get("metric"),
                                           record["ticket_id"]), (now, created))
        return count

    def until(self, done: Callable[[list[Seen]], bool], timeout: float) -> bool:
        """Read until `done(seen)` holds (True) or `timeout` s passed (False)."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            if time.monotonic() >= deadline:
                return False
            self.poll(0.2)
        return True

    def settle(self, quiet: float = 3.0, timeout: float = 60.0) -> None:
        """Read until nothing new arrived for `quiet` seconds (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_new < quiet:
            if self.poll(0.2):
                last_new = time.monotonic()

    def on(self, topic: str) -> list[Seen]:
        return [s for s in self.seen if s.topic == topic]

    def close(self) -> None:
        self.consumer.close()
