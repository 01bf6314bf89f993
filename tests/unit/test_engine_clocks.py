"""Every row of DESIGN.md's clock table, on a 24x7 calendar so instants are easy to check.

Targets (see enginekit.TARGETS): P1 response 15m / resolution 4h; P2 response 1h /
resolution 8h. Warnings at 0.5, 0.75, 0.9 of the target. T0 = 2026-12-01T00:00Z.
Every expected instant is start + counted time, worked out in the comment beside it.
"""

from __future__ import annotations

from tests.unit.enginekit import StubPolicies, at, brief, ev, kinds, ms, replay


def test_responded_stops_the_response_clock_met():
    records = replay([ev("opened", "00:00"), ev("responded", "00:10")], as_of="00:20")
    assert brief(kinds(records, "warning", "breach", "outcome")) == [
        ("warning", "response", 0.5, at("00:07:30")),  # 0.5 * 15m = 7m30s
        ("outcome", "response", "met", 600.0, 0),  # 10 min counted
    ]


def test_response_breaches_at_its_deadline_without_another_event():
    records = replay([ev("opened", "00:00")], as_of="00:15")
    assert brief(kinds(records, "warning", "breach")) == [
        ("warning", "response", 0.5, at("00:07:30")),
        ("warning", "response", 0.75, at("00:11:15")),  # 0.75 * 900 s = 675 s
        ("warning", "response", 0.9, at("00:13:30")),  # 0.9 * 900 s = 810 s
        ("breach", "response", at("00:15"), at("00:15")),
    ]
    breach = kinds(records, "breach")[0]
    assert breach["elapsed_seconds"] == 900.0 and breach["target_seconds"] == 900.0
    assert breach["id"] == "T1:response:0:breach"


def test_as_of_is_inclusive_and_the_watermark_is_the_default_end():
    just_before = replay([ev("opened", "00:00")], as_of="00:14:59")
    assert not kinds(just_before, "breach")
    assert kinds(replay([ev("opened", "00:00"), ev("opened", "00:15", ticket="T2")]), "breach")


def test_a_stop_stamped_exactly_at_the_deadline_is_met():
    records = replay([ev("opened", "00:00"), ev("responded", "00:15")], as_of="01:00")
    assert not [r for r in kinds(records, "breach") if r["metric"] == "response"]
    outcome = [r for r in kinds(records, "outcome") if r["metric"] == "response"][0]
    assert (outcome["status"], outcome["elapsed_seconds"]) == ("met", 900.0)


def test_only_the_first_response_counts():
    records = replay([ev("opened", "00:00"), ev("responded", "00:05"),
                      ev("responded", "00:20")], as_of="00:30")
    outcomes = [r for r in kinds(records, "outcome") if r["metric"] == "response"]
    assert [(o["elapsed_seconds"], o["revision"]) for o in outcomes] == [(300.0, 0)]


def test_pause_stops_resolution_but_not_response():
    # resolution: 1h counted, paused 01:00-03:00, so the 4h target is reached at 06:00.
    records = replay([ev("opened", "00:00"), ev("responded", "00:05"), ev("paused", "01:00"),
                      ev("resumed", "03:00")], as_of="06:00")
    breaches = kinds(records, "breach")
    assert [(b["metric"], b["deadline"]) for b in breaches] == [("resolution", at("06:00"))]
    warnings = [w["at"] for w in kinds(records, "warning") if w["metric"] == "resolution"]
    # 0.5 * 4h = 2h counted: 1h before the pause + 1h after 03:00 -> 04:00; 3h -> 05:00;
    # 0.9 * 4h = 3h36m -> 05:36.
    assert warnings == [at("04:00"), at("05:00"), at("05:36")]


def test_a_paused_response_clock_keeps_running_when_not_pausable():
    records = replay([ev("opened", "00:00"), ev("paused", "00:01")], as_of="00:15")
    assert [b["metric"] for b in kinds(records, "breach")] == ["response"]


def test_resolved_without_response_stops_both_clocks():
    records = replay([ev("opened", "00:00"), ev("resolved", "00:12")], as_of="09:00")
    assert brief(kinds(records, "outcome")) == [
        ("outcome", "response", "met", 720.0, 0),
        ("outcome", "resolution", "met", 720.0, 0),
    ]
    assert not kinds(records, "breach")


def test_reopen_resumes_resolution_and_revises_its_outcome():
    # resolved after 2h counted; reopened at 03:00; resolved at 04:00 -> 3h counted, revision 1.
    records = replay([ev("opened", "00:00"), ev("responded", "00:01"), ev("resolved", "02:00"),
                      ev("reopened", "03:00"), ev("resolved", "04:00")], as_of="10:00")
    outcomes = [r for r in kinds(records, "outcome") if r["metric"] == "resolution"]
    assert [(o["elapsed_seconds"], o["revision"], o["id"]) for o in outcomes] == [
        (7200.0, 0, "T1:resolution:0:outcome:0"),
        (10800.0, 1, "T1:resolution:0:outcome:1"),
    ]
    # The 0.5 warning (2h counted) was reached exactly at the 02:00 stop: events at an
    # instant apply first, so it fires when the clock resumes at 03:00.
    assert [w["at"] for w in kinds(records, "warning") if w["metric"] == "resolution"] == [
        at("03:00")]


def test_reopen_cannot_breach_again_in_the_same_cycle():
    # 4h target: breach at 04:00; resolved 05:00; reopened 06:00; still open at 20:00.
    records = replay([ev("opened", "00:00"), ev("responded", "00:01"), ev("resolved", "05:00"),
                      ev("reopened", "06:00")], as_of="20:00")
    assert [(b["metric"], b["deadline"]) for b in kinds(records, "breach")] == [
        ("resolution", at("04:00"))]
    outcome = [r for r in kinds(records, "outcome") if r["metric"] == "resolution"][0]
    assert outcome["status"] == "breached"


def test_priority_change_keeps_counted_time_and_takes_the_new_target():
    # P2 -> P1 at 00:05: response counted 5m of the new 15m -> breach at 00:15;
    # 0.5 of 15m = 7m30s -> 00:07:30 (not yet crossed at 00:05).
    records = replay([ev("opened", "00:00", priority="P2"), ev("priority_changed", "00:05",
                                                              priority="P1")], as_of="00:15")
    response = [r for r in records if r.get("metric") == "response"]
    assert brief(response) == [
        ("warning", "response", 0.5, at("00:07:30")),
        ("warning", "response", 0.75, at("00:11:15")),
        ("warning", "response", 0.9, at("00:13:30")),
        ("breach", "response", at("00:15"), at("00:15")),
    ]
    assert response[-1]["priority"] == "P1" and response[-1]["target_seconds"] == 900.0


def test_priority_change_on_a_late_clock_breaches_at_once_with_a_retroactive_deadline():
    # P2 (1h) -> P1 (15m) at 00:20: 20m counted, so the crossed fractions fire at 00:20 and
    # the breach too, with deadline = 00:15 (when 15m were counted).
    records = replay([ev("opened", "00:00", priority="P2"), ev("priority_changed", "00:20",
                                                              priority="P1")], as_of="00:21")
    response = [r for r in records if r.get("metric") == "response"]
    assert brief(response) == [
        ("warning", "response", 0.5, at("00:20")),
        ("warning", "response", 0.75, at("00:20")),
        ("warning", "response", 0.9, at("00:20")),
        ("breach", "response", at("00:15"), at("00:20")),
    ]


def test_priority_change_to_a_longer_target_keeps_an_emitted_breach():
    records = replay([ev("opened", "00:00"), ev("priority_changed", "00:20", priority="P2"),
                      ev("responded", "00:30")], as_of="00:40")
    response = [r for r in records if r.get("metric") == "response"]
    assert [r["kind"] for r in response][-2:] == ["breach", "outcome"]
    assert response[-1]["status"] == "breached" and response[-1]["target_seconds"] == 3600.0


def test_priority_change_retargets_a_paused_clock():
    # resolution P2 8h; paused at 01:00 after 1h; P1 4h at 02:00 -> crossed 0.5? 1h/4h = 0.25: no.
    # resumed 03:00: 3h more to 4h -> breach 06:00.
    records = replay([ev("opened", "00:00", priority="P2"), ev("responded", "00:01"),
                      ev("paused", "01:00"), ev("priority_changed", "02:00", priority="P1"),
                      ev("resumed", "03:00")], as_of="06:00")
    assert [(b["metric"], b["deadline"]) for b in kinds(records, "breach")] == [
        ("resolution", at("06:00"))]


def test_closed_stops_running_clocks_and_is_final():
    records = replay([ev("opened", "00:00"), ev("closed", "00:05"), ev("responded", "00:06")],
                     as_of="09:00")
    assert brief(kinds(records, "outcome")) == [
        ("outcome", "response", "met", 300.0, 0), ("outcome", "resolution", "met", 300.0, 0)]
    rejected = kinds(records, "rejected")
    assert [(r["reason"], r["line"]) for r in rejected] == [("ticket_closed", 3)]
    assert not kinds(records, "breach")


def test_cancelled_excludes_the_clock_but_an_earlier_breach_stands():
    records = replay([ev("opened", "00:00"), ev("cancelled", "00:20")], as_of="09:00")
    assert [b["metric"] for b in kinds(records, "breach")] == ["response"]
    assert brief(kinds(records, "outcome")) == [
        ("outcome", "response", "cancelled", 1200.0, 0),
        ("outcome", "resolution", "cancelled", 1200.0, 0),
    ]
    assert all(r["met"] + r["breached"] == 0 for r in kinds(records, "compliance")) or not [
        r for r in kinds(records, "compliance")]


def test_duplicate_event_ids_are_ignored():
    first = ev("responded", "00:05")
    records = replay([ev("opened", "00:00"), first, dict(first, ts=at("00:06"))], as_of="00:10")
    assert len([r for r in kinds(records, "outcome") if r["metric"] == "response"]) == 1
    assert not kinds(records, "rejected")


def test_late_response_withdraws_the_breach_it_prevents():
    # T1's response stamped 00:10 arrives after T2 moved time to 00:20, when T1's breach
    # (00:15) and its 0.75 (00:11:15) and 0.9 (00:13:30) warnings had fired.
    records = replay([ev("opened", "00:00"), ev("opened", "00:20", ticket="T2"),
                      ev("responded", "00:10")], as_of="00:20")
    t1 = [r for r in records if r.get("ticket_id") == "T1" and r.get("metric") == "response"]
    assert brief(t1)[4:] == [
        ("outcome", "response", "met", 600.0, 0),
        ("retraction", "T1:response:0:warning:0.75"),
        ("retraction", "T1:response:0:warning:0.9"),
        ("retraction", "T1:response:0:breach"),
    ]
    retraction = t1[-1]
    assert retraction["id"] == "T1:response:0:breach:retracted"
    assert retraction["retracts_kind"] == "breach"


def test_events_apply_at_their_own_ts_whatever_the_arrival_order():
    in_order = [ev("opened", "00:00"), ev("responded", "00:05"), ev("paused", "01:00"),
                ev("resumed", "02:00"), ev("resolved", "03:00")]
    shuffled = [in_order[0], in_order[3], in_order[1], in_order[4], in_order[2]]

    def final(records):  # consumers keep the highest revision of each clock's outcome
        latest = {}
        for r in kinds(records, "outcome"):
            latest[r["metric"]] = max(latest.get(r["metric"], r), r, key=lambda o: o["revision"])
        return {(o["metric"], o["status"], o["elapsed_seconds"]) for o in latest.values()}

    assert final(replay(shuffled, as_of="12:00")) == final(replay(in_order, as_of="12:00"))


def test_events_of_an_unopened_ticket_are_held_for_the_lateness():
    records = replay([ev("responded", "00:05"), ev("opened", "00:00")], as_of="00:30")
    outcome = [r for r in kinds(records, "outcome") if r["metric"] == "response"][0]
    assert outcome["elapsed_seconds"] == 300.0
    assert not kinds(records, "rejected")


def test_events_of_a_ticket_never_opened_are_rejected_after_the_lateness():
    records = replay([ev("responded", "00:05"), ev("opened", "00:03", ticket="T2")],
                     as_of="00:07", lateness_ms=60_000)
    rejected = kinds(records, "rejected")
    assert [(r["reason"], r["line"], r["ticket_id"]) for r in rejected] == [
        ("never_opened", 1, "T1")]


def test_an_opened_with_an_unknown_priority_is_rejected():
    records = replay([ev("opened", "00:00", priority="P9")], as_of="01:00")
    assert [r["reason"] for r in kinds(records, "rejected")] == ["no_target", "never_opened"] or [
        r["reason"] for r in kinds(records, "rejected")] == ["no_target"]


def test_outputs_have_deterministic_ids():
    events = [ev("opened", "00:00"), ev("responded", "00:20"), ev("resolved", "05:00")]
    first, second = replay(events), replay(events)
    assert first == second
    ids = [r["id"] for r in first]
    assert len(ids) == len(set(ids))


def test_policy_version_is_recorded():
    records = replay([ev("opened", "00:00")], policies=StubPolicies(version=7), as_of="00:15")
    assert {r["policy_version"] for r in kinds(records, "breach", "warning")} == {7}


def test_a_closed_ticket_is_remembered_for_a_while_then_forgotten():
    from sla.engine import Engine
    from sla.events import parse_event
    from sla.ticket import TicketState

    engine = Engine(StubPolicies(), lateness_ms=60_000, tombstone_ms=3_600_000)
    state = TicketState("T1")
    known = engine.known_types
    for event in (ev("opened", "00:00"), ev("closed", "00:05")):
        engine.apply(state, parse_event(event, known), ms(event["ts"]))
    engine.advance(state, ms("00:07"))
    assert state.tombstone and engine.next_due(state) == ms("01:05") + 1
    late = parse_event(ev("responded", "00:30"), known)
    assert [r["reason"] for r in engine.apply(state, late, ms("00:30"))] == ["ticket_closed"]
    engine.advance(state, ms("01:05:01"))
    assert engine.is_empty(state)


def test_a_tombstone_skips_redelivered_events_and_rejects_new_ones():
    # A worker restarted after a closed ticket was compacted gets its events again: they
    # are duplicates to skip, not late events to reject (issue 9, defect 4).
    from sla.engine import Engine
    from sla.events import parse_event
    from sla.ticket import TicketState

    engine = Engine(StubPolicies(), lateness_ms=60_000, tombstone_ms=3_600_000)
    state = TicketState("T1")
    known = engine.known_types
    applied = [ev("opened", "00:00"), ev("responded", "00:02"), ev("closed", "00:05")]
    for event in applied:
        engine.apply(state, parse_event(event, known), ms(event["ts"]))
    engine.advance(state, ms("00:07"))
    assert state.tombstone
    state = TicketState.from_wire(state.to_wire())  # as stored in the table
    for event in applied:
        assert engine.apply(state, parse_event(event, known), ms("00:08")) == []
    new = parse_event(ev("responded", "00:06", eid="other"), known)
    assert [r["reason"] for r in engine.apply(state, new, ms("00:08"))] == ["ticket_closed"]
    engine.advance(state, ms("01:05:01"))
    assert engine.is_empty(state) and not state.applied


def test_the_known_event_types_follow_a_policy_reload():
    from sla.engine import Engine
    from sla.model import DEFAULT_METRICS, MetricDef

    engine = Engine(StubPolicies())
    assert "escalated" not in engine.known_types and "opened" in engine.known_types
    escalation = MetricDef(name="escalation", start=frozenset({"escalated"}),
                           stop=frozenset({"closed"}))
    engine.reload(StubPolicies(version=2, metrics=(*DEFAULT_METRICS, escalation)))
    assert "escalated" in engine.known_types
    engine.reload(StubPolicies(version=3))
    assert "escalated" not in engine.known_types
