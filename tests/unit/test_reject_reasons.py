"""One vocabulary of reject codes: what slamon emits is in sla.errors.REASONS, all pre-created."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from agents.metrics import REJECT_REASONS, MonitorMetrics
from sla.errors import REASONS, InvalidEvent
from tests.unit.enginekit import StubPolicies, ev, replay


def test_every_reason_is_a_zero_counter_before_the_first_reject() -> None:
    registry = CollectorRegistry()
    MonitorMetrics(registry, ("response", "resolution"))
    for reason in REASONS:
        assert registry.get_sample_value("slamon_events_rejected_total", {"reason": reason}) == 0
    assert REJECT_REASONS == REASONS


def test_the_engines_rejects_are_in_the_vocabulary() -> None:
    records = replay([
        ev("opened", "00:00"),
        ev("opened", "00:01", eid="again"),  # already_opened
        ev("responded", "23:00", ticket="T1", eid="early",
           ts="2026-11-30T23:00:00Z"),  # before_opened
        ev("opened", "00:02", ticket="T2", priority="P9"),  # no_target
        ev("responded", "00:03", ticket="T3"),  # never_opened, once held past lateness
        ev("closed", "00:04"),
        ev("resolved", "00:05"),  # ticket_closed
    ], StubPolicies(), as_of="01:00")
    reasons = {r["reason"] for r in records if r["kind"] == "rejected"}
    assert reasons == {"already_opened", "before_opened", "no_target", "never_opened",
                       "ticket_closed"}
    assert reasons <= set(REASONS)


def test_invalid_event_carries_code_and_message() -> None:
    error = InvalidEvent("bad_type", "ts: expected an RFC 3339 string")
    assert (error.code, error.message, str(error)) == (
        "bad_type", "ts: expected an RFC 3339 string", "ts: expected an RFC 3339 string")
