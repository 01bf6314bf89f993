"""Calendar arithmetic with instants worked out by hand.

Berlin is CET (UTC+1) in winter and CEST (UTC+2) from 2026-03-29 02:00 CET to
2026-10-25 03:00 CEST. Each case says how its expected instant was reached.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sla.calendar import (
    CALENDAR_24X7,
    Calendar,
    CalendarHorizonError,
    Exclusion,
    WorkingCalendar,
    parse_clock,
    parse_interval,
)

H = 3_600_000
M = 60_000
OFFICE_HOURS = (
    ((9 * 60, 12 * 60), (13 * 60, 17 * 60)),  # Monday: lunch break
    *(((9 * 60, 17 * 60),),) * 4,
    (),
    (),
)
OFFICE = Calendar(
    "office-berlin",
    "Europe/Berlin",
    OFFICE_HOURS,
    frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
)
CLOSED = ((),) * 6


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def iso(instant: int) -> str:
    return datetime.fromtimestamp(instant / 1000, UTC).isoformat(timespec="milliseconds")


def sunday_only(*intervals: tuple[int, int], zone: str = "Europe/Berlin") -> WorkingCalendar:
    return Calendar("sundays", zone, (*CLOSED, tuple(intervals))).working_time()


def office(*exclusions: Exclusion) -> WorkingCalendar:
    return OFFICE.working_time(exclusions)


# -- parsing hours ------------------------------------------------------------------------------


def test_parse_clock_and_interval() -> None:
    assert parse_clock("00:00") == 0
    assert parse_clock("09:30") == 570
    assert parse_clock("24:00") == 1440
    assert parse_interval("09:00-12:00") == (540, 720)
    assert parse_interval("20:00-24:00") == (1200, 1440)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9:00-10:00", "'9:00' is not a time of day (use hh:mm, e.g. 09:00)"),
        ("09:60-10:00", "'09:60' is not a time of day (00:00 to 24:00)"),
        ("24:30-10:00", "'24:30' is not a time of day (00:00 to 24:00)"),
        ("24:00-24:00", "'24:00-24:00' starts at 24:00; use 00:00 of the next day"),
        ("10:00-10:00", "'10:00-10:00' ends at or before its start"),
        ("0900", "'0900' is not an interval (use hh:mm-hh:mm, e.g. 09:00-17:00)"),
    ],
)
def test_parse_interval_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_interval(text)
    assert str(caught.value) == message


# -- business hours -----------------------------------------------------------------------------


def test_within_one_interval() -> None:
    # Tue 2026-03-10 10:00 CET + 2 h -> 12:00 CET = 11:00Z
    assert iso(office().instant_after(ms("2026-03-10T10:00:00+01:00"), 2 * H)) == (
        "2026-03-10T11:00:00.000+00:00"
    )


def test_over_the_weekend() -> None:
    # Fri 2026-03-06 16:00 CET + 2 h = 1 h Fri (16-17) + 1 h Mon 09-10 -> Mon 10:00 CET = 09:00Z
    cal, start = office(), ms("2026-03-06T16:00:00+01:00")
    assert iso(cal.instant_after(start, 2 * H)) == "2026-03-09T09:00:00.000+00:00"
    # Fri 16:00 to Mon 10:00 counts the same 2 h; the weekend counts nothing
    assert cal.elapsed(start, ms("2026-03-09T10:00:00+01:00")) == 2 * H
    assert cal.elapsed(ms("2026-03-07T00:00:00+01:00"), ms("2026-03-09T00:00:00+01:00")) == 0


def test_threshold_at_close_of_day_fires_then() -> None:
    # Fri 16:00 CET + 1 h reaches the amount at 17:00 Friday (16:00Z), not 09:00 Monday
    assert iso(office().instant_after(ms("2026-03-06T16:00:00+01:00"), H)) == (
        "2026-03-06T16:00:00.000+00:00"
    )
    # Mon 11:00 + 1 h ends with the morning interval: 12:00 CET (11:00Z), not 13:00
    assert iso(office().instant_after(ms("2026-03-09T11:00:00+01:00"), H)) == (
        "2026-03-09T11:00:00.000+00:00"
    )


def test_several_intervals_a_day() -> None:
    cal = office()
    # Mon 2026-03-09 11:00 CET + 2 h = 1 h (11-12) + lunch skipped + 1 h (13-14) -> 14:00 CET
    assert iso(cal.instant_after(ms("2026-03-09T11:00:00+01:00"), 2 * H)) == (
        "2026-03-09T13:00:00.000+00:00"
    )
    # Mon 10:00 to 15:00 CET = 2 h (10-12) + 2 h (13-15)
    assert cal.elapsed(ms("2026-03-09T10:00:00+01:00"), ms("2026-03-09T15:00:00+01:00")) == 4 * H


def test_start_outside_hours() -> None:
    # Sat 2026-03-07 12:00 + 30 m -> Mon 09:30 CET = 08:30Z
    assert iso(office().instant_after(ms("2026-03-07T12:00:00+01:00"), 30 * M)) == (
        "2026-03-09T08:30:00.000+00:00"
    )


def test_holidays() -> None:
    cal = office()
    # Wed 2026-12-23 16:00 CET + 2 h = 1 h Wed, Thu 24 + Fri 25 holidays, weekend,
    # 1 h Mon 28 09-10 -> Mon 10:00 CET = 09:00Z
    assert iso(cal.instant_after(ms("2026-12-23T16:00:00+01:00"), 2 * H)) == (
        "2026-12-28T09:00:00.000+00:00"
    )
    # Wed 23 00:00 to Tue 29 00:00 = 8 h (Wed) + 0 + 0 + 0 + 0 + 7 h (Mon with lunch)
    assert cal.elapsed(ms("2026-12-23T00:00:00+01:00"), ms("2026-12-29T00:00:00+01:00")) == 15 * H


def test_milliseconds_are_exact() -> None:
    # Fri 16:59:59.999 CET + 2 ms = 1 ms Friday + 1 ms from Mon 09:00 CET -> 08:00:00.001Z
    assert iso(office().instant_after(ms("2026-03-06T16:59:59.999+01:00"), 2)) == (
        "2026-03-09T08:00:00.001+00:00"
    )


def test_amount_zero_is_the_start_and_negative_is_refused() -> None:
    saturday = ms("2026-03-07T12:00:00+01:00")
    assert office().instant_after(saturday, 0) == saturday
    with pytest.raises(ValueError):
        office().instant_after(saturday, -1)
    assert office().elapsed(saturday, saturday - H) == 0


def test_24_00_ends_the_day() -> None:
    late = Calendar("late", "UTC", (((1200, 1440),), ((0, 120),), *((),) * 5)).working_time()
    # Mon 20:00-24:00 and Tue 00:00-02:00 touch: Mon 23:00 + 2 h -> Tue 01:00 without a gap
    assert iso(late.instant_after(ms("2026-03-09T23:00:00+00:00"), 2 * H)) == (
        "2026-03-10T01:00:00.000+00:00"
    )
    # Mon 22:00 + 2 h is reached at the end of Monday's interval, Tue 00:00
    assert iso(late.instant_after(ms("2026-03-09T22:00:00+00:00"), 2 * H)) == (
        "2026-03-10T00:00:00.000+00:00"
    )
    assert late.elapsed(ms("2026-03-09T00:00:00+00:00"), ms("2026-03-11T00:00:00+00:00")) == 6 * H


# -- DST ----------------------------------------------------------------------------------------


def test_spring_forward_business_hours() -> None:
    cal = office()
    # Fri 2026-03-27 16:00 CET + 2 h = 1 h Fri + Mon 30 09-10 CEST -> 10:00 CEST = 08:00Z
    assert iso(cal.instant_after(ms("2026-03-27T16:00:00+01:00"), 2 * H)) == (
        "2026-03-30T08:00:00.000+00:00"
    )
    # Fri 09:00 CET (08:00Z) to Mon 09:00 CEST (07:00Z): Friday's 8 h, nothing else
    assert cal.elapsed(ms("2026-03-27T09:00:00+01:00"), ms("2026-03-30T09:00:00+02:00")) == 8 * H


def test_fall_back_business_hours() -> None:
    # Fri 2026-10-23 16:00 CEST (14:00Z) + 2 h = 1 h Fri + Mon 26 09-10 CET -> 09:00Z
    assert iso(office().instant_after(ms("2026-10-23T16:00:00+02:00"), 2 * H)) == (
        "2026-10-26T09:00:00.000+00:00"
    )


def test_24x7_in_a_zone_counts_real_time_across_dst() -> None:
    berlin = Calendar("berlin", "Europe/Berlin", (((0, 1440),),) * 7).working_time()
    # Sat 28 Mar 00:00 CET (27 23:00Z) to Mon 30 00:00 CEST (29 22:00Z): 24 h + 23 h
    assert berlin.elapsed(ms("2026-03-28T00:00:00+01:00"), ms("2026-03-30T00:00:00+02:00")) == (
        47 * H
    )
    # Sun 29 Mar 00:00 CET + 24 h -> Mon 01:00 CEST = 29 23:00Z (the day had 23 h)
    assert iso(berlin.instant_after(ms("2026-03-29T00:00:00+01:00"), 24 * H)) == (
        "2026-03-29T23:00:00.000+00:00"
    )


def test_whole_days_in_a_zone_across_dst() -> None:
    # Sundays only, 00:00-24:00 Berlin: Sunday 29 March lasts 23 h, Sunday 25 October 25 h.
    cal = sunday_only((0, 1440))
    assert cal.elapsed(ms("2026-03-28T00:00:00+01:00"), ms("2026-04-01T00:00:00+02:00")) == 23 * H
    assert cal.elapsed(ms("2026-10-24T00:00:00+02:00"), ms("2026-10-27T00:00:00+01:00")) == 25 * H
    # Sun 29 Mar 00:00 CET + 23 h ends the day: Mon 00:00 CEST = 29 22:00Z
    sunday = ms("2026-03-29T00:00:00+01:00")
    assert iso(cal.instant_after(sunday, 23 * H)) == "2026-03-29T22:00:00.000+00:00"
    # ... and 1 ms more is the first ms of the next Sunday, 5 Apr 00:00 CEST = 4 Apr 22:00Z
    assert iso(cal.instant_after(sunday, 23 * H + 1)) == "2026-04-04T22:00:00.001+00:00"


def test_interval_starting_in_the_spring_gap_starts_when_clocks_jump() -> None:
    # 29 Mar: 02:00 does not exist, so it means 03:00 CEST = 01:00Z; 04:00 CEST = 02:00Z: 1 h
    cal = sunday_only((120, 240))
    day = ms("2026-03-29T00:00:00+01:00")
    assert cal.elapsed(day, day + 24 * H) == H
    assert iso(cal.instant_after(day, 30 * M)) == "2026-03-29T01:30:00.000+00:00"


def test_interval_inside_the_spring_gap_is_empty() -> None:
    # 02:15-02:45 never happens on 29 Mar; the next is Sun 5 Apr 02:15 CEST = 00:15Z
    cal = sunday_only((135, 165))
    assert iso(cal.instant_after(ms("2026-03-28T12:00:00+00:00"), M)) == (
        "2026-04-05T00:16:00.000+00:00"
    )


def test_repeated_wall_time_in_autumn_means_its_first_occurrence() -> None:
    day = ms("2026-10-25T00:00:00+02:00")
    # 02:30 first occurs at 02:30 CEST = 00:30Z; 03:30 is CET = 02:30Z: 2 h of real time
    assert sunday_only((150, 210)).elapsed(day, day + 25 * H) == 2 * H
    # 01:00 CEST (23:00Z) to the first 02:30 (00:30Z): 1.5 h
    assert sunday_only((60, 150)).elapsed(day, day + 25 * H) == 90 * M
    # adjacent intervals stay adjacent: 01:00-02:30 + 02:30-03:30 = 01:00 CEST to 03:30 CET
    both = sunday_only((60, 150), (150, 210))
    assert both.elapsed(day, day + 25 * H) == 3 * H + 30 * M


def test_new_york_dst() -> None:
    # America/New_York springs forward on 2026-03-08 02:00 EST -> 03:00 EDT.
    ny = Calendar("ny", "America/New_York", (((0, 1440),),) * 7).working_time()
    assert ny.elapsed(ms("2026-03-08T00:00:00-05:00"), ms("2026-03-09T00:00:00-04:00")) == 23 * H


def test_midnight_in_a_gap_starts_the_day_when_clocks_jump() -> None:
    # Chile springs forward at 24:00 on Sat 2026-09-05: Sunday 6 Sep begins at 01:00 -03
    # (= 04:00Z, the jump) and lasts 23 h.
    cal = sunday_only((0, 1440), zone="America/Santiago")
    saturday = ms("2026-09-05T12:00:00-04:00")
    assert cal.elapsed(saturday, saturday + 48 * H) == 23 * H
    assert iso(cal.instant_after(saturday, 1)) == "2026-09-06T04:00:00.001+00:00"


def test_a_date_that_never_happened_counts_nothing() -> None:
    # Samoa skipped Friday 2011-12-30; with Fridays only, the next working ms is
    # Fri 2012-01-06 00:00 +14:00 = 2012-01-05 10:00Z.
    fridays = Calendar("fri", "Pacific/Apia", (*((),) * 4, ((0, 1440),), (), ())).working_time()
    start = ms("2011-12-28T00:00:00+00:00")
    assert fridays.elapsed(start, start + 5 * 24 * H) == 0
    assert iso(fridays.instant_after(start, 1)) == "2012-01-05T10:00:00.001+00:00"


# -- exclusions ---------------------------------------------------------------------------------

MAINTENANCE = Exclusion("db", ms("2026-12-05T22:00:00+00:00"), ms("2026-12-06T02:00:00+00:00"))


def test_exclusion_on_24x7() -> None:
    cal = CALENDAR_24X7.working_time([MAINTENANCE])
    # 21:00Z + 2 h = 1 h before the window, 4 h skipped, 1 h after -> 03:00Z
    assert iso(cal.instant_after(ms("2026-12-05T21:00:00+00:00"), 2 * H)) == (
        "2026-12-06T03:00:00.000+00:00"
    )
    # a threshold reached exactly as the window opens fires then: 21:00Z + 1 h -> 22:00Z
    assert iso(cal.instant_after(ms("2026-12-05T21:00:00+00:00"), H)) == (
        "2026-12-05T22:00:00.000+00:00"
    )
    # starting inside the window: 23:00Z + 1 h -> 02:00Z + 1 h = 03:00Z
    assert iso(cal.instant_after(ms("2026-12-05T23:00:00+00:00"), H)) == (
        "2026-12-06T03:00:00.000+00:00"
    )
    # 20:00Z to 04:00Z: 8 h of wall time minus the 4 h window
    assert cal.elapsed(ms("2026-12-05T20:00:00+00:00"), ms("2026-12-06T04:00:00+00:00")) == 4 * H


def test_exclusion_overlapping_business_hours() -> None:
    # Mon 2026-12-07 10:00-14:00 CET excluded: Monday counts 09-10 and 14-17 = 4 h
    window = Exclusion("upgrade", ms("2026-12-07T10:00:00+01:00"), ms("2026-12-07T14:00:00+01:00"))
    cal = office(window)
    monday = ms("2026-12-07T00:00:00+01:00")
    assert cal.elapsed(monday, monday + 24 * H) == 4 * H
    # Mon 09:00 CET + 2 h = 1 h (09-10), window to 14:00, 1 h (14-15) -> 15:00 CET = 14:00Z
    assert iso(cal.instant_after(ms("2026-12-07T09:00:00+01:00"), 2 * H)) == (
        "2026-12-07T14:00:00.000+00:00"
    )


def test_overlapping_exclusions_are_merged() -> None:
    first = Exclusion("a", ms("2026-12-05T22:00:00+00:00"), ms("2026-12-06T01:00:00+00:00"))
    second = Exclusion("b", ms("2026-12-06T00:00:00+00:00"), ms("2026-12-06T02:00:00+00:00"))
    cal = CALENDAR_24X7.working_time([second, first])
    assert cal.elapsed(ms("2026-12-05T20:00:00+00:00"), ms("2026-12-06T04:00:00+00:00")) == 4 * H


def test_exclusion_applies_to_listed_services_only() -> None:
    scoped = Exclusion("db", 0, H, frozenset({"payments"}))
    assert scoped.applies_to("payments") and not scoped.applies_to("search")
    assert Exclusion("all", 0, H).applies_to("search")


# -- guards -------------------------------------------------------------------------------------


def test_instant_after_beyond_the_horizon_is_an_error() -> None:
    # one minute a week: 10 years hold about 522 minutes of working time
    cal = sunday_only((600, 601))
    with pytest.raises(CalendarHorizonError, match="not enough working time"):
        cal.instant_after(ms("2026-01-01T00:00:00+00:00"), 1000 * M)


def test_day_cache_is_bounded() -> None:
    cal = WorkingCalendar(OFFICE, (), cache_days=16)
    start = ms("2026-01-01T00:00:00+00:00")
    cal.elapsed(start, start + 200 * 24 * H)
    assert len(cal._days) <= 16
    assert cal.elapsed(start, start + 7 * 24 * H) == office().elapsed(start, start + 7 * 24 * H)


def test_always_on_detection() -> None:
    assert CALENDAR_24X7.always_on
    assert Calendar("split", "UTC", (((0, 600), (600, 1440)),) * 7).always_on
    assert not OFFICE.always_on
    assert not Calendar("h", "UTC", (((0, 1440),),) * 7, frozenset({date(2026, 1, 1)})).always_on
