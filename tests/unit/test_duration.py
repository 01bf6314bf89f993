"""Durations as policies write them: parse_duration and format_duration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 15 * 60),
        ("4h", 4 * 3600),
        ("1h30m", 5400),
        ("3d", 72 * 3600),  # a day is 24 h of counted time
        ("1d2h", 26 * 3600),
        ("1d2h3m4s", 93784),
        ("120m", 7200),  # a unit need not be the largest possible
        (" 5m ", 300),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


HINT = "(use e.g. 90s, 15m, 1h30m, 3d)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2x", f"'2x' is not a duration {HINT}"),
        ("", f"'' is not a duration {HINT}"),
        ("h", f"'h' is not a duration {HINT}"),
        ("-5m", f"'-5m' is not a duration {HINT}"),
        ("30m1h", f"'30m1h' is not a duration {HINT}"),  # largest unit first
        ("1h1h", f"'1h1h' is not a duration {HINT}"),
        ("1.5h", f"'1.5h' is not a duration {HINT}"),
        ("1H", f"'1H' is not a duration {HINT}"),
        ("0m", f"'0m' is not a positive duration {HINT}"),
        (90, f"90 is not a duration: add a unit {HINT}"),
        (1.5, f"1.5 is not a duration {HINT}"),
        (True, f"True is not a duration {HINT}"),
        (None, f"None is not a duration {HINT}"),
    ],
)
def test_parse_duration_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (5400, "1h30m"), (259200, "3d"), (93784, "1d2h3m4s"),
     (60.25, "1m0.250s"), (-90, "-1m30s"), (0.5, "0.500s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**8))
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
