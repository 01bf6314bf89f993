"""Service events: validation of a decoded JSON object into an `Event`, and time formats.

An event arrives as a plain mapping (the codec outside `sla/` decodes bytes);
`parse_event` checks it against DESIGN.md's schema and raises `InvalidEvent`
with a reason code (bounded, for metrics) and a message a person understands.

Times are RFC 3339 with an offset (`2026-11-29T10:00:00Z`, `...T11:00:00.5+01:00`) or
epoch milliseconds, nothing else: Python's ISO 8601 reader alone would also take a space
for the `T`, an offset with seconds, week dates and basic format. An event stamped
further ahead than the caller allows (`not_after`, the caller's clock plus max_future)
is rejected as `future_ts`: it would move the event-time watermark and close compliance
windows early. This module has no clock: the worker passes its wall clock, replay its
--as-of.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple, overload

from sla.errors import InvalidEvent

__all__ = ["Event", "Survey", "SURVEY", "parse_event", "parse_ts", "format_ts", "MIN_TS_MS"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE: Final = date(1970, 1, 1)
_MS: Final = timedelta(milliseconds=1)
MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01: anything earlier is epoch seconds by mistake
MAX_TS_MS: Final = 7_258_118_400_000  # 2200-01-01
# RFC 3339 date-time (section 5.6): full-date "T" full-time, the offset required.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)
_LOCAL_TIME = re.compile(  # the same without an offset, for a clearer message
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?", re.ASCII)


class Survey(NamedTuple):
    """A customer-satisfaction answer: `score` on the scale [scale_min, scale_max]; scores
    at or above `positive_from` are positive. The comment a survey may carry is not kept."""

    score: float
    scale_min: float
    scale_max: float
    positive_from: float

    @property
    def positive(self) -> bool:
        return self.score >= self.positive_from

    @property
    def score_ratio(self) -> float:
        """The score on 0..1 (scale_min -> 0, scale_max -> 1): scales can then be averaged."""
        return (self.score - self.scale_min) / (self.scale_max - self.scale_min)


class Event(NamedTuple):
    """One service event, times in epoch milliseconds. `ref` locates its source (line, offset);
    `survey` is set on a `survey` event only."""

    event_id: str
    ticket_id: str
    type: str
    ts: int
    service: str | None = None
    customer: str | None = None
    priority: str | None = None
    ref: int | None = None
    survey: Survey | None = None


def parse_ts(value: Any, field: str = "ts") -> int:
    """RFC 3339 with an offset, or epoch milliseconds -> epoch milliseconds."""
    if isinstance(value, str):
        ms = _text_ms(value, field)
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    else:
        raise InvalidEvent("bad_type",
                           f"{field}: expected an RFC 3339 string or epoch milliseconds")
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        hint = " (epoch seconds? ts takes milliseconds)" if 0 < ms < MIN_TS_MS else ""
        raise InvalidEvent("bad_timestamp", f"{field}: {value!r} is out of range{hint}")
    return ms


# parse_ts keeps the instant of each minute it has read in a UTC time ("Z"), by its text
# "YYYY-MM-DDTHH:MM:": events come roughly in time order, so one minute serves many events,
# and the rest of a time written the usual way ("SSZ" or "SS.fffZ") is looked up in tables
# instead of being matched and parsed. A prefix is kept only once its whole time passed the
# full check below, and the tables hold only valid rests (seconds 00-59), so a time the
# lookup takes is one the full check takes too, with the same instant. The cache is cleared
# when full.
_MINUTE_MS_CACHE_SIZE: Final = 8192
_minute_ms: Final[dict[str, int]] = {}  # "YYYY-MM-DDTHH:MM:" -> epoch ms of that minute (UTC)
_SECOND_MS: Final = {f"{second:02d}": second * 1000 for second in range(60)}
_REST_MS: Final = {"Z": 0, **{f".{milli:03d}Z": milli for milli in range(1000)}}


def _text_ms(value: str, field: str) -> int:
    minute = _minute_ms.get(value[:17])
    if minute is not None:
        second = _SECOND_MS.get(value[17:19])
        rest = _REST_MS.get(value[19:])
        if second is not None and rest is not None:
            return minute + second + rest
    return _read_text_ms(value, field)


def _read_text_ms(value: str, field: str) -> int:
    """The full check of an RFC 3339 time (and the minute cache's filling)."""
    if not _RFC3339.fullmatch(value):
        if _LOCAL_TIME.fullmatch(value):
            raise InvalidEvent("bad_timestamp", f"{field}: {value!r} has no UTC offset")
        raise InvalidEvent("bad_timestamp", f"{field}: {value!r} is not an RFC 3339 time "
                                            "(like 2026-11-29T10:00:00Z)")
    try:
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        raise InvalidEvent("bad_timestamp",
                           f"{field}: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise InvalidEvent("bad_timestamp", f"{field}: {value!r} has no UTC offset")
    ms = (moment - EPOCH) // _MS
    if value[-1] in "Zz":  # the minute's text is UTC: keep its instant
        if len(_minute_ms) >= _MINUTE_MS_CACHE_SIZE:
            _minute_ms.clear()
        _minute_ms[str(value[:17])] = ms - moment.second * 1000 - moment.microsecond // 1000
    return ms


# format_ts caches the text of each minute, "YYYY-MM-DDTHH:MM:", and of each day: outputs
# come roughly in time order, so one minute serves many instants and the date arithmetic
# runs once per day. The rest comes from tables, as formatting with a spec ({:02d}) costs
# five times as much as looking a string up. The caches are cleared when full.
_MINUTE_CACHE_SIZE: Final = 8192
_minute_text: Final[dict[int, str]] = {}  # minute number since the epoch -> "YYYY-MM-DDTHH:MM:"
_day_text: Final[dict[int, str]] = {}  # day number since the epoch -> "YYYY-MM-DD"
_TWO_DIGITS: Final = tuple(f"{number:02d}" for number in range(60))
# No ".000" on whole seconds.
_MILLIS: Final = ("Z", *(f".{milli:03d}Z" for milli in range(1, 1000)))


def format_ts(ms: int) -> str:
    """Epoch milliseconds -> RFC 3339 UTC, with milliseconds only when not whole seconds."""
    # `//` and `%` rather than divmod, which compiled goes through the generic number protocol
    # and a tuple.
    minute = ms // 60_000
    prefix = _minute_text.get(minute)
    if prefix is None:
        prefix = _format_minute(minute)
    rest = ms - minute * 60_000
    return f"{prefix}{_TWO_DIGITS[rest // 1000]}{_MILLIS[rest % 1000]}"


def _format_minute(minute: int) -> str:
    days = minute // 1440
    of_day = minute - days * 1440
    date_text = _day_text.get(days)
    if date_text is None:
        date_text = (_EPOCH_DATE + timedelta(days=days)).isoformat()
        if len(_day_text) >= _MINUTE_CACHE_SIZE:
            _day_text.clear()
        _day_text[days] = date_text
    prefix = f"{date_text}T{_TWO_DIGITS[of_day // 60]}:{_TWO_DIGITS[of_day % 60]}:"
    if len(_minute_text) >= _MINUTE_CACHE_SIZE:
        _minute_text.clear()
    _minute_text[minute] = prefix
    return prefix


@overload
def _text(obj: Mapping[str, Any], field: str, required: Literal[True]) -> str: ...


@overload
def _text(obj: Mapping[str, Any], field: str, required: bool) -> str | None: ...


def _text(obj: Mapping[str, Any], field: str, required: bool) -> str | None:
    """The non-empty string `field` of `obj`; None when absent and not `required`."""
    value = obj.get(field)
    if type(value) is str and value:  # the usual case, by the cheapest check
        return value
    if value is None:
        if required:
            raise InvalidEvent("missing_field", f"{field}: missing")
        return None
    if not isinstance(value, str) or not value:
        raise InvalidEvent("bad_type",
                           f"{field}: expected a non-empty string, got {value!r:.40}")
    return value


# Fields each event type must carry beyond the four every event has.
_REQUIRED: Final = {
    "opened": ("service", "customer", "priority"),
    "priority_changed": ("priority",),
}


# Built as `_tuple(Event, (...))` on the quick pass: what Event(...) does, without the
# Python-level __new__ in between.
_tuple: Final = tuple.__new__
# Per type: whether service, customer and priority are required (DESIGN.md's schema).
_NEEDS: Final = {kind: tuple(name in names for name in ("service", "customer", "priority"))
                 for kind, names in _REQUIRED.items()}
_NEEDS_NONE: Final = (False, False, False)


def parse_event(obj: Any, known_types: Collection[str], ref: int | None = None,
                not_after: int | None = None) -> Event:
    """Validate one decoded event; raise InvalidEvent (with its `code`) naming what is wrong.

    `not_after` (epoch ms) is the latest `ts` accepted: the caller's clock plus the future
    it tolerates; None accepts any time in range.

    A well-formed event (other than a survey, which has fields of its own) is taken by one
    pass of cheap checks; anything these do not accept outright goes through
    `_check_event`, which finds (and names) the first problem in the documented order, or
    accepts what the quick pass was unsure of.
    """
    if type(obj) is dict:
        # Typed: compiled, a dict's reads are then the dict's own, not a method looked up.
        fields: dict[str, Any] = obj
        try:
            event_id, ticket_id = fields["event_id"], fields["ticket_id"]
            kind, ts = fields["type"], fields["ts"]
        except KeyError:  # one is missing: the full check says which
            return _check_event(obj, known_types, ref, not_after)
        if (type(event_id) is str and event_id and type(ticket_id) is str and ticket_id
                and type(kind) is str and kind and kind in known_types and kind != SURVEY):
            if type(ts) is str:
                ts = _text_ms(ts, "ts")  # its error is the first the full check would find
            if (type(ts) is int and MIN_TS_MS <= ts < MAX_TS_MS
                    and (not_after is None or ts <= not_after)):
                service = fields.get("service")
                customer = fields.get("customer")
                priority = fields.get("priority")
                need_service, need_customer, need_priority = _NEEDS.get(kind, _NEEDS_NONE)
                attributes = fields.get("attributes")
                if ((type(service) is str and service or service is None and not need_service)
                        and (type(customer) is str and customer
                             or customer is None and not need_customer)
                        and (type(priority) is str and priority
                             or priority is None and not need_priority)
                        and (attributes is None or type(attributes) is dict)):
                    return _tuple(Event, (event_id, ticket_id, kind, ts, service, customer,
                                          priority, ref, None))
    return _check_event(obj, known_types, ref, not_after)


def _check_event(obj: Any, known_types: Collection[str], ref: int | None,
                 not_after: int | None) -> Event:
    """parse_event's full check, field by field in the documented order."""
    if not isinstance(obj, dict):
        raise InvalidEvent("bad_type", f"expected a JSON object, got {type(obj).__name__}")
    event_id = _text(obj, "event_id", True)
    ticket_id = _text(obj, "ticket_id", True)
    kind = _text(obj, "type", True)
    if "ts" not in obj:
        raise InvalidEvent("missing_field", "ts: missing")
    ts = parse_ts(obj["ts"])
    if not_after is not None and ts > not_after:
        raise InvalidEvent("future_ts", f"ts: {obj['ts']!r} is later than {format_ts(not_after)}, "
                                        "the latest time accepted now (setting max_future)")
    if kind not in known_types:
        raise InvalidEvent("unknown_type", f"type: unknown event type {kind!r}")
    needs = _REQUIRED.get(kind, ())
    attributes = obj.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise InvalidEvent("bad_type", "attributes: expected an object")
    return Event(
        event_id, ticket_id, kind, ts,
        _text(obj, "service", "service" in needs),
        _text(obj, "customer", "customer" in needs),
        _text(obj, "priority", "priority" in needs),
        ref,
        _survey(obj) if kind == SURVEY else None,
    )


SURVEY: Final = "survey"  # the event type of a customer-satisfaction answer


def _survey(obj: Mapping[str, Any]) -> Survey:
    """The survey fields of a `survey` event: score on a declared scale, optional threshold.

    Without `positive`, the top two points of the scale are positive (4 and 5 of 1..5, 9 and
    10 of 0..10) and, on a two-point scale (a good/bad rating, 0..1), the top one ("good").
    """
    score, low, high = (_number(obj, name) for name in ("score", "scale_min", "scale_max"))
    if high <= low:
        raise InvalidEvent("bad_survey", f"scale_max ({high:g}) must be above scale_min ({low:g})")
    if not low <= score <= high:
        raise InvalidEvent("bad_survey", f"score: {score:g} is outside the scale "
                                         f"{low:g}..{high:g}")
    positive = high - 1 if high - low >= 2 else high
    if obj.get("positive") is not None:
        positive = _number(obj, "positive")
        if not low <= positive <= high:
            raise InvalidEvent("bad_survey", f"positive: {positive:g} is outside the scale "
                                             f"{low:g}..{high:g}")
    comment = obj.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise InvalidEvent("bad_type", "comment: expected a string")
    return Survey(score, low, high, positive)


def _number(obj: Mapping[str, Any], field: str) -> float:
    value = obj.get(field)
    if value is None:
        raise InvalidEvent("missing_field", f"{field}: missing")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
            or value in (float("inf"), float("-inf")):
        raise InvalidEvent("bad_type", f"{field}: expected a number, got {value!r:.40}")
    return float(value)
