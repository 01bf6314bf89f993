"""The chaos traffic's model of its policy's clocks (`due_ages`) against the real engine.

The chaos tests keep each follow-up event SAFE_BEFORE_DUE away from the ticket's due
instants, so that a warning replay does not produce was fired while the event that prevents
it was already on the topic. That holds only if `due_ages` knows when the clocks are due
after what was really sent: a reopening sent late moves the resolution clock's warning and
deadline (a CI run judged a correct warning and its retraction false when it did not).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.policyfile import load_policies
from sla.engine import Engine
from sla.events import parse_ts
from sla.replay import Replay
from tests.integration.chaostraffic import SCRIPTS, _event, _too_close, due_ages, policy_text

OPENED = parse_ts("2026-11-30T10:00:00Z")


def engine_dues(policy: Path, events: list[tuple[float, str]]) -> list[float]:
    """Seconds after opening of every warning and breach replay fires after `events`
    when nothing follows them."""
    replay = Replay(Engine(load_policies(policy)))
    for line, (age, kind) in enumerate(events, 1):
        replay.feed(_event("t", line, kind, OPENED + round(age * 1000)), line)
    records = replay.finish(OPENED + 60_000)
    instants = [r["at"] if r["kind"] == "warning" else r["breached_at"]
                for r in records if r["kind"] in ("warning", "breach")]
    return sorted((parse_ts(instant) - OPENED) / 1000 for instant in instants)


def prefixes(script: str, late: dict[int, float]) -> list[list[tuple[float, str]]]:
    """The script's events up to each follow-up; step i sent `late[i]` s after its time,
    and a step never before the one it follows (the traffic sends them in order)."""
    events = [(0.0, "opened")]
    shown = [list(events)]
    for step, (age, kind) in enumerate(SCRIPTS[script]):
        events.append((max(age + late.get(step, 0.0), events[-1][0] + 0.05), kind))
        shown.append(list(events))
    return shown


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "policies.yaml"
    path.write_text(policy_text())
    return path


@pytest.mark.parametrize("late", [{}, {2: 0.8}, {0: 0.3, 1: 1.1}], ids=["on-time", "late-reopen",
                                                                        "late-first"])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_due_ages_are_the_engines_future_dues(policy: Path, script: str,
                                              late: dict[int, float]) -> None:
    for events in prefixes(script, late):
        last = events[-1][0]
        modelled = sorted(due for due in due_ages(events) if due > last)
        fired = [due for due in engine_dues(policy, events) if due > last]
        assert modelled == pytest.approx(fired), (script, events)


def test_a_late_reopening_moves_the_dues_a_follow_up_keeps_away_from() -> None:
    """The CI case: reopened 0.8 s late, the warning falls 0.1 s after the second resolve."""
    events = [(0.0, "opened"), (0.7, "responded"), (2.2, "resolved"), (3.3, "reopened")]
    assert 5.1 in [round(due, 3) for due in due_ages(events)]
    assert _too_close(5.0, due_ages(events)) == pytest.approx(0.4)
    assert _too_close(5.0, due_ages(events[:3])) == 0.0  # the resolution clock stopped


def test_the_scripts_on_time_keep_away_from_their_own_dues() -> None:
    for script, steps in SCRIPTS.items():
        events = [(0.0, "opened")]
        for age, kind in steps:
            assert _too_close(age, due_ages(events)) == 0.0, (script, age, kind)
            events.append((age, kind))

