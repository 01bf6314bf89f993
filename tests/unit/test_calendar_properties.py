"""Property-based tests of calendar arithmetic (hypothesis).

Calendars cover the fast paths (24x7, 24x7 with exclusions), business hours
with holidays and exclusions in two zones, and intervals on DST gap/overlap
hours; instants range over 2026-2027, DST changes included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import CALENDAR_24X7, Calendar, Exclusion, WorkingCalendar

H = 3_600_000
M = 60_000
LOW = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
HIGH = int(datetime(2027, 12, 31, tzinfo=UTC).timestamp() * 1000)
BERLIN_DST = (
    int(datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2026, 10, 25, 1, tzinfo=UTC).timestamp() * 1000),
)

WEEKDAY_HOURS = (((540, 720), (780, 1020)), *(((540, 1020),),) * 4, (), ())
OFFICE = Calendar(
    "office", "Europe/Berlin", WEEKDAY_HOURS,
    frozenset({date(2026, 12, 24), date(2026, 12, 25), date(2027, 1, 1)}),
)
NIGHTS = Calendar(  # boundaries on the DST hours of Europe/Berlin
    "nights", "Europe/Berlin", (((0, 150), (150, 210), (1380, 1440)),) * 7
)
NYC = Calendar("nyc", "America/New_York", (((480, 1200),),) * 5 + (((600, 840),), ()))
WINDOWS = (
    Exclusion("a", LOW + 40 * 24 * H, LOW + 41 * 24 * H),
    Exclusion("b", BERLIN_DST[0] - 3 * H, BERLIN_DST[0] + 2 * H),
    Exclusion("c", BERLIN_DST[1] + 10 * H, BERLIN_DST[1] + 30 * H),
)
CALENDARS = [
    CALENDAR_24X7.working_time(),
    CALENDAR_24X7.working_time(WINDOWS),
    OFFICE.working_time(),
    OFFICE.working_time(WINDOWS),
    NIGHTS.working_time(WINDOWS),
    NYC.working_time(),
]

calendars = st.sampled_from(CALENDARS)
near_dst = st.sampled_from(BERLIN_DST).flatmap(
    lambda moment: st.integers(moment - 4 * 24 * H, moment + 4 * 24 * H)
)
instants = st.one_of(st.integers(LOW, HIGH), near_dst)
amounts = st.integers(0, 21 * 24 * H)  # up to three weeks of working time


@given(calendars, instants, amounts)
def test_elapsed_to_instant_after_is_the_amount(cal: WorkingCalendar, start: int, n: int) -> None:
    instant = cal.instant_after(start, n)
    assert instant >= start
    assert cal.elapsed(start, instant) == n


@given(calendars, instants, st.integers(1, 21 * 24 * H))
def test_instant_after_is_the_earliest(cal: WorkingCalendar, start: int, n: int) -> None:
    instant = cal.instant_after(start, n)
    assert cal.elapsed(start, instant - 1) == n - 1


@given(calendars, instants, amounts, amounts)
def test_instant_after_is_monotonic(cal: WorkingCalendar, start: int, n: int, m: int) -> None:
    small, large = sorted((n, m))
    assert cal.instant_after(start, small) <= cal.instant_after(start, large)


@given(calendars, st.lists(instants, min_size=3, max_size=3))
def test_elapsed_is_additive(cal: WorkingCalendar, points: list[int]) -> None:
    a, b, c = sorted(points)
    assert cal.elapsed(a, b) + cal.elapsed(b, c) == cal.elapsed(a, c)


@given(calendars, instants, instants)
def test_elapsed_at_most_wall_time(cal: WorkingCalendar, a: int, b: int) -> None:
    assert 0 <= cal.elapsed(a, b) <= max(0, b - a)


@given(
    st.sampled_from([CALENDAR_24X7, OFFICE, NIGHTS, NYC]),
    instants,
    instants,
    st.integers(LOW, HIGH),
    st.integers(1, 10 * 24 * H),
)
def test_an_exclusion_never_adds_time(
    calendar: Calendar, a: int, b: int, window_start: int, window_length: int
) -> None:
    window = Exclusion("w", window_start, window_start + window_length)
    without, with_window = calendar.working_time(), calendar.working_time([window])
    assert with_window.elapsed(a, b) <= without.elapsed(a, b)


def _naive_working_minutes(calendar: Calendar, windows: tuple[Exclusion, ...], start: int,
                           minutes: int) -> int:
    """Oracle: step minute by minute and ask the local wall clock (valid away from DST hours)."""
    zone, total = ZoneInfo(calendar.timezone), 0
    for step in range(minutes):
        instant = start + step * M
        local = datetime.fromtimestamp(instant / 1000, UTC).astimezone(zone)
        minute = local.hour * 60 + local.minute
        working = local.date() not in calendar.holidays and any(
            first <= minute < last for first, last in calendar.hours[local.weekday()]
        )
        excluded = any(w.start_ms <= instant < w.end_ms for w in windows)
        total += working and not excluded
    return total


@settings(max_examples=60, deadline=None)
@given(st.integers(LOW // M, HIGH // M), st.integers(0, 4 * 24 * 60),
       st.sampled_from([(OFFICE, ()), (OFFICE, WINDOWS), (NYC, ())]))
def test_matches_minute_by_minute_oracle(
    start_minute: int, minutes: int, case: tuple[Calendar, tuple[Exclusion, ...]]
) -> None:
    calendar, windows = case
    start = start_minute * M
    expected = _naive_working_minutes(calendar, windows, start, minutes) * M
    assert calendar.working_time(windows).elapsed(start, start + minutes * M) == expected


def test_oracle_sanity() -> None:
    monday = int(datetime(2026, 3, 9, tzinfo=ZoneInfo("Europe/Berlin")).timestamp() * 1000)
    assert _naive_working_minutes(OFFICE, (), monday, 24 * 60) == 7 * 60
    assert timedelta(minutes=_naive_working_minutes(NYC, (), monday, 7 * 24 * 60)) == timedelta(
        hours=5 * 12 + 4
    )
