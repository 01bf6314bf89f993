"""What changed between two policy files: their checked specs compared term by term.

`diff_policies(old, new)` compares two `PolicySpec`s (the parsed, checked files, before
the levels are merged) and lists each changed term once, at the place in the file where
it is written: `customers.acme.targets.P2.response: 2h -> 1h`, a holiday added to
`calendars.office-berlin.holidays`, an exclusion moved, a credit tier changed. It is
the "terms" half of `slamon review` (the other half replays history under both files).

Comparing the specs rather than the merged terms keeps each change where a person wrote
it: one target changed at `corporate` is one line, not one per customer it reaches.
Values are given as text a person reads (`1h30m`, `below 99%: 5%`), None where the term
is not set in that file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from sla.calendar import WEEKDAYS, Calendar, Exclusion
from sla.duration import format_duration
from sla.events import format_ts
from sla.model import CreditTier, MetricDef
from sla.policy_spec import LevelSpec, PolicySpec

__all__ = ["TermChange", "Topic", "diff_policies", "format_credits"]

# What a change is about: the brief's targets, calendars, exclusions, warnings and credits,
# plus the rest of a policy file (pausable metrics, metric definitions, the version).
Topic = Literal["version", "metrics", "calendars", "exclusions", "targets", "warnings",
                "pausable", "credits"]


@dataclass(frozen=True, slots=True)
class TermChange:
    """One term that differs: where it is written, its old and new value (None: not set)."""

    topic: Topic
    where: str
    old: str | None
    new: str | None

    @property
    def change(self) -> Literal["added", "removed", "changed"]:
        if self.old is None:
            return "added"
        return "removed" if self.new is None else "changed"


def diff_policies(old: PolicySpec, new: PolicySpec) -> list[TermChange]:
    """Every term that differs between `old` and `new`, in the order of a policy file."""
    changes: list[TermChange] = []
    if old.version != new.version:
        changes.append(TermChange("version", "version", str(old.version), str(new.version)))
    changes += _metrics(old.metrics, new.metrics)
    changes += _calendars(old.calendars, new.calendars)
    changes += _exclusions(old.exclusions, new.exclusions)
    changes += _level("corporate", old.corporate, new.corporate)
    for name in _names(old.services, new.services):
        changes += _level(f"services.{name}", old.services.get(name), new.services.get(name))
    for customer in _names(old.customers, new.customers):
        changes += _level(f"customers.{customer}", old.customers.get(customer),
                          new.customers.get(customer))
        pairs = {pair for pair in (*old.customer_services, *new.customer_services)
                 if pair[0] == customer}
        for pair in sorted(pairs):
            changes += _level(f"customers.{customer}.services.{pair[1]}",
                              old.customer_services.get(pair), new.customer_services.get(pair))
    return changes


def format_credits(tiers: Iterable[CreditTier]) -> str:
    """Credit tiers as text: `below 99%: 5%; below 95%: 10%` (`none` for no tiers)."""
    text = "; ".join(f"below {_percent(t.below)}: {_percent(t.credit)}" for t in tiers)
    return text or "none"


# -- the parts of a file ------------------------------------------------------------------------

def _names(old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    return sorted(set(old) | set(new))


def _pair(topic: Topic, where: str, old: str | None, new: str | None) -> list[TermChange]:
    return [] if old == new else [TermChange(topic, where, old, new)]


def _metrics(old: tuple[MetricDef, ...], new: tuple[MetricDef, ...]) -> list[TermChange]:
    before = {metric.name: metric for metric in old}
    after = {metric.name: metric for metric in new}
    changes: list[TermChange] = []
    for name in _names(before, after):
        was, now = before.get(name), after.get(name)
        if was != now:
            changes.append(TermChange("metrics", f"metrics.{name}",
                                      None if was is None else _metric_text(was),
                                      None if now is None else _metric_text(now)))
    return changes


def _metric_text(metric: MetricDef) -> str:
    sets = [f"{name}: {', '.join(sorted(types))}" for name, types in (
        ("start", metric.start), ("stop", metric.stop), ("pause", metric.pause),
        ("resume", metric.resume), ("cancel", metric.cancel), ("reopen", metric.reopen))
        if types]
    return "; ".join([*sets, f"on_reopen: {metric.on_reopen}", f"cycles: {metric.cycles}"])


def _calendars(old: Mapping[str, Calendar], new: Mapping[str, Calendar]) -> list[TermChange]:
    changes: list[TermChange] = []
    for name in _names(old, new):
        was, now = old.get(name), new.get(name)
        where = f"calendars.{name}"
        if was is None or now is None:
            changes.append(TermChange("calendars", where,
                                      None if was is None else _calendar_text(was),
                                      None if now is None else _calendar_text(now)))
            continue
        changes += _pair("calendars", f"{where}.timezone", was.timezone, now.timezone)
        for day, before, after in zip(WEEKDAYS, was.hours, now.hours, strict=True):
            changes += _pair("calendars", f"{where}.hours.{day}", _hours_text(before),
                             _hours_text(after))
        for holiday in sorted(was.holidays - now.holidays):
            changes.append(TermChange("calendars", f"{where}.holidays", holiday.isoformat(), None))
        for holiday in sorted(now.holidays - was.holidays):
            changes.append(TermChange("calendars", f"{where}.holidays", None, holiday.isoformat()))
    return changes


def _calendar_text(calendar: Calendar) -> str:
    days = [f"{day} {_hours_text(hours)}" for day, hours in zip(WEEKDAYS, calendar.hours,
                                                                 strict=True) if hours]
    text = f"{calendar.timezone}; {', '.join(days) or 'no working hours'}"
    if calendar.holidays:
        text += f"; {len(calendar.holidays)} holidays"
    return text


def _hours_text(hours: tuple[tuple[int, int], ...]) -> str:
    if not hours:
        return "closed"
    return ", ".join(f"{_clock(start)}-{_clock(end)}" for start, end in hours)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _exclusions(old: tuple[Exclusion, ...], new: tuple[Exclusion, ...]) -> list[TermChange]:
    before = {exclusion.name: exclusion for exclusion in old}
    after = {exclusion.name: exclusion for exclusion in new}
    changes: list[TermChange] = []
    for name in _names(before, after):
        was, now = before.get(name), after.get(name)
        changes += _pair("exclusions", f"exclusions.{name}",
                         None if was is None else _exclusion_text(was),
                         None if now is None else _exclusion_text(now))
    return changes


def _exclusion_text(exclusion: Exclusion) -> str:
    services = ("every service" if exclusion.services is None
                else ", ".join(sorted(exclusion.services)))
    return f"{format_ts(exclusion.start_ms)} to {format_ts(exclusion.end_ms)} ({services})"


def _level(where: str, old: LevelSpec | None, new: LevelSpec | None) -> list[TermChange]:
    """The fields of one level (absent in a file: every field not set)."""
    was, now = old or LevelSpec(), new or LevelSpec()
    changes = _pair("calendars", f"{where}.calendar", was.calendar, now.calendar)
    changes += _pair("warnings", f"{where}.warn_at", _optional(was.warn_at, _fractions),
                     _optional(now.warn_at, _fractions))
    changes += _pair("pausable", f"{where}.pausable", _optional(was.pausable, _metric_names),
                     _optional(now.pausable, _metric_names))
    for priority in _names(was.targets, now.targets):
        before, after = was.targets.get(priority, {}), now.targets.get(priority, {})
        for metric in _names(before, after):
            changes += _pair("targets", f"{where}.targets.{priority}.{metric}",
                             _target(before, metric), _target(after, metric))
    changes += _pair("credits", f"{where}.credits", _optional(was.credits, format_credits),
                     _optional(now.credits, format_credits))
    return changes


_T = TypeVar("_T")


def _optional(value: _T | None, text: Callable[[_T], str]) -> str | None:
    return None if value is None else text(value)


def _fractions(values: tuple[float, ...]) -> str:
    return ", ".join(_number(value) for value in values) or "none"


def _metric_names(names: frozenset[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _target(targets: Mapping[str, int | None], metric: str) -> str | None:
    if metric not in targets:
        return None
    seconds = targets[metric]
    return "null (no target)" if seconds is None else format_duration(seconds)


def _percent(value: float) -> str:
    return f"{_number(value * 100)}%"


def _number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"
