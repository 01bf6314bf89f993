"""CSAT in compliance windows: the arithmetic (by hand and against an obvious oracle), a replay
of a history with surveys to the windows worked out below, late surveys, and the live
compliance processor giving the same records as replay.

The history (24x7, P1 response 15m, resolution 4h, enginekit's T0 = 2026-12-01):

ticket  response          closed  survey (time, score)   response   resolution
T1      00:10 (met)       01:00   03:00  5 of 1..5 (+)   met        met
T2      00:25 (breached)  01:00   03:10  2 of 1..5 (-)   breached   met
T3      00:40 (breached)  01:00   03:20  4 of 1..5 (+)   breached   met
X1      never seen                03:30  0 of 0..1 (-)   (none)     (none)   web/acme/P1 named

Each metric's day window of (email, acme, P1) holds T1-T3's surveys; X1's counts under its
own service `web`. Response: 3 surveys, 2 positive, met 1/1 positive, breached 1 of 2.
"""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from agents.complianceprocessor import ComplianceProcessor
from sla.csat import csat_fields
from sla.engine import Engine
from sla.replay import Replay
from streams.outputs import compliance_input, feeds_compliance
from streams.topics import TopicCatalogue
from tests.unit.enginekit import StubPolicies, ev, kinds, ms, replay


def survey(when: str, ticket: str, score: float, low: float = 1, high: float = 5,
           **fields) -> dict:
    return ev("survey", when, ticket, score=score, scale_min=low, scale_max=high, **fields)


HISTORY = [
    ev("opened", "00:00", "T1"), ev("opened", "00:00", "T2"), ev("opened", "00:00", "T3"),
    ev("responded", "00:10", "T1"), ev("responded", "00:25", "T2"),
    ev("responded", "00:40", "T3"),
    ev("closed", "01:00", "T1"), ev("closed", "01:00", "T2"), ev("closed", "01:00", "T3"),
    survey("03:00", "T1", 5), survey("03:10", "T2", 2), survey("03:20", "T3", 4),
    survey("03:30", "X1", 0, low=0, high=1, service="web", customer="acme", priority="P1"),
]
AS_OF = "2026-12-02T00:00:00Z"


def windows(records: list[dict], window: str) -> dict[tuple[str, str], dict]:
    return {(r["service"], r["metric"]): r for r in kinds(records, "compliance")
            if r["window"] == window}


def test_a_history_with_surveys_gives_these_windows():
    days = windows(replay(HISTORY, as_of=AS_OF), "day")
    response = days["email", "response"]
    assert (response["met"], response["breached"], response["total"]) == (1, 2, 3)
    assert {k: response[k] for k in ("surveys", "positive", "csat_ratio", "surveys_met",
                                     "positive_met", "csat_met_ratio", "surveys_breached",
                                     "positive_breached", "csat_breached_ratio")} == {
        "surveys": 3, "positive": 2, "csat_ratio": 2 / 3, "surveys_met": 1, "positive_met": 1,
        "csat_met_ratio": 1.0, "surveys_breached": 2, "positive_breached": 1,
        "csat_breached_ratio": 0.5}
    assert response["score_mean"] == (1.0 + 0.25 + 0.75) / 3
    resolution = days["email", "resolution"]
    assert (resolution["surveys_met"], resolution["csat_met_ratio"]) == (3, 2 / 3)
    assert (resolution["surveys_breached"], resolution["csat_breached_ratio"]) == (0, None)
    never_seen = days["web", "response"]  # X1: a window of surveys only
    assert (never_seen["total"], never_seen["surveys"], never_seen["positive"]) == (0, 1, 0)
    assert (never_seen["surveys_met"], never_seen["surveys_breached"]) == (0, 0)
    assert never_seen["p50_seconds"] is None and never_seen["credit"] == 0.0


def test_surveys_count_in_the_hour_of_their_time_not_of_the_close():
    hours = {(r["service"], r["metric"], r["window_start"][11:16]): r
             for r in kinds(replay(HISTORY, as_of=AS_OF), "compliance")
             if r["window"] == "hour"}
    assert hours["email", "response", "00:00"].get("surveys") is None  # outcomes only
    assert hours["email", "response", "03:00"]["total"] == 0
    assert hours["email", "response", "03:00"]["surveys"] == 3


def test_a_window_without_surveys_has_no_csat_fields():
    plain = [event for event in HISTORY if event["type"] != "survey"]
    for record in kinds(replay(plain, as_of=AS_OF), "compliance"):
        assert "surveys" not in record and "csat_ratio" not in record


def test_a_survey_for_a_closed_window_is_not_counted():
    late = [*HISTORY, ev("opened", "2026-12-01T05:00:00Z", "T9"),
            survey("03:40", "T1", 1, eid="late")]  # the 03:00 hour closed at 05:00 (+60 s)
    run = Replay(Engine(StubPolicies()))
    records: list[dict] = []
    for line, event in enumerate(late, 1):
        records += run.feed(event, line)
    records += run.finish(ms(AS_OF))
    hour = [r for r in kinds(records, "compliance") if r["window"] == "hour"
            and r["window_start"].endswith("T03:00:00Z") and r["service"] == "email"
            and r["metric"] == "response"]
    assert hour[0]["surveys"] == 3  # not 4
    assert run.compliance.late_surveys == 2  # response and resolution hour windows
    day = windows(records, "day")["email", "response"]
    assert day["surveys"] == 4  # the day was still open


def test_the_live_processor_counts_surveys_as_replay_does():
    records = replay(HISTORY)  # no --as-of: what replay emitted before the end of input
    expected = [r for r in replay(HISTORY, as_of=AS_OF) if r["kind"] == "compliance"]
    processor = ComplianceProcessor({}, TopicCatalogue(), lambda s, c, r: 0.0, 60_000)
    live: list[dict] = []
    watermark = None
    for record in records:
        if record["kind"] == "outcome":
            watermark = ms(record["stopped_at"])
        elif record["kind"] == "survey":
            watermark = ms(record["at"])
        if feeds_compliance(record):
            message = compliance_input(TopicCatalogue(), record, watermark)
            live += [orjson.loads(o.value) for o in processor.handle(0, message.value)]
    end = orjson.dumps({"kind": "outcome", "watermark": ms(AS_OF) + 60_000, "status": "cancelled",
                        "ticket_id": "end", "metric": "response", "cycle": 0,
                        "id": "end:response:0:outcome:0"})
    live += [orjson.loads(o.value) for o in processor.handle(0, end)]
    assert sorted(live, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"])


# -- the arithmetic ----------------------------------------------------------------------------


def test_csat_fields_by_hand():
    assert csat_fields([(True, 1.0, "met"), (False, 0.25, "breached"), (True, 0.5, ""),
                        (False, 0.0, "breached")]) == {
        "surveys": 4, "positive": 2, "csat_ratio": 0.5, "score_mean": 0.4375,
        "surveys_met": 1, "positive_met": 1, "csat_met_ratio": 1.0,
        "surveys_breached": 2, "positive_breached": 0, "csat_breached_ratio": 0.0}


entries = st.lists(st.tuples(st.booleans(), st.floats(0, 1), st.sampled_from(["met",
                                                                               "breached", ""])),
                   min_size=1, max_size=60)


@given(entries)
def test_csat_fields_agree_with_counting_one_by_one(surveys):
    fields = csat_fields(surveys)
    positive = [s for s in surveys if s[0]]
    assert fields["surveys"] == len(surveys) and fields["positive"] == len(positive)
    assert fields["csat_ratio"] == len(positive) / len(surveys)
    assert abs(fields["score_mean"] - sum(s[1] for s in surveys) / len(surveys)) < 1e-9
    for verdict in ("met", "breached"):
        mine = [s for s in surveys if s[2] == verdict]
        assert fields[f"surveys_{verdict}"] == len(mine)
        assert fields[f"positive_{verdict}"] == sum(1 for s in mine if s[0])
        ratio = fields[f"csat_{verdict}_ratio"]
        assert ratio == (sum(1 for s in mine if s[0]) / len(mine) if mine else None)
    assert 0 <= fields["csat_ratio"] <= 1
    assert fields["surveys_met"] + fields["surveys_breached"] <= fields["surveys"]
