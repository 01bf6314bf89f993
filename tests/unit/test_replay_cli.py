"""`slamon replay` through the real command line: JSON lines out, rejected lines, --as-of."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from agents.cli import main
from agents.devkit.traffic import ticket_events
from sla.events import parse_ts

ROOT = Path(__file__).resolve().parents[2]

POLICY = """\
version: 2
corporate:
  calendar: 24x7
  warn_at: []
  targets:
    P1: {response: 15m, resolution: 4h}
"""


def run(tmp_path, capsysbinary, lines: list[bytes], *extra: str) -> tuple[int, list[dict], str]:
    policies = tmp_path / "p.yaml"
    policies.write_text(POLICY)
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    status = main(["replay", "--policies", str(policies), "--events", str(events), *extra])
    captured = capsysbinary.readouterr()
    return status, [orjson.loads(x) for x in captured.out.splitlines()], captured.err.decode()


OPENED = orjson.dumps({"event_id": "e1", "ticket_id": "T1", "type": "opened",
                       "ts": "2026-12-01T09:00:00Z", "service": "s", "customer": "c",
                       "priority": "P1"})


def test_bad_lines_become_rejected_records_and_the_replay_goes_on(tmp_path, capsysbinary):
    status, records, err = run(tmp_path, capsysbinary, [
        OPENED, b"{oops", b"", b'{"event_id": "e2", "ticket_id": "T1", "type": "responded"}',
        orjson.dumps({"event_id": "e3", "ticket_id": "T1", "type": "responded",
                      "ts": "2026-12-01T09:05:00Z"})])
    assert status == 0
    rejected = [(r["line"], r["reason"]) for r in records if r["kind"] == "rejected"]
    assert rejected == [(2, "not_json"), (4, "missing_field")]
    assert [r["kind"] for r in records if r["kind"] != "rejected"] == ["outcome"]
    assert "3 events" not in err and "rejected" in err


def test_as_of_fires_deadlines_at_the_end_of_input(tmp_path, capsysbinary):
    _, records, _ = run(tmp_path, capsysbinary, [OPENED], "--as-of", "2026-12-01T09:15:00Z")
    assert [(r["kind"], r["deadline"]) for r in records] == [
        ("breach", "2026-12-01T09:15:00Z")]
    _, records, _ = run(tmp_path, capsysbinary, [OPENED], "--as-of", "2026-12-01T09:14:59Z")
    assert records == []


def test_an_invalid_policy_file_stops_the_replay_with_its_problems(tmp_path, capsysbinary):
    policies = tmp_path / "bad.yaml"
    policies.write_text("version: 1\ncorporate:\n  targets: {P1: {response: 2x}}\n")
    events = tmp_path / "e.jsonl"
    events.write_bytes(OPENED)
    status = main(["replay", "--policies", str(policies), "--events", str(events)])
    err = capsysbinary.readouterr().err.decode()
    assert status == 2 and "bad.yaml:3" in err and "'2x'" in err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_reader_that_stops_reading_ends_the_replay_quietly(tmp_path, jobs):
    """`slamon replay ... | head`: the replay stops with the shell's status for a tool its
    pipe stopped (128 + SIGPIPE), no traceback, and no shard process left behind."""
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in ticket_events(
        3_000, parse_ts("2026-12-01T09:00:00Z"), tickets_per_hour=2_000)))
    replay = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "replay", "--policies",
         str(ROOT / "config" / "policies.yaml"), "--events", str(events), "--jobs", jobs],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert replay.stdout is not None and replay.stderr is not None
    assert orjson.loads(replay.stdout.readline())["kind"]
    replay.stdout.close()
    assert replay.wait(timeout=60) == 141
    assert b"Traceback" not in replay.stderr.read()
    left = subprocess.run(["pgrep", "-s", str(replay.pid)], capture_output=True, check=False)
    assert left.stdout == b""


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_a_replay_in_jobs_midway(tmp_path):
    """Ctrl-C (SIGINT to the reader) midway: it ends with 130, shards included, without a
    traceback. (Whether the shards were blocked sending answers the reader no longer reads,
    with its sender threads blocked feeding them, which hung before, is up to timing: by
    hand, 4 of 6 interrupts hung before the fix and none of 6 after.)"""
    written = 4
    events, output = tmp_path / "e.jsonl", tmp_path / "records.jsonl"
    events.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in ticket_events(
        100_000, parse_ts("2026-10-19T00:00:00Z"), tickets_per_hour=300)))
    replay = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "replay", "--policies",
         str(ROOT / "config" / "policies.yaml"), "--events", str(events), "--jobs", "2",
         "--output", str(output)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        # As from a terminal: a test run started in the background (`cmd &` in a script)
        # ignores SIGINT, its children inherit that, and Python then leaves it ignored.
        preexec_fn=_sigint_default)
    assert replay.stderr is not None
    try:
        while not output.exists() or output.stat().st_size < written << 20:
            assert replay.poll() is None, "the replay ended before it was interrupted"
            time.sleep(0.01)
        at_signal = output.stat().st_size
        replay.send_signal(signal.SIGINT)
        code = replay.wait(timeout=30)
        said = replay.stderr.read()
        # Whether it ignored the signal or had ended before it: how far it wrote, what it said.
        assert code == 130, (f"exit {code}; output {at_signal:,} bytes at the signal, "
                             f"{output.stat().st_size:,} at the end; stderr: {said[-2000:]!r}")
    finally:
        subprocess.run(["pkill", "-KILL", "-s", str(replay.pid)], check=False)
    assert b"Traceback" not in said
