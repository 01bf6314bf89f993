"""`slamon replay --jobs N`: the tickets split over shards, the output byte for byte that of one
replay, whatever the number of shards and wherever the batches of lines end."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import random
import resource
import signal
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.cli import main
from agents.cli.replay import _replay_stream
from agents.devkit.traffic import ticket_events
from agents.policyfile import load_policies
from agents.replayjobs import LocalShard, ShardedReplay
from agents.replayprocs import ShardFailed, process_shards
from sla.engine import Engine
from sla.events import format_ts, parse_ts
from sla.replay import Replay
from tests.golden.cases import ROOT, Case, all_cases

POLICIES = load_policies(ROOT / "config" / "policies.yaml")
START = parse_ts("2026-10-24T10:00:00Z", "start")  # a Saturday
HOUR = 3_600_000


def traffic(count: int, seed: int) -> list[bytes]:
    """Ticket lifecycles over config/policies.yaml with what a real file has besides: events
    delivered late, redelivered, broken lines and blank lines. And tickets opened over the
    weekend under acme's office hours that nobody answers: their clocks all start when the
    office opens, so their warnings and breaches fall due together, on many shards."""
    rng = random.Random(seed)
    weekend = [{"event_id": f"w{n}", "ticket_id": f"W{n}", "type": "opened",
                "ts": format_ts(START + n * HOUR // 8), "service": "email", "customer": "acme",
                "priority": rng.choice(["P2", "P3"])} for n in range(40)]
    stream = sorted([*ticket_events(count, START, tickets_per_hour=12, seed=seed,
                                    minute_ms=20_000), *weekend],
                    key=lambda event: parse_ts(event["ts"], "ts"))
    events = [orjson.dumps(event) for event in stream]
    for i in range(len(events) - 1, 0, -1):
        if rng.random() < 0.05:  # late: moved after up to 30 later events
            late = events.pop(i - 1)
            events.insert(min(len(events), i - 1 + rng.randint(1, 30)), late)
    lines: list[bytes] = []
    for event in events:
        lines.append(event)
        roll = rng.random()
        if roll < 0.01:
            lines.append(event)  # a redelivery
        elif roll < 0.015:
            lines.append(b'{"event_id": "x", "ticket_id": "T1", "type": "opened"')
        elif roll < 0.02:
            lines.append(b"\n")
    return [line if line.endswith(b"\n") else line + b"\n" for line in lines]


def one_replay(lines: list[bytes], as_of: int | None) -> bytes:
    sink = io.BytesIO()
    _replay_stream(Replay(Engine(POLICIES)), io.BytesIO(b"".join(lines)), sink, as_of)
    return sink.getvalue()


def sharded(lines: list[bytes], as_of: int | None, shards: int, batch_lines: int) -> bytes:
    sink = io.BytesIO()
    local = [LocalShard(Engine(POLICIES), None) for _ in range(shards)]
    ShardedReplay(Engine(POLICIES), local, None, batch_lines).run(lines, sink.write, as_of)
    return sink.getvalue()


@pytest.fixture(scope="module")
def thousands() -> list[bytes]:
    return traffic(6_000, seed=11)


def test_the_traffic_has_what_the_merge_must_order(thousands: list[bytes]) -> None:
    """Deadlines of several tickets due at one instant (opening hours), late events and
    compliance windows: else the equality below would prove little."""
    records = [orjson.loads(line) for line in one_replay(thousands, None).splitlines()]
    breaches = [r["breached_at"] for r in records if r["kind"] == "breach"]
    assert len(breaches) - len(set(breaches)) >= 20
    assert any(r["kind"] == "retraction" for r in records)
    assert {"breach", "warning", "outcome", "compliance", "rejected"} <= {
        r["kind"] for r in records}
    assert any(r["kind"] == "rejected" and r["reason"] == "not_json" for r in records)


@pytest.mark.parametrize(("shards", "batch_lines"), [(1, 1), (2, 4096), (2, 1), (3, 7),
                                                     (5, 500), (8, 64)])
def test_shards_write_what_one_replay_writes(thousands: list[bytes], shards: int,
                                             batch_lines: int) -> None:
    as_of = parse_ts("2026-11-02T00:00:00Z", "as_of")
    assert sharded(thousands, as_of, shards, batch_lines) == one_replay(thousands, as_of)


@settings(max_examples=40, deadline=None)
@given(st.integers(200, 1_500), st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 300),
       st.one_of(st.none(), st.integers(0, 14 * 86_400_000)))
def test_any_split_writes_what_one_replay_writes(count: int, seed: int, shards: int,
                                                 batch_lines: int, as_of_after: int | None
                                                 ) -> None:
    lines = traffic(count, seed)
    as_of = None if as_of_after is None else START + as_of_after
    assert sharded(lines, as_of, shards, batch_lines) == one_replay(lines, as_of)


def test_a_deadline_already_past_fires_on_the_next_line_that_moves_the_watermark() -> None:
    """A late priority change makes A's response overdue at once, before the watermark. One
    replay fires that breach on the next line that moves the watermark (line 6), not on the
    line after the change (line 5, which is late too): the breach comes after C's outcome."""
    def event(line: int, ticket: str, kind: str, hhmm: str, **fields: str) -> bytes:
        return orjson.dumps({"event_id": f"e{line}", "ticket_id": ticket, "type": kind,
                             "ts": f"2026-11-03T{hhmm}:00Z", **fields}) + b"\n"
    opened = {"service": "vpn", "customer": "globex", "priority": "P3"}
    lines = [event(1, "A", "opened", "10:00", **opened),
             event(2, "C", "opened", "10:01", **opened),
             event(3, "B", "opened", "10:30", **opened),
             event(4, "A", "priority_changed", "10:20", priority="P1"),
             event(5, "C", "responded", "10:25"),
             event(6, "B", "responded", "10:40")]
    records = [orjson.loads(line) for line in one_replay(lines, None).splitlines()]
    assert [(r["kind"], r["ticket_id"], r["metric"]) for r in records
            if r["kind"] in ("breach", "outcome")] == [
        ("outcome", "C", "response"), ("breach", "A", "response"), ("outcome", "B", "response")]
    for shards in range(2, 7):
        for batch_lines in (1, 2, 6):
            assert sharded(lines, None, shards, batch_lines) == one_replay(lines, None)


def test_a_shard_keeps_the_watermarks_of_one_batch_not_of_the_whole_input(
        thousands: list[bytes]) -> None:
    local = [LocalShard(Engine(POLICIES), None) for _ in range(3)]
    ShardedReplay(Engine(POLICIES), local, None, 100).run(thousands, io.BytesIO().write, None)
    assert len(thousands) > 5_000
    assert [len(shard.worker.shard._after) <= 101 for shard in local] == [True] * 3


def test_a_shard_is_told_its_watermarks_in_order() -> None:
    local = LocalShard(Engine(POLICIES), None)
    local.submit(("batch", 1, array("q", [START, START]), []))
    with pytest.raises(ValueError, match="watermarks from line 5; expected line 3"):
        local.submit(("batch", 5, array("q", [START]), []))


# -- through the command line, in processes -------------------------------------------------

@pytest.mark.parametrize("case", all_cases(), ids=lambda case: case.name)
def test_each_golden_case_replays_to_its_bytes_in_processes(case: Case, tmp_path: Path) -> None:
    output = tmp_path / "records.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        status = main(["replay", *case.options(), "--events", str(case.events),
                       "--output", str(output), "--jobs", "3"])
    assert status == 0
    assert output.read_bytes() == case.expected.read_bytes()


def test_the_command_line_gives_the_same_bytes_with_jobs(thousands: list[bytes],
                                                         tmp_path: Path, capsys) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(thousands))
    outputs = []
    for jobs in ("1", "2"):
        output = tmp_path / f"records-{jobs}.jsonl"
        assert main(["replay", "--policies", str(ROOT / "config" / "policies.yaml"),
                     "--events", str(events), "--output", str(output), "--jobs", jobs,
                     "--as-of", format_ts(START + 10 * 86_400_000)]) == 0
        outputs.append(output.read_bytes())
    summaries = capsys.readouterr().err.splitlines()
    assert outputs[0] == outputs[1] and len(outputs[0]) > 100_000
    assert summaries[0] == summaries[1] and "6" in summaries[0]


@pytest.mark.parametrize("jobs", ["-1", "two"])
def test_jobs_must_be_a_count(jobs: str, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["replay", "--policies", "p.yaml", "--events", "e.jsonl", "--jobs", jobs])
    assert stopped.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def _broken_engine() -> Engine:
    raise RuntimeError("the policies could not be read here")


@contextlib.contextmanager
def running(make_engine: Callable[[], Engine]) -> Iterator[list]:
    shards = process_shards(2, make_engine, None)
    try:
        yield shards
    finally:
        for shard in shards:
            shard.close()


def test_a_shard_that_fails_says_why() -> None:
    with running(_broken_engine) as shards:
        shards[0].submit(("finish", 0))
        with pytest.raises(ShardFailed, match="(?s)shard 0 failed.*could not be read here"):
            shards[0].answer()


def test_a_shard_killed_is_reported_not_waited_for() -> None:
    with running(functools.partial(Engine, POLICIES)) as shards:
        os.kill(shards[1].pid, signal.SIGKILL)
        with pytest.raises(ShardFailed, match=r"shard 1 stopped: killed by SIGKILL"):
            shards[1].answer()


def test_a_shard_ends_when_the_reader_closes_its_pipe_while_others_run() -> None:
    """Each forked shard closes the reader's ends of the pipes it inherited: else shard 0
    would wait forever on a pipe that shard 1 still holds open."""
    with running(functools.partial(Engine, POLICIES)) as shards:
        shards[0].close_pipe()
        deadline = time.monotonic() + 10
        while shards[0].alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not shards[0].alive
        assert shards[1].alive


def test_every_shard_is_forked_before_any_thread_starts() -> None:
    """A fork copies only the forking thread: a lock held by another (a sender's pickling,
    a queue) would stay held in the child for ever. Python 3.12 warns of it. In a process of
    its own, so that no other test's thread counts."""
    script = (
        "import functools, os, threading\n"
        "from agents.policyfile import load_policies\n"
        "from agents.replayprocs import process_shards\n"
        "from sla.engine import Engine\n"
        "threads = []\n"
        "os.register_at_fork(before=lambda: threads.append(threading.active_count()))\n"
        "make = functools.partial(Engine, load_policies('config/policies.yaml'))\n"
        "shards = process_shards(3, make, None)\n"
        "for shard in shards:\n"
        "    shard.close()\n"
        "print(threads)\n")
    ran = _run_alone(script)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["[1,", "1,", "1]"]


def test_the_reader_and_its_shards_keep_the_memory_a_batch_frees_for_the_next() -> None:
    """Each batch passes megabytes through a pipe. Under glibc's defaults the memory each
    message is read into is mapped afresh and given back after, so every page of it
    faults again: half the pages received, here. Kept, the next message reuses it. In a
    process of its own: the setting is the whole process's."""
    script = (
        "import resource, sys, threading, multiprocessing\n"
        "from agents.replayprocs import keep_freed_heap\n"
        "if not keep_freed_heap():\n"
        "    sys.exit(3)\n"
        "ours, theirs = multiprocessing.Pipe()\n"
        "message = b'x' * (3 << 20)\n"
        "def send():\n"
        "    for _ in range(40):\n"
        "        theirs.send_bytes(message)\n"
        "def receive():\n"
        "    sender = threading.Thread(target=send)\n"
        "    sender.start()\n"
        "    for _ in range(40):\n"
        "        ours.recv_bytes()\n"
        "    sender.join()\n"
        "receive()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "receive()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    ran = _run_alone(script)
    if ran.returncode == 3:
        pytest.skip("no glibc mallopt here")
    assert ran.returncode == 0, ran.stderr
    pages_received = 40 * (3 << 20) // resource.getpagesize()
    assert int(ran.stdout) < pages_received // 20


def _run_alone(script: str) -> subprocess.CompletedProcess:
    """`script` in an interpreter of its own, from the repository's root."""
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=60)
