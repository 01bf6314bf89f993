"""A source's mapping: vendor statuses and priorities to slamon's terms, and where the
service and the customer of a ticket come from.

Statuses fall into five phases, each a state of the ticket's clocks:

    open      the clocks run (entering it from `pause` resumes them)
    pause     waiting on the customer: pausable clocks stop counting
    resolve   solved; the ticket may still be reopened
    close     final: nothing after it counts
    cancel    the clocks are cancelled (spam, deleted, withdrawn): excluded from compliance

Every desk type has default phases and priorities (`agents.ingest.desks`); a source's file
entry changes them (`agents.ingest.sources`). Lookups ignore case and repeated spaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from agents.ingest.fields import at, normalise, text
from agents.ingest.observation import Untranslatable

__all__ = ["Phase", "PHASES", "EXTRA_EVENTS", "FieldRule", "SourceMapping"]

Phase = Literal["open", "pause", "resolve", "close", "cancel"]
PHASES: tuple[Phase, ...] = get_args(Phase)
# Events a source may opt into beyond the default metrics' (`emit:`), for metrics such as
# next_response that start on a customer's reply and stop on staff's.
EXTRA_EVENTS = ("customer_replied", "agent_replied")


@dataclass(frozen=True, slots=True)
class FieldRule:
    """Where a value comes from: the first of `paths` that holds text, renamed by `values`
    (vendor value -> slamon name, e.g. a Zendesk group id -> `payments`), else `default`."""

    paths: tuple[str, ...] = ()
    values: Any = field(default_factory=lambda: MappingProxyType({}))
    default: str | None = None

    def resolve(self, body: Any) -> str | None:
        for path in self.paths:
            found = text(at(body, path))
            if found is not None:
                return str(self.values.get(found, found))
        return self.default


@dataclass(frozen=True, slots=True)
class SourceMapping:
    """The lookups a translator needs; build with `SourceMapping.build`."""

    phases: Any  # normalised status -> Phase (read-only)
    priorities: Any  # normalised vendor priority -> policy priority (read-only)
    service: FieldRule
    customer: FieldRule
    default_priority: str | None = None
    emit: frozenset[str] = frozenset()
    staff: frozenset[str] = frozenset()  # desk-specific: who counts as staff (see the desk)

    @staticmethod
    def build(phases: Mapping[Phase, Iterable[str]], priorities: dict[str, str],
              service: FieldRule, customer: FieldRule, default_priority: str | None = None,
              emit: Iterable[str] = (), staff: Iterable[str] = ()) -> SourceMapping:
        by_status = {normalise(status): phase for phase, statuses in phases.items()
                     for status in statuses}
        by_priority = {normalise(vendor): ours for vendor, ours in priorities.items()}
        return SourceMapping(MappingProxyType(by_status), MappingProxyType(by_priority), service,
                       customer, default_priority, frozenset(emit),
                       frozenset(normalise(s) for s in staff))

    def phase(self, statuses: tuple[str, ...]) -> Phase | None:
        """The phase of the first status name the mapping knows; None when none is given.

        Raises Untranslatable (unknown_status) when names are given but none is mapped.
        """
        if not statuses:
            return None
        for status in statuses:
            phase = self.phases.get(normalise(status))
            if phase is not None:
                return phase  # type: ignore[no-any-return]
        raise Untranslatable("unknown_status",
                             f"status {statuses[0]!r} is not in the source's statuses mapping")

    def priority(self, vendor: str | None) -> str | None:
        """The policy priority of a vendor priority; None for None.

        Raises Untranslatable (unknown_priority) for a value the mapping does not name.
        """
        if vendor is None:
            return None
        ours = self.priorities.get(normalise(vendor))
        if ours is None:
            raise Untranslatable("unknown_priority",
                                 f"priority {vendor!r} is not in the source's priorities mapping")
        return str(ours)

    def knows_priority(self, vendor: str) -> bool:
        return normalise(vendor) in self.priorities

    def is_staff(self, value: str | None) -> bool:
        return value is not None and normalise(value) in self.staff
