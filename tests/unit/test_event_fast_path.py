"""parse_event's quick pass and parse_ts's minute cache agree with the full checks.

parse_event takes a well-formed event by one pass of cheap checks and hands anything
else to `_check_event`; parse_ts reads a UTC time of a minute it has seen from tables.
Both are shortcuts: on any input they must give what the full check gives, the same
Event or the same error (code and message).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.errors import InvalidEvent
from sla.events import _check_event, _read_text_ms, parse_event, parse_ts

KNOWN = frozenset({"opened", "responded", "priority_changed", "closed", "survey"})

ABSENT = object()
WELL_FORMED = {"event_id": "e1", "ticket_id": "T1", "ts": "2026-10-19T13:45:12.345Z",
               "service": "email", "customer": "acme", "priority": "P1",
               "score": 4, "scale_min": 1, "scale_max": 5}
bad = st.one_of(st.just(ABSENT), st.none(), st.sampled_from(["", " "]), st.integers(-2, 2),
                st.booleans(), st.just([]), st.just({}), st.floats(allow_nan=False))
times = st.one_of(
    st.sampled_from([
        "2026-10-19T13:45:12Z", "2026-10-19T13:45:12.345Z", "2026-10-19T13:45:12.5Z",
        "2026-10-19T13:45:60Z", "2026-10-19T13:45:12z", "2026-10-19t13:45:12Z",
        "2026-10-19T13:45:12+02:00", "2026-10-19T13:45:12", "2026-10-19T13:45:1Z",
        "2026-10-19T13:45:12.3456Z", "2026-10-19T13:45:12.000Z", "2026-10-19T13:45:12ZZ",
        "1999-12-31T23:59:59Z", "2026-02-30T10:00:00Z", "",
    ]),
    st.sampled_from([1_790_000_000_000, 946_684_800_000, 946_684_799_999, 7_258_118_400_000]),
    bad,
)
changes = {  # what a field may become instead of its well-formed value
    "event_id": bad, "ticket_id": bad, "ts": times, "service": bad, "customer": bad,
    "priority": bad, "type": st.one_of(st.sampled_from(["unknown", ""]), bad),
    "attributes": st.one_of(st.just({"a": 1}), bad), "scale_max": bad,
}


@st.composite
def events(draw: st.DrawFn) -> dict:
    """A well-formed event of some type, with up to three fields changed or removed."""
    obj: dict = dict(WELL_FORMED, type=draw(st.sampled_from(sorted(KNOWN))))
    for name in draw(st.lists(st.sampled_from(sorted(changes)), max_size=3, unique=True)):
        value = draw(changes[name])
        if value is ABSENT:
            obj.pop(name, None)
        else:
            obj[name] = value
    return obj


def outcome(call: Any) -> object:
    try:
        return call()
    except InvalidEvent as error:
        return ("error", error.code, str(error))


@settings(max_examples=1000)
@given(st.one_of(events(), bad),
       st.sampled_from([None, None, 1_792_417_512_345, 1_792_417_512_344, 7_258_118_400_000]))
def test_the_quick_pass_agrees_with_the_full_check(obj: object, not_after: int | None) -> None:
    parse_ts("2026-10-19T13:45:00Z")  # the minute of most times above is cached
    quick = outcome(lambda: parse_event(obj, KNOWN, ref=7, not_after=not_after))
    full = outcome(lambda: _check_event(obj, KNOWN, 7, not_after))
    assert quick == full


def test_a_well_formed_event_takes_the_quick_pass() -> None:
    obj = {"event_id": "e1", "ticket_id": "T1", "type": "opened", "ts": "2026-10-19T13:45:12Z",
           "service": "email", "customer": "acme", "priority": "P1"}
    assert parse_event(obj, KNOWN) == _check_event(obj, KNOWN, None, None)
    assert parse_event(obj, KNOWN).ts == 1_792_417_512_000


@pytest.mark.parametrize("rest", ["00Z", "59Z", "12.345Z", "12.000Z", "60Z", "12.5Z",
                                  "12.3456Z", "12+02:00", "12", "1Z", "12ZZ", "12z", "a1Z"])
def test_a_cached_minute_reads_each_rest_as_the_full_check_does(rest: str) -> None:
    parse_ts("2026-10-19T13:45:00Z")  # caches the minute 2026-10-19T13:45
    value = "2026-10-19T13:45:" + rest
    assert outcome(lambda: parse_ts(value)) == outcome(lambda: _read_text_ms(value, "ts"))


def test_a_time_with_an_offset_does_not_fill_the_cache_for_its_text() -> None:
    assert parse_ts("2026-10-19T13:47:00+02:00") == parse_ts("2026-10-19T11:47:00Z")
    assert parse_ts("2026-10-19T13:47:30Z") == parse_ts("2026-10-19T11:47:30Z") + 7_200_000


@pytest.mark.parametrize(("ts", "not_after"), [
    (946_684_800_000, None), (946_684_799_999, None), (7_258_118_399_999, None),
    (7_258_118_400_000, None), (1_790_000_000_000, 1_790_000_000_000),
    (1_790_000_000_001, 1_790_000_000_000), ("2026-10-19T13:45:12Z", 1_792_417_512_000),
    ("2026-10-19T13:45:12.001Z", 1_792_417_512_000),
])
def test_the_quick_pass_keeps_the_bounds_of_time(ts: object, not_after: int | None) -> None:
    obj = dict(WELL_FORMED, type="responded", ts=ts)
    assert (outcome(lambda: parse_event(obj, KNOWN, not_after=not_after))
            == outcome(lambda: _check_event(obj, KNOWN, None, not_after)))
