"""`slamon demo` against the session's broker: breaches printed as they fire, the URLs it
prints answer, and it stops what it started, after `--duration` or on SIGINT."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^\[\d\d:\d\d\] events (\d+) · breaches (\d+) · warnings (\d+) · "
                     r"met (\d+) · breached (\d+) · windows (\d+)$")


def _command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "agents.cli", "demo", "--web-port", str(port), *extra]


def _env(bootstrap: str) -> dict[str, str]:
    return os.environ | {"SLAMON_BROKER": f"kafka://{bootstrap.split(',')[0]}"}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _printed(out: str, pattern: str) -> str:
    """The first group of `pattern` on a line of the demo's output."""
    found = re.search(pattern, out, re.MULTILINE)
    assert found, out
    return found.group(1)


def _worker_pid(out: str) -> int:
    return int(_printed(out, r"^worker   pid (\d+)"))


def test_the_demo_prints_breaches_and_exits_cleanly(kafka_bootstrap: str,
                                                    free_port: Callable[[], int]) -> None:
    result = subprocess.run(_command(free_port(), "--duration", "40"), cwd=REPO_ROOT,
                            env=_env(kafka_bootstrap), capture_output=True, text=True,
                            timeout=300)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "(already running)" in out and "stopped  broker" not in out  # the session's broker
    breaches = [line for line in out.splitlines() if "  BREACH  " in line]
    assert breaches, out
    assert re.search(r"target \d+s passed, detected \+\d\.\d\ds$", breaches[0]), breaches[0]
    assert any("  warning  " in line for line in out.splitlines()), out
    summaries = [SUMMARY.match(line) for line in out.splitlines()]
    final = [m for m in summaries if m][-1]
    events, breached = int(final.group(1)), int(final.group(2))
    assert events > 20 and breached == len(breaches), out
    pid = _worker_pid(out)
    assert f"stopped  worker (pid {pid}, exit 0)" in out, out
    assert _gone(pid)


def test_ctrl_c_stops_everything_the_demo_started(kafka_bootstrap: str,
                                                  free_port: Callable[[], int]) -> None:
    process = subprocess.Popen(_command(free_port()), cwd=REPO_ROOT, env=_env(kafka_bootstrap),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    stdout = process.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any("  BREACH  " in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        out = "".join(lines)
        # The addresses it printed answer: /metrics, and the portal with the demo token.
        metrics, portal = _printed(out, r"^metrics  (\S+)"), _printed(out, r"^portal   (\S+)")
        with urllib.request.urlopen(metrics, timeout=5) as response:
            assert "slamon_clock_breaches_total{" in response.read().decode()
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with browser.open(portal, timeout=5) as response:
            assert response.status == 200 and response.url.endswith("/portal/acme")
            assert "Service levels for acme" in response.read().decode()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=10)
    out = "".join(lines)
    assert "SIGINT: stopping what the demo started" in out, out
    pid = _worker_pid(out)
    assert f"stopped  worker (pid {pid}, exit 0)" in out, out
    assert _gone(pid)


def test_without_a_broker_the_demo_starts_one_and_stops_it(free_port: Callable[[], int]) -> None:
    port = free_port()
    env = os.environ | {"SLAMON_BROKER": f"kafka://127.0.0.1:{port}"}
    result = subprocess.run(_command(free_port(), "--duration", "15"), cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=400)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"starting a local one on 127.0.0.1:{port}" in out, out
    assert any("  BREACH  " in line for line in out.splitlines()), out
    broker_pid = int(_printed(out, rf"^stopped  broker on 127\.0\.0\.1:{port} \(pid (\d+)\)"))
    assert _gone(broker_pid) and _gone(_worker_pid(out))
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there any more
