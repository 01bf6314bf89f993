"""Fuzzing the translators: any JSON body, and the golden payloads with any part replaced by
any JSON, gives events that pass the event schema or a dead-letter reason; never an
exception, never `internal_error`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.ingest.observation import INGEST_REASONS, DeliveryMeta
from agents.ingest.sources import Source, load_sources
from agents.ingest.translate import translate_delivery
from sla.events import parse_event

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "ingest"
DESKS = sorted(p.name for p in GOLDEN.iterdir() if (p / "payloads.jsonl").is_file())
SOURCES: dict[str, Source] = {
    desk: load_sources(GOLDEN / desk / "sources.yaml", {}, read_secrets=False)[desk]
    for desk in DESKS}
BODIES: dict[str, list[Any]] = {
    desk: [(line.get("body") if isinstance(line, dict) and "body" in line else line)
           for line in map(orjson.loads, (GOLDEN / desk / "payloads.jsonl").read_bytes()
                           .splitlines())]
    for desk in DESKS}
KNOWN_TYPES = {"opened", "responded", "paused", "resumed", "resolved", "reopened", "closed",
               "cancelled", "priority_changed", "survey", "customer_replied", "agent_replied"}
REASONS = set(INGEST_REASONS) - {"internal_error", "unknown_source"}

scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**63)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=12)
           | st.sampled_from(["", "open", "OPEN", "closed", "P1", "2026-03-02T09:00:00Z",
                              "2026-03-02 09:00:00", "1", "3", "zen:ticket:1", "Agent",
                              "MEMBER", "good", "Issue"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                           max_leaves=20)


def _check(desk: str, bodies: list[Any]) -> None:
    memories: dict[bytes, bytes] = {}
    for index, body in enumerate(bodies):
        meta = DeliveryMeta(desk, f"d{index}", 1_772_442_000_000, None)
        result = translate_delivery(SOURCES[desk], meta, orjson.dumps(body), memories, index)
        assert result.reason is None or result.reason in REASONS, (result.reason, result.message)
        for event in result.events:
            parse_event(orjson.loads(orjson.dumps(event)), KNOWN_TYPES)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desk=st.sampled_from(DESKS), bodies=st.lists(json_values, min_size=1, max_size=4))
def test_any_json_is_events_or_a_reason(desk: str, bodies: list[Any]) -> None:
    _check(desk, bodies)


def _replace(tree: Any, data: st.DataObject, value: Any) -> Any:
    """`tree` with one node (chosen by `data`) replaced by `value`."""
    if not isinstance(tree, dict | list) or not tree or data.draw(st.integers(0, 3)) == 0:
        return value
    copied = copy.copy(tree)
    key = data.draw(st.sampled_from(sorted(copied) if isinstance(copied, dict)
                                    else range(len(copied))))
    copied[key] = _replace(copied[key], data, value)
    return copied


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desk=st.sampled_from(DESKS), data=st.data())
def test_golden_payloads_with_any_part_replaced_are_events_or_a_reason(
        desk: str, data: st.DataObject) -> None:
    bodies = list(BODIES[desk])
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(bodies) - 1))
        bodies[index] = _replace(bodies[index], data, data.draw(json_values))
    _check(desk, bodies)
