"""Working-time calendars: what an SLA clock counts.

A `Calendar` is weekly hours in an IANA timezone minus holidays (local dates);
`WorkingCalendar` adds the exclusion windows (UTC instants) that apply to a
service and implements `sla.model.WorkingTime` on epoch milliseconds.

Hours and windows are half-open, [start, end); `24:00` ends a day. Counted
time is real elapsed time, so a working day that spans a DST change lasts 23
or 25 hours. Local wall times become instants by one rule, chosen so that
the mapping never runs backwards (adjacent intervals stay adjacent):

- a wall time that occurs twice (autumn overlap) means its FIRST occurrence
  (zoneinfo `fold=0`): on 2026-10-25 in Europe/Berlin, 02:30 is 00:30Z;
- a wall time that does not exist (spring gap) means the instant the clocks
  jump, the first instant whose wall time is later: on 2026-03-29 in
  Europe/Berlin, 02:30 is 01:00Z (= 03:00 CEST), so "02:00-04:00" counts 1 h.

Each local date's working intervals are computed once, as UTC milliseconds,
and kept in a bounded cache; arithmetic jumps from interval to interval. An
always-on calendar (every day 00:00-24:00, no holidays) skips dates entirely.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sla.errors import SlamonError

__all__ = [
    "WEEKDAYS",
    "Interval",
    "Exclusion",
    "Calendar",
    "WorkingCalendar",
    "CalendarHorizonError",
    "CALENDAR_24X7",
    "HORIZON_DAYS",
    "parse_clock",
    "parse_interval",
]

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY: Final = 1440
DAY_MS: Final = 86_400_000
HORIZON_DAYS: Final = 3_660  # instant_after gives up after ten years of calendar dates
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_MS: Final = timedelta(milliseconds=1)
_FAR: Final = 2**62  # beyond every instant

Interval = tuple[int, int]  # minutes of a local day, [start, end), 0 <= start < end <= 1440


class CalendarHorizonError(SlamonError, ValueError):
    """instant_after found no working time within HORIZON_DAYS of its start."""


def parse_clock(text: str) -> int:
    """`"09:30"` -> 570 minutes; `"24:00"` -> 1440. ValueError if not a wall-clock time."""
    hh, sep, mm = text.partition(":")
    if not (sep and len(hh) == 2 and len(mm) == 2 and hh.isdigit() and mm.isdigit()):
        raise ValueError(f"{text!r} is not a time of day (use hh:mm, e.g. 09:00)")
    hours, minutes = int(hh), int(mm)
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def parse_interval(text: str) -> Interval:
    """`"09:00-12:00"` -> (540, 720). ValueError if malformed, empty or backwards."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not an interval (use hh:mm-hh:mm, e.g. 09:00-17:00)")
    first, last = parse_clock(start.strip()), parse_clock(end.strip())
    if first == MINUTES_PER_DAY:
        raise ValueError(f"{text!r} starts at 24:00; use 00:00 of the next day")
    if last <= first:
        raise ValueError(f"{text!r} ends at or before its start")
    return first, last


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A window of planned maintenance, [start_ms, end_ms), not counted by clocks."""

    name: str
    start_ms: int
    end_ms: int
    services: frozenset[str] | None = None  # None: every service

    def applies_to(self, service: str) -> bool:
        return self.services is None or service in self.services


@dataclass(frozen=True, slots=True)
class Calendar:
    """Weekly working hours in an IANA timezone, minus holidays (local dates)."""

    name: str
    timezone: str
    hours: tuple[tuple[Interval, ...], ...]  # seven days, Monday first; sorted, disjoint
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def always_on(self) -> bool:
        """True when every instant is working time (before exclusions)."""
        full = ((0, MINUTES_PER_DAY),)
        return not self.holidays and all(_merge(day) == full for day in self.hours)

    @property
    def weekly_minutes(self) -> int:
        return sum(end - start for day in self.hours for start, end in day)

    def working_time(self, exclusions: Iterable[Exclusion] = ()) -> WorkingCalendar:
        """This calendar's counted time, minus the given exclusion windows."""
        return WorkingCalendar(self, exclusions)


CALENDAR_24X7: Final = Calendar("24x7", "UTC", (((0, MINUTES_PER_DAY),),) * 7)


def _merge(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted union of half-open intervals, touching ones joined, empty ones dropped."""
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((start, end) for start, end in merged)


# A local date's working time: (day_start_ms, day_end_ms, starts, ends, total_ms).
_Day = tuple[int, int, tuple[int, ...], tuple[int, ...], int]


class WorkingCalendar:
    """A calendar minus exclusion windows; implements sla.model.WorkingTime in epoch ms."""

    __slots__ = (
        "calendar",
        "exclusions",
        "_tz",
        "_guess_ms",
        "_always_on",
        "_ex_starts",
        "_ex_ends",
        "_ex_first",
        "_ex_last",
        "_days",
        "_max_days",
    )

    def __init__(
        self, calendar: Calendar, exclusions: Iterable[Exclusion] = (), *, cache_days: int = 4096
    ) -> None:
        self.calendar = calendar
        self.exclusions = tuple(sorted(exclusions, key=lambda x: (x.start_ms, x.end_ms, x.name)))
        self._tz = ZoneInfo(calendar.timezone)
        offset = datetime(2000, 1, 1, tzinfo=self._tz).utcoffset() or timedelta()
        self._guess_ms = offset // _MS
        self._always_on = calendar.always_on
        windows = _merge((x.start_ms, x.end_ms) for x in self.exclusions)
        self._ex_starts = [start for start, _ in windows]
        self._ex_ends = [end for _, end in windows]
        # No exclusion before _ex_first nor from _ex_last on: a span outside [first, last)
        # needs no search (with no exclusions, every span is outside).
        self._ex_first = windows[0][0] if windows else _FAR
        self._ex_last = windows[-1][1] if windows else -_FAR
        self._days: dict[int, _Day] = {}
        self._max_days = cache_days

    @property
    def name(self) -> str:
        return self.calendar.name

    def __repr__(self) -> str:
        names = ", ".join(x.name for x in self.exclusions)
        return f"WorkingCalendar({self.calendar.name!r}, exclusions=[{names}])"

    # -- WorkingTime ------------------------------------------------------------------------

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Working milliseconds in [start_ms, end_ms); 0 when end_ms <= start_ms."""
        if end_ms <= start_ms:
            return 0
        if self._always_on:
            if end_ms <= self._ex_first or start_ms >= self._ex_last:
                return end_ms - start_ms
            return end_ms - start_ms - self._excluded(start_ms, end_ms)
        first, day = self._locate(start_ms)
        last, last_day = self._locate(end_ms)
        if first == last:
            return _clip(day, start_ms, end_ms)
        total = _clip(day, start_ms, day[1]) + _clip(last_day, last_day[0], end_ms)
        days = self._days
        for number in range(first + 1, last):
            between = days.get(number) or self._day(number)
            total += between[4]
        return total

    def instant_after(self, start_ms: int, amount_ms: int) -> int:
        """Earliest instant t >= start_ms with elapsed(start_ms, t) == amount_ms."""
        if amount_ms <= 0:
            if amount_ms == 0:
                return start_ms
            raise ValueError(f"amount of working time must not be negative: {amount_ms} ms")
        if self._always_on:
            if start_ms + amount_ms <= self._ex_first or start_ms >= self._ex_last:
                return start_ms + amount_ms
            return self._after_exclusions(start_ms, amount_ms)
        number, day = self._locate(start_ms)
        remaining = amount_ms
        for begin, end in zip(day[2], day[3], strict=True):
            if end <= start_ms:
                continue
            begin = max(begin, start_ms)
            if end - begin >= remaining:
                return begin + remaining
            remaining -= end - begin
        return self._after_days(number, remaining, start_ms)

    # -- internals --------------------------------------------------------------------------

    def _after_days(self, number: int, remaining: int, start_ms: int) -> int:
        """Walk whole local dates after `number` until `remaining` ms of working time pass."""
        days = self._days
        for number in range(number + 1, number + 1 + HORIZON_DAYS):  # noqa: B020
            day = days.get(number) or self._day(number)
            if day[4] < remaining:
                remaining -= day[4]
                continue
            for begin, end in zip(day[2], day[3], strict=True):
                if end - begin >= remaining:
                    return begin + remaining
                remaining -= end - begin
        raise CalendarHorizonError(
            f"calendar {self.calendar.name!r} has not enough working time within "
            f"{HORIZON_DAYS} days after {_iso(start_ms)}"
        )

    def _excluded(self, start_ms: int, end_ms: int) -> int:
        """Milliseconds of [start_ms, end_ms) inside exclusion windows."""
        starts, ends = self._ex_starts, self._ex_ends
        total = 0
        index = bisect_right(ends, start_ms)
        while index < len(starts) and starts[index] < end_ms:
            total += min(ends[index], end_ms) - max(starts[index], start_ms)
            index += 1
        return total

    def _after_exclusions(self, start_ms: int, amount_ms: int) -> int:
        """instant_after for an always-on calendar: skip over the exclusion windows."""
        starts, ends = self._ex_starts, self._ex_ends
        instant, remaining = start_ms, amount_ms
        index = bisect_right(ends, instant)
        while index < len(starts):
            gap = starts[index] - instant
            if gap > 0:
                if gap >= remaining:
                    return instant + remaining
                remaining -= gap
            instant = max(instant, ends[index])
            index += 1
        return instant + remaining

    def _locate(self, instant_ms: int) -> tuple[int, _Day]:
        """The local date (days since 1970-01-01) holding the instant, and its working time."""
        number = (instant_ms + self._guess_ms) // DAY_MS
        days = self._days
        day = days.get(number) or self._day(number)
        while instant_ms < day[0]:
            number -= 1
            day = days.get(number) or self._day(number)
        while instant_ms >= day[1]:
            number += 1
            day = days.get(number) or self._day(number)
        return number, day

    def _day(self, number: int) -> _Day:
        """Compute and cache the working intervals of local date `number` as UTC ms."""
        local = date.fromordinal(_EPOCH_ORDINAL + number)
        day_start = self._wall_ms(local, 0)
        day_end = self._wall_ms(local, MINUTES_PER_DAY)
        pieces: list[tuple[int, int]] = []
        if local not in self.calendar.holidays:
            for first, last in self.calendar.hours[local.weekday()]:
                begin, end = self._wall_ms(local, first), self._wall_ms(local, last)
                pieces.extend(self._subtract_exclusions(begin, end))
        merged = _merge(pieces)
        day: _Day = (
            day_start,
            day_end,
            tuple(begin for begin, _ in merged),
            tuple(end for _, end in merged),
            sum(end - begin for begin, end in merged),
        )
        if len(self._days) >= self._max_days:
            del self._days[next(iter(self._days))]  # forget the oldest date computed
        self._days[number] = day
        return day

    def _subtract_exclusions(self, begin: int, end: int) -> list[tuple[int, int]]:
        starts, ends = self._ex_starts, self._ex_ends
        pieces: list[tuple[int, int]] = []
        index = bisect_right(ends, begin)
        while begin < end and index < len(starts) and starts[index] < end:
            if starts[index] > begin:
                pieces.append((begin, starts[index]))
            begin = max(begin, ends[index])
            index += 1
        if begin < end:
            pieces.append((begin, end))
        return pieces

    def _wall_ms(self, local: date, minute: int) -> int:
        """The instant of a local wall time, by the overlap and gap rule in the module doc."""
        naive = datetime(local.year, local.month, local.day) + timedelta(minutes=minute)
        aware = naive.replace(tzinfo=self._tz)  # fold=0: the first of a repeated wall time
        instant = (aware - _EPOCH) // _MS
        if (_EPOCH + instant * _MS).astimezone(self._tz).replace(tzinfo=None) == naive:
            return instant
        # In a gap, fold=0 reads the wall time with the offset before the jump and fold=1 with
        # the offset after it; the jump lies between the two readings.
        earlier = (aware.replace(fold=1) - _EPOCH) // _MS
        return self._transition(min(earlier, instant), max(earlier, instant))

    def _transition(self, low: int, high: int) -> int:
        """The first instant in (low, high] whose UTC offset differs from low's."""
        offset_low = self._offset(low)
        while high - low > 1:
            middle = (low + high) // 2
            if self._offset(middle) == offset_low:
                low = middle
            else:
                high = middle
        return high

    def _offset(self, instant_ms: int) -> timedelta | None:
        return (_EPOCH + instant_ms * _MS).astimezone(self._tz).utcoffset()


def _clip(day: _Day, start_ms: int, end_ms: int) -> int:
    """Working milliseconds of one date's intervals inside [start_ms, end_ms)."""
    total = 0
    for begin, end in zip(day[2], day[3], strict=True):
        if end <= start_ms:
            continue
        if begin >= end_ms:
            break
        total += min(end, end_ms) - max(begin, start_ms)
    return total


def _iso(instant_ms: int) -> str:
    return (_EPOCH + instant_ms * _MS).isoformat().replace("+00:00", "Z")
