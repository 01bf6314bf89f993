"""A `slamon worker` process for bench/live.py: started, read from outside, stopped.

Each worker of a run gets its own web port, data directory and worker_id (static group
membership); workers of one run share the topic prefix and so the consumer group. The
bench reads a worker from outside only: its CPU time and RSS from /proc, its counters
from /metrics (scraped at a few instants, never in a loop: a scrape costs the worker),
its progress from the offsets its group commits (`follow`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from livekit import Offsets, create_topics, free_port

__all__ = ["MetricsSnapshot", "Worker", "WorkerConfig", "count_outputs", "follow", "start_team",
           "wait_ready"]

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CONSUMED = ("events", "ticks", "compliance.input")  # a worker's input topics, after the prefix


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker of a run shares."""

    bootstrap: str
    prefix: str
    policies: Path
    work: Path
    partitions: int
    store: str = "rocksdb://"
    tick_interval: float = 0.25
    log_level: str = "warning"
    # The workers' Python; another venv's (a compiled wheel installed in it) runs outside the
    # repository, so that its installed package is imported rather than the sources here.
    python: str = sys.executable

    @property
    def group(self) -> str:
        return self.prefix.rstrip(".").replace(".", "-")


@dataclass(frozen=True)
class MetricsSnapshot:
    """What a worker's /metrics says about its input and its open clocks."""

    events: float  # slamon_events_total, all types
    rejected: float  # slamon_events_rejected_total, all reasons
    open_clocks: float  # slamon_clock_open, all metrics and states
    breaches: float  # slamon_clock_breaches_total


class Worker:
    """One `slamon worker` subprocess; its output goes to <work>/<prefix><name>.log."""

    def __init__(self, config: WorkerConfig, name: str, profile: Path | None = None) -> None:
        self.name = name
        self.port = free_port()
        data = config.work / f"{config.prefix}{name}"
        env = os.environ | {
            "SLAMON_BROKER": f"kafka://{config.bootstrap}",
            "SLAMON_TOPIC_PREFIX": config.prefix, "SLAMON_APP_ID": config.group,
            "SLAMON_PARTITIONS": str(config.partitions), "SLAMON_STORE": config.store,
            "SLAMON_DATA_DIR": str(data), "SLAMON_WEB_PORT": str(self.port),
            "SLAMON_WEB_HOST": "127.0.0.1", "SLAMON_POLICIES": str(config.policies),
            "SLAMON_TICK_INTERVAL": str(config.tick_interval), "SLAMON_LOG_LEVEL": config.log_level,
            "SLAMON_WORKER_ID": f"bench-{name}",
        }
        command = [config.python]
        if profile is not None:  # main thread only: not Faust's aiokafka consumer thread
            command += ["-m", "cProfile", "-o", str(profile)]
        command += ["-m", "agents.cli", "worker"]
        self.log_path = config.work / f"{config.prefix}{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        cwd = REPO if config.python == sys.executable else config.work
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    # -- from outside ------------------------------------------------------------
    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                        timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def ready(self) -> bool:
        self.check_alive()
        return self.get("/readyz")[0] == 200

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"worker {self.name} exited with {self.process.returncode}; "
                             f"see {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker process, all its threads."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS in /proc/{self.process.pid}/status")

    def metrics(self) -> MetricsSnapshot | None:
        status, body = self.get("/metrics")
        if status != 200:
            return None
        sums = {"slamon_events_total": 0.0, "slamon_events_rejected_total": 0.0,
                "slamon_clock_open": 0.0, "slamon_clock_breaches_total": 0.0}
        for line in body.decode().splitlines():
            if line.startswith("#"):
                continue
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in sums:
                sums[name] += float(line.rsplit(" ", 1)[1])
        return MetricsSnapshot(sums["slamon_events_total"], sums["slamon_events_rejected_total"],
                               sums["slamon_clock_open"], sums["slamon_clock_breaches_total"])

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()
        return self.process.returncode


def wait_ready(workers: list[Worker], timeout: float = 180.0) -> float:
    """Wait until every worker answers /readyz 200; the seconds it took."""
    started = time.monotonic()
    while not all(worker.ready() for worker in workers):
        if time.monotonic() - started > timeout:
            raise SystemExit(f"workers not ready in {timeout:.0f} s: " + "; ".join(
                f"{w.name}: {w.tail(5)}" for w in workers))
        time.sleep(0.3)
    return time.monotonic() - started


def follow(offsets: Offsets, group: str, prefix: str, total: int, team: list[Worker],
           timeout: float) -> dict:
    """Rate between 10% and 90% of `total` committed; until events and compliance drain (and
    the CPU the whole run took, so the work that trails the events' offsets is counted)."""
    events, compliance = prefix + "events", prefix + "compliance.input"
    started = time.perf_counter()
    cpu_started = sum(worker.cpu_seconds() for worker in team)
    marks: dict[str, tuple[float, int, float]] = {}
    drained: float | None = None
    cpu_drained = 0.0
    last: tuple[int, int] | None = None
    while drained is None:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"{group}: not drained in {timeout:.0f} s (marks {marks})")
        committed = offsets.committed(group, events, compliance)
        now = time.perf_counter()
        for worker in team:
            worker.check_alive()
        if committed is None:
            time.sleep(0.2)
            continue
        done = committed[events]
        cpu = sum(worker.cpu_seconds() for worker in team)
        for name, share in (("low", 0.1), ("high", 0.9), ("all", 1.0)):
            if name not in marks and done >= share * total:
                marks[name] = (now, done, cpu)
        if done >= total:
            state = (committed[compliance], offsets.end(compliance))
            if state[0] >= state[1] and state == last:
                drained, cpu_drained = now - started, cpu
            last = state
        time.sleep(0.2)
    (t0, c0, cpu0), (t1, c1, cpu1) = marks["low"], marks["high"]
    rate = (c1 - c0) / (t1 - t0)
    cpu = cpu1 - cpu0
    return {"events": c1 - c0, "seconds": round(t1 - t0, 3), "events_per_s": round(rate),
            "cpu_s": round(cpu, 2), "cpu_share": round(cpu / (t1 - t0) / len(team), 2),
            "events_per_cpu_s": round((c1 - c0) / cpu) if cpu else None,
            "events_committed_s": round(marks["all"][0] - started, 2),
            "drained_s": round(drained, 2), "compliance_inputs": last[1] if last else 0,
            # Over the whole run, the compliance input's tail included (it trails the events):
            "drained_cpu_s": round(cpu_drained - cpu_started, 2),
            "events_per_cpu_s_drained": round(total / (cpu_drained - cpu_started))}


def count_outputs(offsets: Offsets, prefix: str) -> dict[str, int]:
    return {name: offsets.end(prefix + name)
            for name in ("breaches", "warnings", "outcomes", "compliance", "events.dlq")}


def start_team(config: WorkerConfig, offsets: Offsets, size: int,
               profile: Path | None = None) -> list[Worker]:
    """`size` workers of one group on new topics, ready, the group stable.

    The topics a worker consumes are created first, as in a deployment that has run
    before: a worker started before its ticks and compliance input exist does not read
    them until its consumer refreshes its metadata (5 minutes later).
    """
    create_topics(config.bootstrap, [config.prefix + name for name in CONSUMED],
                  config.partitions)
    team = [Worker(config, f"w{n}", profile if n == 0 else None) for n in range(size)]
    try:
        wait_ready(team)
        deadline = time.monotonic() + 120
        while offsets.members(config.group) != ("Stable", size):
            if time.monotonic() > deadline:
                raise SystemExit(f"group {config.group}: {offsets.members(config.group)}, "
                                 f"not Stable with {size} members")
            time.sleep(0.5)
        wait_ready(team)
    except BaseException:
        for worker in team:
            worker.stop()
        raise
    return team
