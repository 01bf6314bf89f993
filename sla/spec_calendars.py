"""Validation of a policy file's `calendars:` and `exclusions:` sections.

Turns the written form (IANA timezone, weekday -> ["hh:mm-hh:mm", ...],
holiday dates, RFC 3339 exclusion windows) into `Calendar` and `Exclusion`
values, recording every problem on the shared `SpecReader`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sla.calendar import CALENDAR_24X7, WEEKDAYS, Calendar, Exclusion, Interval, parse_interval
from sla.spec_reader import Path, SpecReader

__all__ = ["read_calendars", "read_exclusions"]

CALENDAR_KEYS = ("timezone", "hours", "holidays")
EXCLUSION_KEYS = ("name", "start", "end", "services")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?")
_INSTANT_HINT = "use RFC 3339, e.g. 2026-12-05T22:00:00Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_calendars(reader: SpecReader, tree: Any) -> dict[str, Calendar]:
    """The file's calendars by name, with the built-in `24x7`."""
    calendars = {CALENDAR_24X7.name: CALENDAR_24X7}
    section = {} if tree is None else reader.mapping(("calendars",), tree)
    for name, body in (section or {}).items():
        path: Path = ("calendars", name)
        if name == CALENDAR_24X7.name:
            reader.problem(path, "24x7 is built in (UTC, always on); give yours another name")
            continue
        calendar = _calendar(reader, path, name, body)
        if calendar is not None:
            calendars[name] = calendar
    return calendars


def read_exclusions(reader: SpecReader, tree: Any) -> tuple[Exclusion, ...]:
    """The file's exclusion windows, in the order written."""
    items = [] if tree is None else reader.sequence(("exclusions",), tree, "[{name: ..., ...}]")
    found = (
        _exclusion(reader, ("exclusions", index), body) for index, body in enumerate(items or [])
    )
    return tuple(exclusion for exclusion in found if exclusion is not None)


def _calendar(reader: SpecReader, path: Path, name: str, tree: Any) -> Calendar | None:
    fields = reader.mapping(path, tree, CALENDAR_KEYS)
    if fields is None:
        return None
    zone = reader.required(path, fields, "timezone", "an IANA name such as Europe/Berlin")
    zone = None if zone is None else reader.text((*path, "timezone"), zone, "a timezone name")
    if zone is not None and not _timezone_exists(reader, (*path, "timezone"), zone):
        zone = None
    hours_tree = reader.required(path, fields, "hours", 'e.g. {mon: ["09:00-17:00"], ...}')
    hours = None if hours_tree is None else _weekly_hours(reader, (*path, "hours"), hours_tree)
    holidays = _holidays(reader, (*path, "holidays"), fields.get("holidays", []))
    if hours is not None and not any(hours):
        reader.problem(path, f"calendar {name!r} has no working hours")
        return None
    if zone is None or hours is None or holidays is None:
        return None
    return Calendar(name, zone, hours, holidays)


def _timezone_exists(reader: SpecReader, path: Path, name: str) -> bool:
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "use an IANA name such as Europe/Berlin"
        reader.problem(path, f"unknown timezone {name!r} ({hint})")
        return False


def _weekly_hours(
    reader: SpecReader, path: Path, tree: Any
) -> tuple[tuple[Interval, ...], ...] | None:
    days = reader.mapping(path, tree, WEEKDAYS)
    if days is None:
        return None
    week = [_day_hours(reader, (*path, weekday), days.get(weekday, [])) for weekday in WEEKDAYS]
    if any(day is None for day in week):
        return None
    return tuple(day or () for day in week)


def _day_hours(reader: SpecReader, path: Path, tree: Any) -> tuple[Interval, ...] | None:
    texts = reader.sequence(path, tree, '["09:00-12:00", "13:00-17:00"]')
    if texts is None:
        return None
    seen: list[tuple[Interval, str]] = []
    valid = True
    for index, text in enumerate(texts):
        try:
            if not isinstance(text, str):
                raise ValueError(f"expected hh:mm-hh:mm, got {text!r}")
            interval = parse_interval(text)
        except ValueError as exc:
            reader.problem((*path, index), str(exc))
            valid = False
            continue
        for other, other_text in seen:
            if interval[0] < other[1] and other[0] < interval[1]:
                reader.problem((*path, index), f"{text!r} overlaps {other_text!r}")
                valid = False
        seen.append((interval, text))
    return tuple(sorted(interval for interval, _ in seen)) if valid else None


def _holidays(reader: SpecReader, path: Path, tree: Any) -> frozenset[date] | None:
    texts = reader.sequence(path, tree, '["2026-12-24", "2026-12-25"]')
    if texts is None:
        return None
    days: set[date] = set()
    valid = True
    for index, text in enumerate(texts):
        try:
            if not (isinstance(text, str) and _DATE.fullmatch(text.strip())):
                raise ValueError
            days.add(date.fromisoformat(text.strip()))
        except ValueError:
            reader.problem((*path, index), f"{text!r} is not a date (use YYYY-MM-DD)")
            valid = False
    return frozenset(days) if valid else None


def _exclusion(reader: SpecReader, path: Path, tree: Any) -> Exclusion | None:
    fields = reader.mapping(path, tree, EXCLUSION_KEYS)
    if fields is None:
        return None
    name = reader.required(path, fields, "name", "what the window is for")
    name = None if name is None else reader.text((*path, "name"), name, "a name")
    start = _instant(reader, path, fields, "start")
    end = _instant(reader, path, fields, "end")
    services: frozenset[str] | None = None
    if "services" in fields:
        listed = reader.texts((*path, "services"), fields["services"], "[payments]", "a service")
        if listed is None:
            return None
        services = frozenset(listed)
    if start is not None and end is not None and end <= start:
        reader.problem((*path, "end"), f"{fields['end']!r} is not after start {fields['start']!r}")
        return None
    if name is None or start is None or end is None:
        return None
    return Exclusion(name, start, end, services)


def _instant(reader: SpecReader, path: Path, fields: Mapping[str, Any], key: str) -> int | None:
    """An RFC 3339 timestamp with a UTC offset, as epoch milliseconds."""
    text = reader.required(path, fields, key, _INSTANT_HINT)
    if text is None:
        return None
    written = text.strip() if isinstance(text, str) else ""
    try:
        if not _INSTANT.fullmatch(written):
            raise ValueError
        moment = datetime.fromisoformat(written.upper().replace("Z", "+00:00"))
    except ValueError:
        reader.problem((*path, key), f"{text!r} is not a time ({_INSTANT_HINT})")
        return None
    if moment.tzinfo is None:
        reader.problem((*path, key), f"{text!r} has no UTC offset (add Z or e.g. +01:00)")
        return None
    return (moment - _EPOCH) // timedelta(milliseconds=1)
