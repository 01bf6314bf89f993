"""`slamon kafka start|status|stop` on a real JVM: starts, reports, refuses a second start, stops.

This test runs its own broker (free ports, a temporary state dir), apart from the session's.
It needs Java 17 and the jars (or Maven); without them it fails, like every integration test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.devkit import localkafka

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka_cli(
    tmp_path: Path, free_port: Callable[[], int]
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Runs `slamon kafka ACTION` for one broker of its own; stops it after the test."""
    port, controller = free_port(), free_port()
    options = ["--port", str(port), "--controller-port", str(controller), "--dir", str(tmp_path)]

    def kafka(action: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "agents.cli", "kafka", action, *options]
        return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)

    yield kafka
    localkafka.stop(localkafka.BrokerConfig(port=port, controller_port=controller, home=tmp_path))


def test_start_status_second_start_stop(
    kafka_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    before = kafka_cli("status")
    assert before.returncode == 3 and before.stdout.startswith("not running"), before

    started = kafka_cli("start")
    assert started.returncode == 0, started.stderr
    assert "started in" in started.stdout

    running = kafka_cli("status")
    assert running.returncode == 0 and running.stdout.startswith("running: pid "), running
    pid = int(running.stdout.split()[2])

    again = kafka_cli("start")
    assert again.returncode == 1
    assert f"already running: pid {pid}" in again.stderr

    stopped = kafka_cli("stop")
    assert stopped.returncode == 0 and f"(pid {pid})" in stopped.stdout, stopped
    assert not Path(f"/proc/{pid}").exists() or b"kafka.Kafka" not in _cmdline(pid)

    after = kafka_cli("status")
    assert after.returncode == 3, after


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
