"""A worker killed with SIGKILL and started again is back at work within ten seconds
(issue 9, defect 2), and `slamon worker` copes with what operators do to it early: SIGHUP
before it is ready (defect 7), Faust's own environment variables (defect 9), a second
deployment sharing its consumer group (defect 11).

Real broker, real `slamon worker` processes, RocksDB tables. "Back at work" is measured as
the broker sees it: an undecodable message produced while the worker is dead is
dead-lettered by the restarted worker; the figure is the DLQ record's Kafka timestamp
minus the instant the new process was spawned. Each figure is printed (pytest -s).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.monitorkit import REPO_ROOT, Reader, Worker, produce, worker_env

pytestmark = pytest.mark.integration

POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  targets:
    P1: {response: 15m, resolution: 4h}
"""
RESUME_TARGET = 10.0  # issue 9: seconds from spawning the new process to its first output
# What this test fails on: a guard far below the minute a restarted worker used to wait for
# its dead predecessor's session, far above a restart's noise on a busy 2-core CI box. The
# figures are printed; bench/chaos.py measures the target and fails a run that misses it.
RESUME_GUARD = 30.0


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(POLICIES)
    return path


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Workers to stop at the end; their log tails are printed (pytest shows them on failure)."""
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop()
        print(worker.tail(80))


def _dead_letter_after(reader: Reader, marker: bytes, timeout: float) -> float:
    """The Kafka timestamp (s) of the DLQ copy of the message whose value is `marker`."""
    reader.until(lambda records: any(r["_raw"] == marker for r in records), timeout)
    found = [m for m in reader.messages if m.value == marker]
    assert found, f"{marker!r} was not dead-lettered within {timeout:.0f} s"
    return float(found[0].timestamp) / 1000


def test_a_killed_worker_resumes_under_the_guard_and_reports_its_time(
    kafka_bootstrap: str, tmp_path: Path, free_port: Callable[[], int], policies: Path,
    workers: list[Worker],
) -> None:
    env = worker_env(kafka_bootstrap, tmp_path, free_port(), policies,
                     SLAMON_STORE="rocksdb://")
    worker = Worker(env, tmp_path / "worker.log")
    workers.append(worker)
    worker.start()
    events = f"{worker.prefix}events"
    reader = Reader(kafka_bootstrap, [f"{worker.prefix}events.dlq"])
    try:
        marker = b"not json: before the first kill"
        produce(kafka_bootstrap, events, [(b"t-0", marker)])
        _dead_letter_after(reader, marker, timeout=30)
        figures = []
        for kill in range(1, 4):
            assert worker.process is not None
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(timeout=10)
            marker = f"not json: after kill {kill}".encode()
            produce(kafka_bootstrap, events, [(f"t-{kill}".encode(), marker)])
            spawned = time.time()
            worker.start(ready_timeout=90)
            ready = time.time() - spawned
            resumed = _dead_letter_after(reader, marker, timeout=90) - spawned
            figures.append((ready, resumed))
            print(f"kill {kill}: ready {ready:.1f} s, first output {resumed:.1f} s "
                  f"after the restart")
        # A replacement under another identity (a new pod, say) cannot take the dead
        # member's place: it waits for the session to expire, session_timeout (10 s)
        # after the dead member's last heartbeat, instead of Kafka's 45-60 s.
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)
        worker.env["SLAMON_WORKER_ID"] = "replacement"
        marker = b"not json: after a kill, restarted under another worker_id"
        produce(kafka_bootstrap, events, [(b"t-r", marker)])
        spawned = time.time()
        worker.start(ready_timeout=90)
        replaced = _dead_letter_after(reader, marker, timeout=90) - spawned
        print(f"replacement under a new worker_id: first output {replaced:.1f} s after start")
    finally:
        reader.close()
    print(f"resumed within the {RESUME_TARGET:.0f} s target: "
          f"{sum(resumed <= RESUME_TARGET for _, resumed in figures)} of {len(figures)}")
    assert all(resumed <= RESUME_GUARD for _, resumed in figures), figures
    assert replaced <= 10.0 + RESUME_GUARD, replaced


def test_early_hangups_and_faust_variables_do_not_move_the_worker(
    kafka_bootstrap: str, tmp_path: Path, free_port: Callable[[], int], policies: Path,
) -> None:
    port, faust_port = free_port(), free_port()
    env = worker_env(kafka_bootstrap, tmp_path, port, policies,
                     WEB_PORT=str(faust_port), BROKER_URL="kafka://127.0.0.1:1")
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "agents.cli", "worker"],
                                   cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT)
    worker = Worker(env, log, process)
    try:
        deadline = time.monotonic() + 90
        # What building the app prints (the desks' secrets), or Faust's first line, comes
        # after run() began, which first handles SIGHUP: from then on, hang up quickly; a
        # fast machine is ready in two seconds.
        while not re.search(r"^source |Starting\.\.\.", log.read_text(), re.MULTILINE):
            assert process.poll() is None, f"worker died before it began:\n{worker.tail()}"
            assert time.monotonic() < deadline, "no output in 90 s"
            time.sleep(0.02)
        hangups = 0
        while worker.get("/readyz")[0] != 200:
            assert process.poll() is None, f"worker died on SIGHUP {hangups}:\n{worker.tail()}"
            assert time.monotonic() < deadline, f"not ready in 90 s:\n{worker.tail()}"
            process.send_signal(signal.SIGHUP)
            hangups += 1
            time.sleep(0.1)
        assert hangups >= 5, "the worker was ready before it could be tested"
        process.send_signal(signal.SIGHUP)  # and one once ready
        deadline = time.monotonic() + 20
        while log.read_text().count("policies reloaded from") < 2:
            assert time.monotonic() < deadline, worker.tail()
            time.sleep(0.2)
        assert process.poll() is None
        assert worker.get("/healthz")[0] == 200  # on SLAMON_WEB_PORT, not Faust's WEB_PORT
        faust_web = Worker(env | {"SLAMON_WEB_PORT": str(faust_port)}, log)
        assert faust_web.get("/healthz")[0] == 0
    finally:
        worker.stop()


def test_a_second_deployment_in_the_same_group_is_refused(
    kafka_bootstrap: str, tmp_path: Path, free_port: Callable[[], int], policies: Path,
    workers: list[Worker],
) -> None:
    first = Worker(worker_env(kafka_bootstrap, tmp_path, free_port(), policies),
                   tmp_path / "first.log")
    workers.append(first)
    first.start()
    group = first.env["SLAMON_APP_ID"]
    other = f"{first.prefix}other."
    env = worker_env(kafka_bootstrap, tmp_path, free_port(), policies,
                     SLAMON_APP_ID=group, SLAMON_TOPIC_PREFIX=other)
    refused = subprocess.run([sys.executable, "-m", "agents.cli", "worker"], cwd=REPO_ROOT,
                             env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "refusing to start" in refused.stderr
    assert f"consumer group {group} (the setting app_id) has members reading topics of " \
           f"another deployment: " in refused.stderr
    assert f"{first.prefix}events" in refused.stderr and "Traceback" not in refused.stderr
    # Left to its default, the app id follows the prefix: no shared group, no refusal.
    env.pop("SLAMON_APP_ID")
    second = Worker(env, tmp_path / "second.log")
    workers.append(second)
    second.start()
    assert os.path.exists(tmp_path / "second.log")
