"""Policy review: one history replayed under two policy files, compared row by row.

`slamon review` feeds the same events to two `sla.replay.Replay`s, one per policy file,
and hands each one's records to a `Tally`. A tally keeps, per row (customer, service,
priority, metric):

- met and total clocks in the review period, summed from the replay's own hourly
  compliance windows (so a clock counts as `Compliance` counts it: once, at its latest
  revision, withdrawn when retracted, cancelled clocks left out);
- the credit of each monthly window that overlaps the period, as the replay priced it;
- the clocks that breached in the period (breach records not retracted), by ticket;
- rejected lines by reason.

`compare(old, new, ...)` sets the two tallies side by side: compliance old -> new,
breaches added and removed (ticket ids), credits old -> new, and whether the new terms
lower a row below its objective (the highest credit tier's `below`, as the worker's
metrics take it). Nothing here reads files or prints: the command does that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sla.compliance import ratio
from sla.events import parse_ts
from sla.model import CreditTier
from sla.policy_diff import TermChange

__all__ = ["Period", "Tally", "Side", "RowChange", "CreditChange", "CustomerChange", "Review",
           "Row", "compare", "objective_of"]

Row = tuple[str, str, str, str]  # customer, service, priority, metric
ObjectiveLookup = Callable[[str, str], float | None]  # (customer, service) -> objective


def objective_of(tiers: Iterable[CreditTier]) -> float | None:
    """The agreed level: the highest ratio below which a credit is owed; None without tiers."""
    return max((tier.below for tier in tiers), default=None)


@dataclass(frozen=True, slots=True)
class Period:
    """The review period, [start, end] in epoch ms (end inclusive, like --as-of); None: open."""

    start: int | None = None
    end: int | None = None

    def holds(self, ms: int) -> bool:
        return (self.start is None or ms >= self.start) and (self.end is None or ms <= self.end)

    def overlaps(self, start: int, end: int) -> bool:
        """Whether the window [start, end) shares an instant with the period."""
        return (self.start is None or end > self.start) and (self.end is None or start <= self.end)


class Tally:
    """What one replay says about the period: counts, credits, breaches and rejects per row."""

    def __init__(self, period: Period = Period()) -> None:
        self.period = period
        self.counts: dict[Row, list[int]] = {}  # row -> [met, total]
        self.credits: dict[Row, dict[str, float]] = {}  # row -> month (YYYY-MM) -> credit
        self._breaches: dict[str, tuple[Row, str]] = {}  # breach id -> (row, clock label)
        self.rejected: Counter[str] = Counter()

    def observe(self, record: dict) -> None:
        """Take one record of the replay (any kind; those that do not matter are ignored)."""
        kind = record["kind"]
        if kind == "compliance":
            self._window(record)
        elif kind == "breach":
            if self.period.holds(parse_ts(record["breached_at"])):
                label = record["ticket_id"]
                if record["cycle"]:
                    label = f"{label}#{record['cycle']}"
                self._breaches[record["id"]] = (_row(record), label)
        elif kind == "retraction":
            if record.get("retracts_kind") == "breach":
                self._breaches.pop(record["retracts"], None)
        elif kind == "rejected":
            self.rejected[record["reason"]] += 1

    def _window(self, record: dict) -> None:
        window = record["window"]
        if window == "day":
            return
        if not self.period.overlaps(parse_ts(record["window_start"]),
                                    parse_ts(record["window_end"])):
            return
        row = _row(record)
        if window == "hour":
            counts = self.counts.get(row)
            if counts is None:
                counts = self.counts[row] = [0, 0]
            counts[0] += record["met"]
            counts[1] += record["total"]
        elif window == "month":
            self.credits.setdefault(row, {})[record["window_start"][:7]] = record["credit"]

    def breaches(self) -> dict[Row, set[str]]:
        """Row -> the clocks that breached in the period and stand (ticket id, `#cycle` after
        the first cycle)."""
        found: dict[Row, set[str]] = {}
        for row, label in self._breaches.values():
            found.setdefault(row, set()).add(label)
        return found


def _row(record: dict) -> Row:
    return (record["customer"], record["service"], record["priority"], record["metric"])


@dataclass(frozen=True, slots=True)
class Side:
    """Clocks met and counted under one policy file."""

    met: int = 0
    total: int = 0

    @property
    def ratio(self) -> float:
        return ratio(self.met, self.total)


@dataclass(frozen=True, slots=True)
class RowChange:
    """One (customer, service, priority, metric) under the old and the new terms."""

    customer: str
    service: str
    priority: str
    metric: str
    old: Side
    new: Side
    added: tuple[str, ...]  # breached under the new terms only
    removed: tuple[str, ...]  # breached under the old terms only
    objective: float | None  # the customer's objective for the service, under the new terms

    @property
    def changed(self) -> bool:
        return self.old != self.new or bool(self.added or self.removed)

    @property
    def lowered_below_objective(self) -> bool:
        """The new terms give a lower compliance than the old, and it is below the objective."""
        return (self.objective is not None and self.new.ratio < self.objective
                and self.new.ratio < self.old.ratio)


@dataclass(frozen=True, slots=True)
class CreditChange:
    """The credit a monthly window owes under each file (a fraction of the month's fee)."""

    customer: str
    service: str
    priority: str
    metric: str
    month: str  # YYYY-MM
    old: float
    new: float


@dataclass(frozen=True, slots=True)
class CustomerChange:
    """A customer's rows summed: compliance, breaches added and removed, rows failing."""

    customer: str
    old: Side
    new: Side
    added: int
    removed: int
    below_objective: int  # rows the new terms lower below the objective


@dataclass(frozen=True, slots=True)
class Review:
    """The whole comparison; `passes` is False when a row is lowered below its objective."""

    period: Period
    terms: tuple[TermChange, ...]
    rows: tuple[RowChange, ...]
    credits: tuple[CreditChange, ...]
    customers: tuple[CustomerChange, ...]
    rejected: tuple[tuple[str, int, int], ...]  # reason, old count, new count

    @property
    def failures(self) -> tuple[RowChange, ...]:
        return tuple(row for row in self.rows if row.lowered_below_objective)

    @property
    def passes(self) -> bool:
        return not self.failures


def compare(old: Tally, new: Tally, terms: Iterable[TermChange],
            objective: ObjectiveLookup) -> Review:
    """The review of `new` against `old` (tallies of the same events and period)."""
    old_breaches, new_breaches = old.breaches(), new.breaches()
    keys = sorted(set(old.counts) | set(new.counts) | set(old_breaches) | set(new_breaches))
    objectives: dict[tuple[str, str], float | None] = {}
    rows: list[RowChange] = []
    for key in keys:
        customer, service, priority, metric = key
        pair = (customer, service)
        if pair not in objectives:
            objectives[pair] = objective(customer, service)
        before, after = old_breaches.get(key, set()), new_breaches.get(key, set())
        rows.append(RowChange(customer, service, priority, metric,
                              Side(*old.counts.get(key, (0, 0))),
                              Side(*new.counts.get(key, (0, 0))),
                              tuple(sorted(after - before)), tuple(sorted(before - after)),
                              objectives[pair]))
    return Review(old.period, tuple(terms), tuple(rows), _credits(old, new),
                  _customers(rows), _rejected(old, new))


def _credits(old: Tally, new: Tally) -> tuple[CreditChange, ...]:
    found: list[CreditChange] = []
    for key in sorted(set(old.credits) | set(new.credits)):
        before, after = old.credits.get(key, {}), new.credits.get(key, {})
        for month in sorted(set(before) | set(after)):
            found.append(CreditChange(*key, month, before.get(month, 0.0),
                                      after.get(month, 0.0)))
    return tuple(found)


def _customers(rows: list[RowChange]) -> tuple[CustomerChange, ...]:
    by_customer: dict[str, list[RowChange]] = {}
    for row in rows:
        by_customer.setdefault(row.customer, []).append(row)
    return tuple(
        CustomerChange(
            customer,
            Side(sum(r.old.met for r in mine), sum(r.old.total for r in mine)),
            Side(sum(r.new.met for r in mine), sum(r.new.total for r in mine)),
            sum(len(r.added) for r in mine), sum(len(r.removed) for r in mine),
            sum(1 for r in mine if r.lowered_below_objective))
        for customer, mine in sorted(by_customer.items()))


def _rejected(old: Tally, new: Tally) -> tuple[tuple[str, int, int], ...]:
    reasons = sorted(set(old.rejected) | set(new.rejected))
    return tuple((reason, old.rejected[reason], new.rejected[reason]) for reason in reasons)
