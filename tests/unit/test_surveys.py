"""Satisfaction surveys: the event's fields and scale, and which surveys the engine accepts.

Tickets run on the 24x7 calendar with P1 targets of 15m (response) and 4h (resolution);
enginekit's T0 is 2026-12-01T00:00Z. A survey is accepted after its ticket closed, split
by each clock's verdict; for a ticket never seen it counts under the service and customer
it names, else it is rejected.
"""

from __future__ import annotations

import pytest

from sla.engine import Engine
from sla.errors import InvalidEvent
from sla.events import parse_event
from sla.model import DEFAULT_METRICS, MetricDef
from sla.replay import Replay
from sla.ticket import TicketState
from tests.unit.enginekit import StubPolicies, ev, kinds, ms, replay

KNOWN = frozenset({"opened", "responded", "closed", "survey"})


def survey(when: str, ticket: str = "T1", score: float = 5, low: float = 1, high: float = 5,
           eid: str | None = None, **fields) -> dict:
    return ev("survey", when, ticket, eid, score=score, scale_min=low, scale_max=high,
              **fields)


# -- the event ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high", "score", "positive"), [
    (1, 5, 4, True), (1, 5, 3, False),  # five points: the top two are positive
    (0, 10, 9, True), (0, 10, 8, False),  # eleven points: 9 and 10
    (0, 1, 1, True), (0, 1, 0, False),  # a good/bad rating: good
])
def test_the_default_threshold_is_the_top_two_points_or_good(low, high, score, positive):
    event = parse_event(survey("01:00", score=score, low=low, high=high), KNOWN)
    assert event.survey is not None and event.survey.positive is positive
    assert event.survey.score_ratio == (score - low) / (high - low)


def test_an_explicit_threshold_and_a_comment_that_is_not_kept():
    event = parse_event(survey("01:00", score=3, positive=3, comment="slow, but fine"), KNOWN)
    assert event.survey is not None and event.survey.positive is True
    assert "slow" not in repr(event)


@pytest.mark.parametrize(("fields", "code", "message"), [
    ({"score": None}, "missing_field", "score: missing"),
    ({"score": True}, "bad_type", "score: expected a number"),
    ({"scale_max": "5"}, "bad_type", "scale_max: expected a number"),
    ({"score": 6}, "bad_survey", "score: 6 is outside the scale 1..5"),
    ({"scale_min": 5}, "bad_survey", "scale_max (5) must be above scale_min (5)"),
    ({"positive": 0}, "bad_survey", "positive: 0 is outside the scale 1..5"),
    ({"comment": 7}, "bad_type", "comment: expected a string"),
])
def test_a_bad_survey_is_refused_with_its_reason(fields, code, message):
    event = survey("01:00")
    event.update(fields)
    if fields.get("score", 0) is None:
        del event["score"]
    with pytest.raises(InvalidEvent) as refused:
        parse_event(event, KNOWN)
    assert refused.value.code == code and message in refused.value.message


# -- which surveys count -----------------------------------------------------------------------


def lifecycle(*more: dict) -> list[dict]:
    """T1 opened 00:00, responded 00:20 (response breached at 00:15), closed 01:00 (met)."""
    return [ev("opened", "00:00"), ev("responded", "00:20"), ev("closed", "01:00"), *more]


def test_a_survey_after_the_close_carries_each_clocks_verdict():
    records = replay(lifecycle(survey("01:00:30", score=2)))
    [record] = kinds(records, "survey")
    assert record == {
        "id": "T1:T1-survey-01:00:30:survey", "kind": "survey", "ticket_id": "T1",
        "event_id": "T1-survey-01:00:30", "service": "email", "customer": "acme",
        "priority": "P1", "at": "2026-12-01T01:00:30Z", "score": 2.0, "scale_min": 1.0,
        "scale_max": 5.0, "positive": False, "score_ratio": 0.25, "ticket_seen": True,
        "clocks": {"response": "breached", "resolution": "met"}}


def test_a_tombstone_remembers_its_verdicts_for_a_survey_days_later():
    records = replay(lifecycle(ev("opened", "12:00", "T2"), survey("2026-12-04T09:00:00Z")))
    [record] = kinds(records, "survey")
    assert record["clocks"] == {"response": "breached", "resolution": "met"}
    assert record["ticket_seen"] is True and record["priority"] == "P1"


def test_a_survey_before_the_close_is_rejected():
    records = replay([ev("opened", "00:00"), survey("00:30"), ev("closed", "01:00"),
                      survey("00:45", eid="late")])  # arrives after the close, stamped before
    assert [(r["reason"], r["event_id"]) for r in kinds(records, "rejected")] == [
        ("survey_before_close", "T1-survey-00:30"), ("survey_before_close", "late")]
    assert kinds(records, "survey") == []


def test_a_ticket_never_seen_counts_under_the_service_and_customer_it_names():
    records = replay([survey("02:00", "X1", service="web", customer="acme", priority="P2"),
                      survey("02:10", "X2", service="web", customer="acme"),
                      survey("02:20", "X3", service="web")])
    counted = {r["ticket_id"]: r for r in kinds(records, "survey")}
    assert (counted["X1"]["priority"], counted["X2"]["priority"]) == ("P2", "unknown")
    assert counted["X1"]["clocks"] == {"response": None, "resolution": None}
    assert counted["X1"]["ticket_seen"] is False
    assert [(r["ticket_id"], r["reason"]) for r in kinds(records, "rejected")] == [
        ("X3", "survey_unattributed")]


def test_a_forgotten_ticket_is_a_ticket_never_seen():
    later = "2026-12-09T00:00:00Z"  # the tombstone is forgotten 7 days after the close
    records = replay(lifecycle(ev("opened", later, "T2"),
                               survey("2026-12-09T00:01:00Z", service="web", customer="acme")))
    [record] = kinds(records, "survey")
    assert record["ticket_seen"] is False and record["service"] == "web"


def test_a_redelivered_survey_is_the_same_record_and_moves_no_clock():
    engine = Engine(StubPolicies())
    run = Replay(engine)
    for line, event in enumerate(lifecycle(), 1):
        run.feed(event, line)
    first = run.feed(survey("01:00:30"), 9)
    again = run.feed(survey("01:00:30"), 10)
    assert first == again and first[0]["kind"] == "survey"
    [state] = list(run)
    assert [entry.type for entry in state.history or []] == ["opened", "responded", "closed"]


def test_a_survey_of_a_ticket_never_seen_leaves_no_state_in_replay():
    run = Replay(Engine(StubPolicies()))
    run.feed(survey("02:00", "X1", service="web", customer="acme"), 1)
    assert run.open_tickets == 0


def test_compacted_verdicts_survive_the_wire():
    engine = Engine(StubPolicies())
    state = TicketState("T1")
    for event in lifecycle():
        engine.apply(state, parse_event(event, engine.known_types), ms(event["ts"]))
    engine.advance(state, ms("01:02"))  # past the lateness: a tombstone
    assert state.tombstone
    restored = TicketState.from_wire(state.to_wire())
    assert sorted((e.metric, e.status) for e in restored.emitted.values()) == [
        ("resolution", "met"), ("response", "breached")]


def test_a_metric_breached_in_any_cycle_is_breached():
    per_start = MetricDef("next_response", start=frozenset({"customer_replied"}),
                          stop=frozenset({"agent_replied", "closed"}), cycles="per_start")
    targets = {"P1": {"response": 900, "resolution": 14400, "next_response": 600}}
    policies = StubPolicies(metrics=(*DEFAULT_METRICS, per_start), targets=targets)
    records = replay([ev("opened", "00:00"), ev("responded", "00:05"),
                      ev("customer_replied", "00:10"), ev("agent_replied", "00:30"),  # breached
                      ev("customer_replied", "00:40"), ev("agent_replied", "00:42"),  # met
                      ev("closed", "01:00"), survey("02:00")], policies=policies)
    [record] = kinds(records, "survey")
    assert record["clocks"] == {"response": "met", "resolution": "met",
                                "next_response": "breached"}
