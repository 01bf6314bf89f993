"""Each desk's recorded-shape ticket life: payloads -> `slamon translate` -> the golden
events -> `slamon replay` -> the golden records, and the outcomes the life must have.

A change shows as a line diff; when intended, regenerate with
`.venv/bin/python -m tests.golden.ingest.regenerate` and review `git diff tests/golden/ingest`.
"""

from __future__ import annotations

import difflib

import orjson
import pytest

from tests.golden.ingest.cases import DESKS, Case, replay_events, translate_case

REGENERATE = ".venv/bin/python -m tests.golden.ingest.regenerate"
LIFE = ["opened", "responded", "paused", "resumed", "priority_changed", "resolved", "reopened",
        "resolved", "closed"]
WITH_SURVEY = {"zendesk", "jira", "generic"}
# the payload each case includes on purpose that cannot be translated
UNTRANSLATABLE = {"zendesk": "unknown_priority", "servicenow": "unknown_status",
                  "freshservice": "no_timestamp", "zammad": "unknown_status",
                  "generic": "unknown_status"}


def _diff(expected: bytes, actual: bytes, name: str) -> str:
    lines = difflib.unified_diff(expected.decode().splitlines(), actual.decode().splitlines(),
                                 f"{name} (golden)", f"{name} (now)", lineterm="", n=1)
    return "\n".join(list(lines)[:60]) + f"\nif intended: {REGENERATE}"


@pytest.mark.parametrize("desk", DESKS)
def test_payloads_translate_to_the_golden_events(desk: str) -> None:
    case = Case(desk)
    events, stderr = translate_case(case)
    assert events == case.events.read_bytes(), _diff(case.events.read_bytes(), events,
                                                     str(case.events))
    types = [orjson.loads(line)["type"] for line in events.splitlines()]
    assert types == LIFE + (["survey"] if desk in WITH_SURVEY else [])
    reason = UNTRANSLATABLE.get(desk)
    assert (f": {reason}: " in stderr) if reason else ("untranslatable" not in stderr), stderr


@pytest.mark.parametrize("desk", DESKS)
def test_the_golden_events_replay_to_the_life_s_outcomes(desk: str) -> None:
    case = Case(desk)
    records = replay_events(case.events.read_bytes())
    assert records == case.expected.read_bytes(), _diff(case.expected.read_bytes(), records,
                                                        str(case.expected))
    parsed = [orjson.loads(line) for line in records.splitlines()]
    assert not [r for r in parsed if r["kind"] == "rejected"]
    breaches = [r for r in parsed if r["kind"] == "breach"]
    assert [(b["metric"], b["deadline"], b["priority"]) for b in breaches] == [
        ("resolution", "2026-03-02T14:05:00Z", "P1")]
    outcomes = [(r["metric"], r["status"], r["elapsed_seconds"], r["revision"])
                for r in parsed if r["kind"] == "outcome"]
    assert outcomes == [("response", "met", 1200.0, 0), ("resolution", "met", 6900.0, 0),
                        ("resolution", "breached", 8700.0, 1)]
    days = [r for r in parsed if r["kind"] == "compliance" and r["window"] == "day"]
    assert {(d["window_start"][:10], d["metric"], d["priority"], d["met"], d["breached"])
            for d in days if d["total"]} == {("2026-03-02", "response", "P2", 1, 0),
                                             ("2026-03-02", "resolution", "P1", 0, 1)}
    surveyed = 1 if desk in WITH_SURVEY else 0  # each rating is a positive one
    assert [(d.get("surveys", 0), d.get("positive", 0)) for d in days
            if d["metric"] == "resolution" and d["window_start"].startswith("2026-03-03")] \
        == ([(1, 1)] if surveyed else [])
