"""Value types shared by policies, calendars and clocks.

Times inside the engine are integers: epoch milliseconds for instants,
milliseconds for amounts of counted (working) time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

__all__ = [
    "WorkingTime",
    "MetricDef",
    "CreditTier",
    "Terms",
    "PolicyView",
    "DEFAULT_METRICS",
    "UNIVERSAL_EVENT_TYPES",
]


class WorkingTime(Protocol):
    """Counted time of a calendar (weekly hours, holidays, exclusions)."""

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Working milliseconds in [start_ms, end_ms); 0 when end_ms <= start_ms."""
        ...

    def instant_after(self, start_ms: int, amount_ms: int) -> int:
        """Earliest instant t >= start_ms with elapsed(start_ms, t) == amount_ms."""
        ...


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A metric's clock: which event types start, stop, pause, resume, cancel, reopen it."""

    name: str
    start: frozenset[str]
    stop: frozenset[str]
    pause: frozenset[str] = frozenset()
    resume: frozenset[str] = frozenset()
    cancel: frozenset[str] = frozenset()
    reopen: frozenset[str] = frozenset()
    # "resume": a reopen resumes the stopped clock (outcome revised);
    # "new_cycle": a reopen starts a fresh cycle with its own breach and outcome.
    on_reopen: Literal["resume", "new_cycle"] = "resume"
    # "once": one cycle per ticket;
    # "per_start": a start event on a stopped clock starts a new cycle.
    cycles: Literal["once", "per_start"] = "once"

    @property
    def event_types(self) -> frozenset[str]:
        return self.start | self.stop | self.pause | self.resume | self.cancel | self.reopen


DEFAULT_METRICS: Final[tuple[MetricDef, ...]] = (
    MetricDef(
        name="response",
        start=frozenset({"opened"}),
        stop=frozenset({"responded", "resolved", "closed"}),
        pause=frozenset({"paused"}),
        resume=frozenset({"resumed"}),
        cancel=frozenset({"cancelled"}),
    ),
    MetricDef(
        name="resolution",
        start=frozenset({"opened"}),
        stop=frozenset({"resolved", "closed"}),
        pause=frozenset({"paused"}),
        resume=frozenset({"resumed"}),
        cancel=frozenset({"cancelled"}),
        reopen=frozenset({"reopened"}),
        on_reopen="resume",
    ),
)

# Event types every policy knows, whatever its metrics: a retarget, the final close and a
# customer-satisfaction survey (which moves no clock; see sla.surveys).
UNIVERSAL_EVENT_TYPES: Final = frozenset({"opened", "priority_changed", "closed", "survey"})


@dataclass(frozen=True, slots=True)
class CreditTier:
    """A service credit owed when compliance falls below `below` (a ratio in 0..1)."""

    below: float
    credit: float


@dataclass(frozen=True, slots=True)
class Terms:
    """The merged SLA terms for one (service, customer): what every clock of a ticket needs."""

    calendar_name: str
    calendar: WorkingTime  # the calendar with the exclusions that apply to the service
    warn_at: tuple[float, ...]  # ascending fractions of the target, each in (0, 1)
    pausable: frozenset[str]  # metrics that pause events stop
    # priority -> metric -> target seconds
    targets: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    credits: tuple[CreditTier, ...] = ()

    def target_ms(self, priority: str, metric: str) -> int | None:
        seconds = self.targets.get(priority, {}).get(metric)
        return None if seconds is None else seconds * 1000

    def credit_for(self, ratio: float) -> float:
        """The largest credit among the tiers whose threshold the ratio falls below."""
        return max((t.credit for t in self.credits if ratio < t.below), default=0.0)


class PolicyView(Protocol):
    """What the engine and the worker around it need of a loaded policy file."""

    version: int
    metrics: tuple[MetricDef, ...]

    def terms(self, service: str, customer: str) -> Terms:
        """The merged terms for a ticket of `service` raised by `customer`."""
        ...

    def credits(self, customer: str, service: str | None = None) -> tuple[CreditTier, ...]:
        """The service-credit tiers of `customer` (for `service`, if it has its own); the
        metrics' objectives and the portal read them."""
        ...
