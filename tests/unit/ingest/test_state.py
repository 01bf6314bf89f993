"""The last-known-state model: phase transitions, redeliveries (a vendor retry makes
nothing; a crash replay from the same offset sends the same events), order, finality."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agents.ingest.mapping import PHASES
from agents.ingest.observation import DeliveryMeta
from agents.ingest.sources import read_sources
from agents.ingest.state import TicketMemory, phase_events
from agents.ingest.translate import memory_key, translate_delivery
from agents.yamlfile import parse_yaml
from sla.errors import ProblemsError

SOURCES = """\
sources:
  desk:
    type: generic
    secret: {env: X}
    fields: {ticket_id: id, ts: at, status: status, priority: priority, created_at: created,
             staff_reply: staff, survey_score: score}
    statuses: {open: [open], pause: [waiting], resolve: [solved], close: [closed],
               cancel: [spam]}
    priorities: {high: P2, urgent: P1}
    service: payments
    customer: acme
"""
SOURCE = read_sources(parse_yaml(SOURCES, "sources.yaml", ProblemsError), {"X": "x"})["desk"]


def _send(memories: dict[bytes, bytes], delivery: str, offset: int | None = None,
          **body: Any) -> list[dict[str, Any]]:
    body = {"id": "T1", "priority": "high"} | body
    result = translate_delivery(SOURCE, DeliveryMeta("desk", delivery, 0),
                                orjson.dumps(body), memories, offset)
    assert result.reason is None, result.message
    return result.events


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


@pytest.mark.parametrize(("old", "new", "types"), [
    ("open", "pause", ("paused",)), ("pause", "open", ("resumed",)),
    ("open", "resolve", ("resolved",)), ("pause", "resolve", ("resolved",)),
    ("resolve", "open", ("reopened",)), ("resolve", "pause", ("reopened", "paused")),
    ("resolve", "close", ("closed",)), ("open", "close", ("closed",)),
    ("open", "cancel", ("cancelled",)), ("cancel", "close", ("closed",)),
    ("cancel", "open", ()), ("close", "open", ()), ("close", "cancel", ()),
])
def test_phase_transitions(old: str, new: str, types: tuple[str, ...]) -> None:
    assert phase_events(old, new) == types  # type: ignore[arg-type]


def test_every_phase_pair_is_decided() -> None:
    for old in PHASES:
        for new in PHASES:
            events = phase_events(old, new)
            assert old != new or events == ()


def test_a_first_sight_mid_life_opens_at_the_creation_time() -> None:
    memories: dict[bytes, bytes] = {}
    events = _send(memories, "d1", at="2026-03-02T10:00:00Z", created="2026-03-02T09:00:00Z",
                   status="waiting", priority="urgent")
    assert [(e["type"], e["ts"]) for e in events] == [
        ("opened", "2026-03-02T09:00:00Z"), ("paused", "2026-03-02T10:00:00Z")]
    assert events[0]["priority"] == "P1" and events[0]["service"] == "payments"
    assert events[0]["event_id"] == "desk:d1:opened"


def test_a_vendor_retry_makes_nothing_and_a_crash_replay_resends_the_same_events() -> None:
    memories: dict[bytes, bytes] = {}
    first = _send(memories, "d1", offset=5, at="2026-03-02T09:00:00Z", status="open")
    assert _types(first) == ["opened"]
    assert _send(memories, "d1", offset=9, at="2026-03-02T09:00:00Z", status="open") == []
    assert _send(memories, "d1", offset=5, at="2026-03-02T09:00:00Z", status="open") == first
    assert _send(memories, "d1", at="2026-03-02T09:00:00Z", status="open") == []


def test_a_status_older_than_the_last_applied_does_not_move_the_ticket_back() -> None:
    memories: dict[bytes, bytes] = {}
    _send(memories, "d1", at="2026-03-02T09:00:00Z", status="open")
    assert _types(_send(memories, "d3", at="2026-03-02T10:00:00Z", status="waiting")) \
        == ["paused"]
    assert _send(memories, "d2", at="2026-03-02T09:30:00Z", status="open") == []
    memory = TicketMemory.loads(memories[memory_key("desk", "T1")])
    assert memory.phase == "pause"


def test_responded_once_then_close_is_final_but_a_survey_still_counts() -> None:
    memories: dict[bytes, bytes] = {}
    _send(memories, "d1", at="2026-03-02T09:00:00Z", status="open")
    assert _types(_send(memories, "d2", at="2026-03-02T09:10:00Z", staff=True)) == ["responded"]
    assert _send(memories, "d3", at="2026-03-02T09:11:00Z", staff=True) == []
    assert _types(_send(memories, "d4", at="2026-03-02T09:20:00Z", status="closed")) \
        == ["closed"]
    assert _send(memories, "d5", at="2026-03-02T09:30:00Z", status="open",
                 priority="urgent") == []
    survey = _send(memories, "d6", at="2026-03-02T10:00:00Z", score=4)
    assert survey == [{"event_id": "desk:d6:survey", "ticket_id": "desk-T1", "type": "survey",
                       "ts": "2026-03-02T10:00:00Z", "score": 4.0, "scale_min": 1.0,
                       "scale_max": 5.0, "service": "payments", "customer": "acme",
                       "attributes": {"source": "desk", "vendor_id": "T1"}}]


def test_an_untranslatable_observation_leaves_the_state_as_it_was() -> None:
    memories: dict[bytes, bytes] = {}
    _send(memories, "d1", at="2026-03-02T09:00:00Z", status="open")
    before = dict(memories)
    result = translate_delivery(SOURCE, DeliveryMeta("desk", "d2", 0), orjson.dumps(
        {"id": "T1", "at": "2026-03-02T09:05:00Z", "status": "limbo"}), memories)
    assert (result.reason, result.events) == ("unknown_status", [])
    assert result.message == "status 'limbo' is not in the source's statuses mapping"
    assert memories == before


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"at": "2026-03-02T09:00:00Z"}', "no_ticket"),
    (b'{"id": "T1"}', "no_timestamp"),
    (b'{"id": "T1", "at": "2026-03-02T09:00:00Z", "priority": "meh"}', "unknown_priority"),
    (b'{"id": "T1", "at": "2026-03-02T09:00:00Z"}', "no_priority"),
])
def test_untranslatable_payloads_have_a_reason(body: bytes, reason: str) -> None:
    result = translate_delivery(SOURCE, DeliveryMeta("desk", "d", 0), body, {})
    assert (result.reason, result.events) == (reason, [])
