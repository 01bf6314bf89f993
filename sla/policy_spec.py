"""Validation of a policy file's tree into checked spec types (the versioned format).

`read_spec` takes the plain tree a parser produced (plus its path -> line map)
and returns a `PolicySpec`, or raises `PolicyError` listing every problem,
each as `file:line: path: reason`. Merging the levels into per-ticket terms
is `sla.policy`'s job; this module only checks and converts the fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sla.calendar import Calendar, Exclusion
from sla.duration import parse_duration
from sla.errors import PolicyError
from sla.model import DEFAULT_METRICS, CreditTier, MetricDef
from sla.spec_calendars import read_calendars, read_exclusions
from sla.spec_reader import Path, SpecReader, suggest

__all__ = ["LevelSpec", "PolicySpec", "read_spec"]

TOP_KEYS = ("version", "calendars", "exclusions", "corporate", "services", "customers", "metrics")
LEVEL_KEYS = ("calendar", "warn_at", "pausable", "targets")
CUSTOMER_KEYS = (*LEVEL_KEYS, "credits", "services")
CUSTOMER_SERVICE_KEYS = (*LEVEL_KEYS, "credits")
METRIC_SETS = ("start", "stop", "pause", "resume", "cancel", "reopen")
METRIC_KEYS = (*METRIC_SETS, "on_reopen", "cycles")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class LevelSpec:
    """One level's fields as written; None means "not set here, inherit"."""

    calendar: str | None = None
    warn_at: tuple[float, ...] | None = None
    pausable: frozenset[str] | None = None
    targets: Mapping[str, Mapping[str, int | None]] = field(default_factory=dict)  # None: removed
    credits: tuple[CreditTier, ...] | None = None


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A checked policy file, before the levels are merged."""

    version: int
    metrics: tuple[MetricDef, ...]
    calendars: Mapping[str, Calendar]  # includes the built-in 24x7
    exclusions: tuple[Exclusion, ...]
    corporate: LevelSpec
    services: Mapping[str, LevelSpec]
    customers: Mapping[str, LevelSpec]
    customer_services: Mapping[tuple[str, str], LevelSpec]  # (customer, service)


def read_spec(tree: Any, source: str, lines: Mapping[Path, int] | None = None) -> PolicySpec:
    """Check a parsed policy tree; PolicyError lists every problem found."""
    reader = SpecReader(source, lines)
    if tree is None:
        raise PolicyError(
            [f"{source}:1: the file is empty; a policy file needs at least 'version'"]
        )
    top = reader.mapping((), tree, TOP_KEYS)
    if top is None:
        raise PolicyError(reader.problems)
    version = _version(reader, top)
    metrics = _metrics(reader, top.get("metrics"))
    calendars = read_calendars(reader, top.get("calendars"))
    declared = top.get("calendars")
    names = set(calendars) | (set(declared) if isinstance(declared, Mapping) else set())
    context = _Context(reader, frozenset(m.name for m in metrics), frozenset(names))
    exclusions = read_exclusions(reader, top.get("exclusions"))
    corporate = context.level(("corporate",), top.get("corporate", {}), LEVEL_KEYS)
    services = context.levels(("services",), top.get("services"), LEVEL_KEYS)
    customers, customer_services = context.customers(top.get("customers"))
    if reader.problems or version is None:
        raise PolicyError(reader.problems)
    return PolicySpec(
        version, metrics, calendars, exclusions, corporate, services, customers, customer_services
    )


def _version(reader: SpecReader, top: Mapping[str, Any]) -> int | None:
    value = reader.required((), top, "version", "the policy format, e.g. 'version: 1' at the top")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        reader.problem(("version",), f"expected a whole number from 1 up, got {value!r}")
        return None
    return value


# -- metrics ---------------------------------------------------------------------------------


def _metrics(reader: SpecReader, tree: Any) -> tuple[MetricDef, ...]:
    """DEFAULT_METRICS, with the fields a `metrics:` section overrides, then the new metrics."""
    by_name = {metric.name: metric for metric in DEFAULT_METRICS}
    if tree is None:
        return DEFAULT_METRICS
    section = reader.mapping(("metrics",), tree)
    for name, body in (section or {}).items():
        path: Path = ("metrics", name)
        if not _NAME.fullmatch(name):
            reader.problem(path, "a metric name uses lower-case letters, digits and _")
            continue
        metric = _metric(reader, path, name, body, by_name.get(name))
        if metric is not None:
            by_name[name] = metric
    return tuple(by_name.values())


def _metric(
    reader: SpecReader, path: Path, name: str, tree: Any, base: MetricDef | None
) -> MetricDef | None:
    fields = reader.mapping(path, tree, METRIC_KEYS)
    if fields is None:
        return None
    sets: dict[str, frozenset[str]] = {}
    for key in METRIC_SETS:
        if key in fields:
            found = reader.texts((*path, key), fields[key], "[opened]", "an event type")
            sets[key] = frozenset(found or ())
        elif base is not None:
            sets[key] = getattr(base, key)
        elif key in ("start", "stop"):
            reader.problem(path, f"missing {key!r} (the event types that {key} the clock)")
        else:
            sets[key] = frozenset()
    for key in ("start", "stop"):
        if key in fields and not sets[key]:
            reader.problem((*path, key), f"name at least one event type that {key}s the clock")
    _check_disjoint(reader, path, sets)
    on_reopen = _option(reader, path, fields, "on_reopen", ("resume", "new_cycle"), base)
    cycles = _option(reader, path, fields, "cycles", ("once", "per_start"), base)
    if len(sets) < len(METRIC_SETS) or on_reopen is None or cycles is None:
        return None
    return MetricDef(
        name,
        sets["start"],
        sets["stop"],
        sets["pause"],
        sets["resume"],
        sets["cancel"],
        sets["reopen"],
        on_reopen=on_reopen,  # type: ignore[arg-type]  # checked against the Literal's values
        cycles=cycles,  # type: ignore[arg-type]
    )


def _option(
    reader: SpecReader,
    path: Path,
    fields: Mapping[str, Any],
    key: str,
    choices: tuple[str, ...],
    base: MetricDef | None,
) -> str | None:
    """A metric's `on_reopen` / `cycles`: as written, else the overridden default's, else first."""
    if key in fields:
        return reader.choice((*path, key), fields[key], choices)
    return getattr(base, key) if base is not None else choices[0]


def _check_disjoint(reader: SpecReader, path: Path, sets: Mapping[str, frozenset[str]]) -> None:
    keys = list(sets)
    for index, first in enumerate(keys):
        for second in keys[index + 1 :]:
            for event_type in sorted(sets[first] & sets[second]):
                reader.problem(path, f"event type {event_type!r} is in both {first} and {second}")


# -- levels ----------------------------------------------------------------------------------


class _Context:
    """Reads levels, checking names against the file's metrics and calendars."""

    def __init__(self, reader: SpecReader, metrics: frozenset[str], calendars: frozenset[str]):
        self.reader, self.metrics, self.calendars = reader, metrics, calendars

    def customers(self, tree: Any) -> tuple[dict[str, LevelSpec], dict[tuple[str, str], LevelSpec]]:
        customers: dict[str, LevelSpec] = {}
        per_service: dict[tuple[str, str], LevelSpec] = {}
        section = {} if tree is None else self.reader.mapping(("customers",), tree)
        for name, body in (section or {}).items():
            path: Path = ("customers", name)
            customers[name] = self.level(path, body, CUSTOMER_KEYS)
            services = body.get("services") if isinstance(body, Mapping) else None
            for service, level in self.levels(
                (*path, "services"), services, CUSTOMER_SERVICE_KEYS
            ).items():
                per_service[(name, service)] = level
        return customers, per_service

    def levels(self, path: Path, tree: Any, keys: tuple[str, ...]) -> dict[str, LevelSpec]:
        section = {} if tree is None else self.reader.mapping(path, tree)
        return {
            name: self.level((*path, name), body, keys) for name, body in (section or {}).items()
        }

    def level(self, path: Path, tree: Any, keys: tuple[str, ...]) -> LevelSpec:
        if isinstance(tree, Mapping) and "credits" in tree and "credits" not in keys:
            self.reader.problem(
                (*path, "credits"),
                "credits are owed to a customer: set them "
                "under customers.<name> or customers.<name>.services.<service>",
            )
            tree = {key: value for key, value in tree.items() if key != "credits"}
        fields = self.reader.mapping(path, {} if tree is None else tree, keys) or {}
        return LevelSpec(
            calendar=self._calendar(path, fields),
            warn_at=self._warn_at((*path, "warn_at"), fields["warn_at"])
            if "warn_at" in fields
            else None,
            pausable=self._metric_names((*path, "pausable"), fields["pausable"])
            if "pausable" in fields
            else None,
            targets=self._targets((*path, "targets"), fields.get("targets", {})),
            credits=_credits(self.reader, (*path, "credits"), fields["credits"])
            if "credits" in fields
            else None,
        )

    def _calendar(self, path: Path, fields: Mapping[str, Any]) -> str | None:
        if "calendar" not in fields:
            return None
        name = self.reader.text((*path, "calendar"), fields["calendar"], "a calendar name")
        if name is not None and name not in self.calendars:
            self.reader.problem(
                (*path, "calendar"), f"unknown calendar {name!r}" + suggest(name, self.calendars)
            )
            return None
        return name

    def _warn_at(self, path: Path, tree: Any) -> tuple[float, ...] | None:
        items = self.reader.sequence(path, tree, "[0.5, 0.75, 0.9]")
        fractions: list[float] = []
        for index, item in enumerate(items or []):
            value = self.reader.number((*path, index), item, "a fraction such as 0.75")
            if value is None:
                continue
            if not 0 < value < 1:
                self.reader.problem(
                    (*path, index), f"{item!r} is not a fraction between 0 and 1 (exclusive)"
                )
            elif fractions and value <= fractions[-1]:
                self.reader.problem(
                    (*path, index),
                    f"{item!r} does not come after "
                    f"{fractions[-1]!r}: list fractions in ascending order, once",
                )
            else:
                fractions.append(value)
        return tuple(fractions)

    def _metric_names(self, path: Path, tree: Any) -> frozenset[str]:
        names = self.reader.texts(path, tree, "[resolution]", "a metric name") or []
        for index, name in enumerate(names):
            if name not in self.metrics:
                self.reader.problem(
                    (*path, index), f"unknown metric {name!r}" + suggest(name, self.metrics)
                )
        return frozenset(names) & self.metrics

    def _targets(self, path: Path, tree: Any) -> dict[str, dict[str, int | None]]:
        targets: dict[str, dict[str, int | None]] = {}
        for priority, metrics in (self.reader.mapping(path, tree) or {}).items():
            here = (*path, priority)
            per_metric = targets.setdefault(priority, {})
            for metric, text in (self.reader.mapping(here, metrics) or {}).items():
                if metric not in self.metrics:
                    self.reader.problem(
                        (*here, metric),
                        f"unknown metric {metric!r}" + suggest(metric, self.metrics),
                    )
                    continue
                if text is None:  # `metric: null` removes a target inherited from a wider level
                    per_metric[metric] = None
                    continue
                try:
                    per_metric[metric] = parse_duration(text)
                except ValueError as exc:
                    self.reader.problem((*here, metric), str(exc))
        return targets


def _credits(reader: SpecReader, path: Path, tree: Any) -> tuple[CreditTier, ...] | None:
    items = reader.sequence(path, tree, "[{below: 0.99, credit: 0.05}]")
    tiers: list[CreditTier] = []
    for index, body in enumerate(items or []):
        here = (*path, index)
        fields = reader.mapping(here, body, ("below", "credit"))
        if fields is None:
            continue
        below = reader.required(here, fields, "below", "the compliance ratio, e.g. 0.99")
        credit = reader.required(here, fields, "credit", "the credit owed, e.g. 0.05")
        below = None if below is None else reader.number((*here, "below"), below, "a ratio")
        credit = None if credit is None else reader.number((*here, "credit"), credit, "a number")
        if below is not None and not 0 < below <= 1:
            reader.problem((*here, "below"), f"{fields['below']!r} is not a ratio in (0, 1]")
            below = None
        if credit is not None and credit < 0:
            reader.problem((*here, "credit"), f"{fields['credit']!r} is negative")
            credit = None
        if below is not None and credit is not None:
            tiers.append(CreditTier(below, credit))
    return tuple(sorted(tiers, key=lambda tier: -tier.below))
