"""`slamon demo`'s moving parts: a broker if none answers, a worker, live traffic, the console.

`Demo(options).run()` starts, in order, what is missing and stops, in reverse order, what
it started: the local broker (only if the configured one does not answer and is on this
machine), a `slamon worker` subprocess with the demo settings (memory store, fast ticks,
config/demo-policies.yaml, config/demo-portal.yaml, topics under a fresh prefix), and a
thread that sends synthetic ticket events to `<prefix>events` as the wall clock reaches
their stamps. The main thread reads the output topics and prints them (`Console`).
SIGINT and SIGTERM end the run the same way as `duration` running out.

With Kafka security settings the configured broker must answer (checked before), the
demo's clients use `client` (servers aside) and the worker reads the same settings.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from agents.devkit import localkafka
from agents.devkit.console import Console
from agents.devkit.traffic import realtime, ticket_events

__all__ = ["Demo", "DemoError", "DemoOptions"]

REPO_ROOT = localkafka.REPO_ROOT
DEMO_POLICIES = REPO_ROOT / "config" / "demo-policies.yaml"
DEMO_TOKENS = REPO_ROOT / "config" / "demo-portal.yaml"
DEMO_CUSTOMER, DEMO_TOKEN = "acme", "demo-acme-portal-token"
MINUTE_MS = 250  # a minute of ticket life: the demo runs 240 times faster than real desks
BACKLOG = 12  # tickets already waiting when the demo starts
OUTPUTS = ("breaches", "warnings", "outcomes", "compliance")


class DemoError(Exception):
    """Something the demo needs is missing or failed; the message says what."""


@dataclass(frozen=True)
class DemoOptions:
    broker: str  # host:port of the configured broker
    duration: float | None = None  # seconds of traffic; None: until SIGINT or SIGTERM
    rate: float = 30.0  # tickets opened per minute (after the backlog)
    web_port: int = 6066
    seed: int = 7
    client: Mapping[str, Any] = field(default_factory=dict)  # security: kafkaclients
    config: Path | None = None  # the settings file, for the worker too


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parent_death_signal() -> Any:
    """A preexec function: Linux sends the child SIGTERM when the demo dies (or None)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Demo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console()
        self.stop = threading.Event()
        self.interruptible = False  # raise KeyboardInterrupt from the handler (a long wait)
        self.work = Path(tempfile.mkdtemp(prefix="slamon-demo-"))
        run = uuid.uuid4().hex[:6]
        self.prefix = f"demo.{run}."
        self.app_id = f"slamon-demo-{run}"
        self.broker_cfg: localkafka.BrokerConfig | None = None
        self.bootstrap = options.broker
        self.worker: subprocess.Popen[bytes] | None = None
        self.web_port = options.web_port
        self.failed = False  # keep the work folder (the worker's log) for a look

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start_broker()
            self._start_worker()
            self._banner()
            return self._stream()
        except (DemoError, localkafka.LocalKafkaError) as exc:
            print(f"slamon demo: {exc}", file=sys.stderr)
            self.failed = True
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            self.interruptible = False
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.stop.is_set():
            self.stop.set()
            print(f"\n{signal.Signals(signum).name}: stopping what the demo started ...",
                  flush=True)
        if self.interruptible:
            self.interruptible = False
            raise KeyboardInterrupt

    def _start_broker(self) -> None:
        if localkafka.probe(self.bootstrap, timeout=5.0, options=self.options.client):
            print(f"broker   {self.bootstrap} (already running)", flush=True)
            return
        host, _, port = self.bootstrap.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise DemoError(f"no Kafka broker answers at {self.bootstrap} (SLAMON_BROKER); "
                            "unset it to let the demo start a local one")
        chosen = int(port) if not localkafka.port_in_use(host, int(port)) else _free_port()
        cfg = localkafka.BrokerConfig(port=chosen, controller_port=_free_port(),
                                      home=self.work / "kafka", heap="512m", partitions=2)
        print(f"broker   none answers at {self.bootstrap}: starting a local one on "
              f"{cfg.bootstrap} (stopped at the end) ...", flush=True)
        self.interruptible = True
        localkafka.start(cfg, say=lambda line: print(f"         {line}", flush=True),
                         tie_to_parent=True)
        self.interruptible = False
        self.broker_cfg = cfg
        self.bootstrap = cfg.bootstrap

    def _worker_env(self) -> dict[str, str]:
        return os.environ | {
            "SLAMON_BROKER": f"kafka://{self.bootstrap}", "SLAMON_APP_ID": self.app_id,
            "SLAMON_TOPIC_PREFIX": self.prefix, "SLAMON_PARTITIONS": "2",
            "SLAMON_REPLICATION_FACTOR": "1", "SLAMON_STORE": "memory://",
            "SLAMON_DATA_DIR": str(self.work / "data"), "SLAMON_TICK_INTERVAL": "0.2",
            "SLAMON_LATENESS": "10", "SLAMON_POLICIES": str(DEMO_POLICIES),
            "SLAMON_PORTAL_TOKENS": str(DEMO_TOKENS), "SLAMON_WEB_HOST": "127.0.0.1",
            "SLAMON_WEB_PORT": str(self.web_port), "SLAMON_LOG_LEVEL": "warning",
        }

    def _start_worker(self, timeout: float = 120.0) -> None:
        for path in (DEMO_POLICIES, DEMO_TOKENS):
            if not path.is_file():
                raise DemoError(f"{path} is missing: run the demo from a clone of slamon")
        if localkafka.port_in_use("127.0.0.1", self.web_port):
            self.web_port = _free_port()
        log = open(self.work / "worker.log", "ab")  # noqa: SIM115 - the worker's, closed below
        with log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "worker",
                 *(["--config", str(self.options.config)] if self.options.config else [])],
                cwd=REPO_ROOT,
                env=self._worker_env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,  # Ctrl-C is ours to handle
                preexec_fn=_parent_death_signal())
        print(f"worker   pid {self.worker.pid}, log {self.work / 'worker.log'}; waiting until "
              "it is ready ...", flush=True)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.worker.poll() is not None:
                raise DemoError(f"the worker exited with {self.worker.returncode}:\n"
                                f"{self._worker_tail()}")
            if time.monotonic() > deadline:
                raise DemoError(f"the worker is not ready after {timeout:.0f} s:\n"
                                f"{self._worker_tail()}")
            if self.stop.wait(0.5):
                raise KeyboardInterrupt

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.web}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _worker_tail(self, lines: int = 30) -> str:
        text = (self.work / "worker.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _banner(self) -> None:
        print(f"topics   {self.prefix}events -> {self.prefix}breaches, warnings, outcomes, "
              f"compliance\n"
              f"metrics  {self.web}/metrics\n"
              f"portal   {self.web}/portal?token={DEMO_TOKEN}  ({DEMO_CUSTOMER}; other "
              f"customers' demo tokens are in {DEMO_TOKENS.relative_to(REPO_ROOT)})\n"
              f"traffic  {self.options.rate:g} tickets a minute after a backlog of {BACKLOG}, "
              f"at 240x speed: targets of seconds in {DEMO_POLICIES.relative_to(REPO_ROOT)}\n"
              "Breaches and warnings are printed as they fire; compliance windows close on the "
              "hour. Ctrl-C stops everything the demo started.\n", flush=True)

    # -- traffic and outputs -------------------------------------------------------------------
    def _stream(self) -> int:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                 **self.options.client,
                                 client_id=f"{self.app_id}-console")
        try:
            _assign_all(consumer, [self.prefix + name for name in OUTPUTS], self.stop)
            sender = threading.Thread(target=self._send_traffic, name="demo-traffic",
                                      daemon=True)
            sender.start()
            began = time.monotonic()
            while not self.stop.is_set():
                for batch in consumer.poll(timeout_ms=250).values():
                    for message in batch:
                        if message.value and message.value[:1] == b"{":
                            self.console.record(orjson.loads(message.value))
                self.console.tick()
                if self.worker is not None and self.worker.poll() is not None:
                    self.console.finish()
                    raise DemoError(f"the worker exited with {self.worker.returncode}:\n"
                                    f"{self._worker_tail()}")
                duration = self.options.duration
                if duration is not None and time.monotonic() - began >= duration:
                    self.stop.set()
            sender.join(timeout=10)
            self.console.finish()
        finally:
            consumer.close()
        return 0

    def _send_traffic(self) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5,
                                 **self.options.client,
                                 client_id=f"{self.app_id}-traffic")
        topic = self.prefix + "events"
        events = ticket_events(10**9, int(time.time() * 1000), self.options.rate * 60,
                               seed=self.options.seed, minute_ms=MINUTE_MS, backlog=BACKLOG)
        try:
            for event in realtime(events, self.stop):
                producer.send(topic, key=event["ticket_id"].encode(), value=orjson.dumps(event))
                self.console.events_sent += 1
        finally:
            producer.flush(timeout=10)
            producer.close(timeout=10)

    # -- stopping ------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self.stop.set()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(timeout=10)
            print(f"stopped  worker (pid {self.worker.pid}, exit {self.worker.returncode})",
                  flush=True)
        if self.broker_cfg is not None:
            pid = localkafka.stop(self.broker_cfg)
            print(f"stopped  broker on {self.broker_cfg.bootstrap} (pid {pid})", flush=True)
        if self.failed:
            print(f"kept     {self.work} (the worker's log)", flush=True)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def _assign_all(consumer: Any, topics: list[str], stop: threading.Event,
                timeout: float = 60.0) -> None:
    """Assign every partition of `topics` (waiting until the worker created them)."""
    from kafka import TopicPartition

    deadline = time.monotonic() + timeout
    while True:
        found = {topic: consumer.partitions_for_topic(topic) for topic in topics}
        if all(found.values()):
            break
        if time.monotonic() > deadline:
            missing = ", ".join(t for t, ps in found.items() if not ps)
            raise DemoError(f"the worker did not create {missing} in {timeout:.0f} s")
        consumer.topics()  # refresh the metadata
        if stop.wait(0.5):
            raise KeyboardInterrupt
    partitions = [TopicPartition(t, p) for t, ps in found.items() for p in sorted(ps or ())]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
