"""Time formats of sla.events: format_ts (cached per minute and per day) against datetime,
round trips.

format_ts keeps the text of recent minutes and days; these compare it with a plain datetime
rendering on generated instants (whole seconds and milliseconds, before and after
the epoch, across the cache's clearing) and read each text back with parse_ts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla.errors import InvalidEvent
from sla.events import MAX_TS_MS, MIN_TS_MS, format_ts, parse_ts

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reference_format(ms: int) -> str:
    """What format_ts must write, by datetime: seconds always, milliseconds when not zero."""
    moment = EPOCH + timedelta(milliseconds=ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


instants = st.integers(MIN_TS_MS, MAX_TS_MS - 1)
whole_or_milli = st.one_of(instants, instants.map(lambda ms: ms - ms % 1000))


@given(st.one_of(whole_or_milli, st.integers(-(10**12), 10**12)))
def test_format_ts_matches_datetime(ms: int) -> None:
    assert format_ts(ms) == reference_format(ms)


def test_format_ts_is_right_after_its_cache_fills() -> None:
    start = 1_790_000_000_000
    for minute in range(20_000):  # more minutes than the cache keeps
        ms = start + minute * 60_007
        assert format_ts(ms) == reference_format(ms)


def test_format_ts_is_right_after_its_cache_of_days_fills() -> None:
    start = 1_000_000_000_000
    for day in range(10_000):  # more days than the cache keeps, a minute of each
        ms = start + day * 86_400_061
        assert format_ts(ms) == reference_format(ms)


@given(whole_or_milli)
def test_parse_ts_reads_what_format_ts_writes(ms: int) -> None:
    assert parse_ts(format_ts(ms)) == ms


@pytest.mark.parametrize(("value", "code"), [
    (True, "bad_type"), (None, "bad_type"), (1.5, "bad_type"),
    ("2026-10-19T13:45:60Z", "bad_timestamp"), ("2026-10-19T13:45:12", "bad_timestamp"),
    (1_790_000_000, "bad_timestamp"),
])
def test_parse_ts_refuses(value: object, code: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_ts(value)
    assert caught.value.code == code


def test_parse_ts_takes_a_str_subclass_and_an_offset() -> None:
    class Text(str):
        pass

    assert parse_ts(Text("2026-10-19T15:45:12.5+02:00")) == parse_ts("2026-10-19T13:45:12.500Z")


# -- RFC 3339 only (issue 9, defect 10) -------------------------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    ("2026-11-29 10:00:00+00:00:00", "is not an RFC 3339 time"),  # the example
    ("2026-11-29T10:00:00+00:00:00", "is not an RFC 3339 time"),  # offset with seconds
    ("2026-11-29 10:00:00Z", "is not an RFC 3339 time"),  # a space for the T
    ("20261129T100000Z", "is not an RFC 3339 time"),  # ISO 8601 basic format
    ("2026-W48-7T10:00:00Z", "is not an RFC 3339 time"),  # week date
    ("2026-333T10:00:00Z", "is not an RFC 3339 time"),  # ordinal date
    ("2026-11-29T10:00Z", "is not an RFC 3339 time"),  # no seconds
    ("2026-11-29T10:00:00+0100", "is not an RFC 3339 time"),  # offset without a colon
    ("2026-11-29", "is not an RFC 3339 time"),
    ("2026-11-29T10:00:00", "has no UTC offset"),
    ("2026-11-29 10:00:00.5", "has no UTC offset"),
    ("2026-11-29T10:00:00Z ", "is not an RFC 3339 time"),
    ("２０２６-11-29T10:00:00Z", "is not an RFC 3339 time"),  # non-ASCII digits
])
def test_only_rfc_3339_is_taken(value: str, message: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_ts(value)
    assert caught.value.code == "bad_timestamp"
    assert f"ts: {value!r} {message}" in str(caught.value)


@pytest.mark.parametrize(("value", "same_as"), [
    ("2026-11-29t10:00:00z", "2026-11-29T10:00:00Z"),  # RFC 3339 allows lower case
    ("2026-11-29T11:30:00+01:30", "2026-11-29T10:00:00Z"),
    ("2026-11-29T05:00:00.250-05:00", "2026-11-29T10:00:00.250Z"),
    ("2026-11-29T10:00:00.123456789Z", "2026-11-29T10:00:00.123Z"),  # below ms: truncated
    (1795946400000, "2026-11-29T10:00:00Z"),  # epoch milliseconds
])
def test_rfc_3339_forms_and_epoch_milliseconds_are_taken(value: object, same_as: str) -> None:
    assert parse_ts(value) == parse_ts(same_as)
