"""Events stamped too far ahead are rejected as `future_ts` (issue 9, defect 10): by the
worker against its wall clock plus max_future, by replay against --as-of plus it, never
against nothing. A rejected event must not move the event-time watermark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from agents.processor import ClockProcessor
from sla.engine import Engine
from sla.errors import InvalidEvent
from sla.events import parse_event
from sla.replay import Replay
from streams.outputs import read_dead_letter
from streams.topics import TopicCatalogue
from tests.unit.enginekit import StubPolicies, ev, ms

ROOT = Path(__file__).resolve().parents[2]
KNOWN = frozenset({"opened", "responded", "closed"})
FIVE_MINUTES = 300_000


def test_parse_event_refuses_a_time_after_not_after() -> None:
    event = ev("responded", "00:10")
    assert parse_event(event, KNOWN, not_after=ms("00:10")).ts == ms("00:10")
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event, KNOWN, not_after=ms("00:10") - 1)
    assert caught.value.code == "future_ts"
    assert str(caught.value) == (
        "ts: '2026-12-01T00:10:00Z' is later than 2026-12-01T00:09:59.999Z, the latest time "
        "accepted now (setting max_future)")
    assert parse_event(ev("responded", "2199-01-01T00:00:00Z"), KNOWN).ts  # no clock: no check


class FixedClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _processor(max_future_ms: int | None) -> ClockProcessor:
    return ClockProcessor(Engine(StubPolicies()), {}, TopicCatalogue("sla.", 4),
                          clock=FixedClock(ms("00:00")), max_future_ms=max_future_ms)


def _send(processor: ClockProcessor, event: dict) -> list:
    return processor.handle_event(0, event["ticket_id"].encode(), orjson.dumps(event), 3)


def test_the_worker_dead_letters_an_event_from_decades_ahead_and_keeps_its_watermark() -> None:
    processor = _processor(FIVE_MINUTES)
    _send(processor, ev("opened", "00:00"))
    assert processor.watermarks[0] == ms("00:00")
    [dead] = _send(processor, ev("responded", "2056-12-01T00:00:00Z"))
    assert dead.topic == "sla.events.dlq"
    headers = read_dead_letter(dead.headers)
    assert headers is not None and headers["reason"] == "future_ts"
    assert processor.watermarks[0] == ms("00:00")  # compliance windows stay open
    assert _send(processor, ev("responded", "00:05")) != [dead]  # within max_future: taken
    assert processor.watermarks[0] == ms("00:05")


def test_a_worker_without_the_setting_takes_any_time() -> None:
    processor = _processor(None)
    _send(processor, ev("opened", "00:00"))
    outputs = _send(processor, ev("responded", "2056-12-01T00:00:00Z"))
    assert all(o.topic != "sla.events.dlq" for o in outputs)


def test_replay_checks_against_as_of_plus_max_future() -> None:
    replay = Replay(Engine(StubPolicies()), not_after=ms("00:00") + FIVE_MINUTES)
    replay.feed(ev("opened", "00:00"), 1)
    [rejected] = replay.feed(ev("responded", "00:06"), 2)
    assert (rejected["kind"], rejected["reason"], rejected["line"]) == (
        "rejected", "future_ts", 2)
    assert replay.watermark == ms("00:00")
    unbounded = Replay(Engine(StubPolicies()))
    unbounded.feed(ev("opened", "00:00"), 1)
    assert [r["kind"] for r in unbounded.feed(ev("responded", "00:06"), 2)] == ["outcome"]


def _cli_replay(tmp_path: Path, *options: str) -> list[dict]:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in [
        ev("opened", "00:00"), ev("responded", "00:04"),
        ev("opened", "2056-12-01T00:00:00Z", ticket="T2")]) + b"\n")
    policies = tmp_path / "policies.yaml"
    policies.write_text("version: 1\ncorporate:\n  targets:\n    P1: {response: 15m}\n")
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "replay", "--policies", str(policies),
         "--events", str(events), *options],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [r for r in map(orjson.loads, done.stdout.splitlines()) if r["kind"] == "rejected"]


def test_slamon_replay_rejects_the_future_of_as_of_only(tmp_path: Path) -> None:
    as_of = ["--as-of", "2026-12-01T00:10:00Z"]
    assert [(r["line"], r["reason"]) for r in _cli_replay(tmp_path, *as_of)] == [(3, "future_ts")]
    assert _cli_replay(tmp_path, *as_of, "--max-future", "1000000000") == []
    assert _cli_replay(tmp_path) == []  # no --as-of, no clock: nothing is in the future
