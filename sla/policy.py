"""Loaded SLA policies: the merged terms each ticket's clocks run under.

`build_policies(tree, source=..., lines=...)` checks a parsed policy tree (see
`sla.policy_spec`) and returns `Policies`, which implements
`sla.model.PolicyView`. Levels merge field by field, least to most specific:
corporate < services.S < customers.C < customers.C.services.S; targets merge
per priority and metric (`null` removes an inherited target). Reading the file
and parsing YAML happen outside `sla/` (see `agents.policyfile`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from sla.calendar import Calendar, WorkingCalendar
from sla.model import UNIVERSAL_EVENT_TYPES, CreditTier, MetricDef, Terms
from sla.policy_spec import LevelSpec, PolicySpec, read_spec
from sla.spec_reader import Path

__all__ = ["Policies", "build_policies", "DEFAULT_CALENDAR", "DEFAULT_PAUSABLE"]

DEFAULT_CALENDAR: Final = "24x7"
DEFAULT_PAUSABLE: Final = frozenset({"resolution"})
_TERMS_CACHE_SIZE: Final = 65_536


def build_policies(
    tree: Any, *, source: str = "<policies>", lines: Mapping[Path, int] | None = None
) -> Policies:
    """Check a parsed policy tree and map it to `Policies`; PolicyError lists every problem.

    `lines` maps a path such as ("customers", "acme", "targets") to its 1-based line
    in `source`, so that each problem reads `source:line: path: reason`.
    """
    return Policies(read_spec(tree, source, lines), source=source)


class Policies:
    """One version of the policy file, ready for the engine (implements PolicyView)."""

    def __init__(self, spec: PolicySpec, *, source: str = "<policies>") -> None:
        self.spec = spec
        self.source = source
        self.version: int = spec.version
        self.metrics: tuple[MetricDef, ...] = spec.metrics
        self.event_types: frozenset[str] = frozenset().union(
            UNIVERSAL_EVENT_TYPES, {"cancelled"}, *(metric.event_types for metric in spec.metrics)
        )
        self._metric_by_name = {metric.name: metric for metric in spec.metrics}
        self._working: dict[tuple[str, tuple[int, ...]], WorkingCalendar] = {}
        self._terms: dict[tuple[str, str], Terms] = {}

    def __repr__(self) -> str:
        return f"Policies(source={self.source!r}, version={self.version})"

    # -- what the engine calls ---------------------------------------------------------------

    def terms(self, service: str, customer: str) -> Terms:
        """The merged terms for a ticket of `service` raised by `customer` (cached)."""
        key = (service, customer)
        terms = self._terms.get(key)
        if terms is None:
            terms = self._merge(service, customer)
            if len(self._terms) >= _TERMS_CACHE_SIZE:
                del self._terms[next(iter(self._terms))]
            self._terms[key] = terms
        return terms

    def metric(self, name: str) -> MetricDef:
        """The definition of metric `name`; KeyError if the file declares no such metric."""
        return self._metric_by_name[name]

    def calendar(self, name: str) -> Calendar:
        """The calendar `name` as written (weekly hours, timezone, holidays); KeyError if none."""
        return self.spec.calendars[name]

    def working_time(self, calendar: str, service: str | None = None) -> WorkingCalendar:
        """Calendar `calendar` minus the exclusions that apply to `service` (all if None)."""
        chosen = tuple(
            index
            for index, exclusion in enumerate(self.spec.exclusions)
            if service is None or exclusion.applies_to(service)
        )
        key = (calendar, chosen)
        working = self._working.get(key)
        if working is None:
            exclusions = [self.spec.exclusions[index] for index in chosen]
            working = self.spec.calendars[calendar].working_time(exclusions)
            self._working[key] = working
        return working

    # -- what the portal and check-config list ------------------------------------------------

    @property
    def calendars(self) -> Mapping[str, Calendar]:
        """Every calendar by name, the built-in 24x7 included."""
        return MappingProxyType(dict(self.spec.calendars))

    @property
    def customers(self) -> tuple[str, ...]:
        """Customers with terms of their own, sorted."""
        return tuple(sorted(self.spec.customers))

    @property
    def services(self) -> tuple[str, ...]:
        """Services named at the service level or under a customer, sorted."""
        named = set(self.spec.services) | {service for _, service in self.spec.customer_services}
        return tuple(sorted(named))

    @property
    def priorities(self) -> tuple[str, ...]:
        """Every priority that has a target at some level, sorted."""
        levels = [self.spec.corporate, *self.spec.services.values(), *self.spec.customers.values()]
        levels += self.spec.customer_services.values()
        return tuple(sorted({priority for level in levels for priority in level.targets}))

    def credits(self, customer: str, service: str | None = None) -> tuple[CreditTier, ...]:
        """The service-credit tiers of `customer` (for `service`, if it has its own)."""
        levels = [self.spec.customers.get(customer)]
        if service is not None:
            levels.append(self.spec.customer_services.get((customer, service)))
        tiers: tuple[CreditTier, ...] = ()
        for level in levels:
            if level is not None and level.credits is not None:
                tiers = level.credits
        return tiers

    # -- merging ---------------------------------------------------------------------------------

    def _levels(self, service: str, customer: str) -> list[LevelSpec]:
        found = [
            self.spec.corporate,
            self.spec.services.get(service),
            self.spec.customers.get(customer),
            self.spec.customer_services.get((customer, service)),
        ]
        return [level for level in found if level is not None]

    def _merge(self, service: str, customer: str) -> Terms:
        levels = self._levels(service, customer)
        calendar = _most_specific(levels, "calendar", DEFAULT_CALENDAR)
        targets: dict[str, dict[str, int]] = {}
        for level in levels:
            for priority, metrics in level.targets.items():
                merged = targets.setdefault(priority, {})
                for metric, seconds in metrics.items():
                    if seconds is None:
                        merged.pop(metric, None)
                    else:
                        merged[metric] = seconds
        frozen = {p: MappingProxyType(m) for p, m in sorted(targets.items()) if m}
        return Terms(
            calendar_name=calendar,
            calendar=self.working_time(calendar, service),
            warn_at=_most_specific(levels, "warn_at", ()),
            pausable=_most_specific(levels, "pausable", DEFAULT_PAUSABLE),
            targets=MappingProxyType(frozen),
            credits=_most_specific(levels, "credits", ()),
        )


def _most_specific(levels: list[LevelSpec], name: str, default: Any) -> Any:
    """The value of field `name` at the most specific level that sets it."""
    for level in reversed(levels):
        value = getattr(level, name)
        if value is not None:
            return value
    return default
