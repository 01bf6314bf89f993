"""A policy file that is not UTF-8 (issue 9, defect 6): the running worker keeps its last
good policies and says why; `slamon worker` and `slamon replay` stop with a message, never
a traceback. No broker: the worker reads its policies before it asks Kafka anything."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.policyfile import PolicyWatcher, load_policies
from sla.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
version: {version}
corporate:
  calendar: 24x7
  targets: {{P1: {{response: 15m, resolution: 4h}}}}
"""
# Latin-1 bytes where UTF-8 is expected: "é" in a comment, as a Windows editor saves it.
NOT_UTF8 = b"# r\xe9vision 2\nversion: 2\ncorporate:\n  targets: {P1: {response: 5m}}\n"


def _write(path: Path, data: bytes, mtime: int) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def test_a_reload_of_a_non_utf8_file_keeps_the_last_good_policies(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "policies.yaml"
    _write(path, GOOD.format(version=1).encode(), 1_000)
    engine = Engine(load_policies(path))
    loaded: list[int] = []
    watcher = PolicyWatcher(path, engine, on_loaded=lambda p, text: loaded.append(p.version))
    _write(path, NOT_UTF8, 2_000)
    with caplog.at_level(logging.ERROR):
        assert watcher.check() is False  # the file watch: no exception escapes
        assert watcher.reload() is False  # SIGHUP
    assert engine.policies.version == 1 and loaded == [] and watcher.failures == 2
    assert "policy reload refused, keeping version 1" in caplog.text
    assert "UTF-8" in caplog.text and str(path) in caplog.text
    _write(path, GOOD.format(version=3).encode(), 3_000)
    assert watcher.check() is True and engine.policies.version == 3  # and it recovers


def _run(tmp_path: Path, *command: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"SLAMON_STORE": "memory://", "SLAMON_DATA_DIR": str(tmp_path / "data"),
                        "SLAMON_BROKER": "kafka://127.0.0.1:9", **environ}
    return subprocess.run([sys.executable, "-m", "agents.cli", *command], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)


def test_slamon_worker_refuses_a_non_utf8_policy_file_without_a_traceback(
        tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_bytes(NOT_UTF8)
    done = _run(tmp_path, "worker", SLAMON_POLICIES=str(policies))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"slamon worker: invalid policies in {policies}:\n  {policies}")
    assert "UTF-8" in done.stderr


def test_slamon_replay_refuses_a_non_utf8_policy_file_without_a_traceback(
        tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_bytes(NOT_UTF8)
    events = tmp_path / "events.jsonl"
    events.write_text("")
    done = _run(tmp_path, "replay", "--policies", str(policies), "--events", str(events))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(str(policies)) and "UTF-8" in done.stderr
    assert done.stdout == ""
