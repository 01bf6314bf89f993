"""The engine: applies service events to a ticket's clocks and fires due deadlines.

The live monitor and `slamon replay` call the same three functions, so they
share every rule:

- `apply(state, event, now)`: apply one event (at its own `ts`);
- `advance(state, now)`: fire every warning and breach due up to `now`;
- `next_due(state)`: when `advance` next has something to do.

Events usually arrive in time order; then the clocks move forward in place.
An event stamped before something that already happened (an earlier event,
or a threshold that fired) is inserted into the ticket's history and the
clocks are recomputed from the start: what now holds is emitted, and a
`retraction` follows for each emitted output that no longer holds. Outputs
carry deterministic ids, so a redelivered event changes nothing. The records
themselves (their fields, ids and retractions) are built in `sla.records`. A `survey`
event moves no clock: `sla.surveys` decides whether it counts and builds its record.
"""

from __future__ import annotations

from typing import Final

from sla.clock import CANCELLED, PAUSED, RUNNING, STOPPED, Clock, Fact
from sla.errors import RejectReason
from sla.events import SURVEY, Event
from sla.model import UNIVERSAL_EVENT_TYPES, MetricDef, PolicyView, Terms
from sla.records import Record, SlotFacts, diff, fact_record, rejected, rejected_entry
from sla.surveys import answer_survey
from sla.ticket import NEVER, Entry, TicketState

__all__ = ["Engine", "TicketState"]

DEFAULT_LATENESS_MS: Final = 60_000
# How long a closed ticket is remembered (to reject its stragglers as closed): after that it
# is forgotten, so state does not grow with every ticket ever seen.
DEFAULT_TOMBSTONE_MS: Final = 7 * 86_400_000


class _Plan:
    """Terms for one (version, service, customer), with targets in ms looked up once."""

    __slots__ = ("terms", "calendar", "warn_at", "n_warnings", "pausable", "_targets", "_served")

    def __init__(self, terms: Terms) -> None:
        self.terms = terms
        self.calendar = terms.calendar
        self.warn_at = terms.warn_at
        self.n_warnings = len(terms.warn_at)
        self.pausable = terms.pausable
        self._targets: dict[tuple[str, str], int | None] = {}
        self._served: dict[str, bool] = {}  # priority -> has a target (for the version's metrics)

    def target_ms(self, priority: str, metric: str) -> int | None:
        key = (priority, metric)
        try:
            return self._targets[key]
        except KeyError:
            target = self._targets[key] = self.terms.target_ms(priority, metric)
            return target

    def has_target(self, priority: str, metrics: tuple[MetricDef, ...]) -> bool:
        """Whether a ticket of `priority` has an SLA target for any of the metrics (cached)."""
        served = self._served.get(priority)
        if served is None:
            served = any(self.target_ms(priority, metric.name) for metric in metrics)
            self._served[priority] = served
        return served


class Engine:
    """Stateless rules over `TicketState`s, for one set of policies (and the versions before)."""

    def __init__(self, policies: PolicyView, lateness_ms: int = DEFAULT_LATENESS_MS,
                 tombstone_ms: int = DEFAULT_TOMBSTONE_MS) -> None:
        self.lateness_ms = lateness_ms
        self.tombstone_ms = max(tombstone_ms, lateness_ms)
        self._versions: dict[int, PolicyView] = {}
        # event type -> (metric, what the event does to that metric's clock), for every
        # metric whose clock the type moves: decided once per policy load, not per event.
        self._relevant: dict[str, tuple[tuple[MetricDef, str], ...]] = {}
        self._known_types: frozenset[str] = frozenset()
        self._plans: dict[tuple[int | None, str | None, str | None], _Plan] = {}
        self.policies = policies
        self.reload(policies)

    # -- policies ------------------------------------------------------------
    def reload(self, policies: PolicyView) -> None:
        """Take new policies for clocks started from now on; running clocks keep theirs."""
        self._versions[policies.version] = policies
        self.policies = policies
        types = set(UNIVERSAL_EVENT_TYPES) | {"cancelled"}
        for metric in policies.metrics:
            types |= metric.event_types
        self._relevant = {
            kind: tuple((m, _action(m, kind)) for m in policies.metrics if kind in m.event_types)
            for kind in types
        }
        self._known_types = frozenset(self._relevant)  # read for every event
        self._plans.clear()  # a reload may reuse a version number with other terms

    def remember(self, policies: PolicyView) -> None:
        """Know an older version, for clocks that started under it (the current stays)."""
        if policies.version != self.policies.version:
            self._versions[policies.version] = policies
            self._plans.clear()

    @property
    def known_types(self) -> frozenset[str]:
        return self._known_types

    def _terms(self, state: TicketState) -> _Plan:
        key = (state.version, state.service, state.customer)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 4096:
                self._plans.clear()
            policies = self._versions.get(state.version or 0, self.policies)
            plan = self._plans[key] = _Plan(policies.terms(state.service or "",
                                                           state.customer or ""))
        return plan

    # -- the three calls -----------------------------------------------------
    def apply(self, state: TicketState, event: Event, now: int) -> list[Record]:
        """Apply `event` to `state` (mutated); return the records it causes, in order."""
        if event.type == SURVEY:  # moves no clock; changes nothing in the state
            policies = self._versions.get(state.version or 0, self.policies)
            return answer_survey(state, event, policies.metrics)
        history = state.history
        if history is None:
            if event.event_id in state.applied:
                return []  # a redelivery of an event applied before the ticket was compacted
            return [rejected(state, event, "ticket_closed", "the ticket is closed")]
        event_id = event.event_id
        for entry in history:
            if entry.event_id == event_id:
                return []  # a redelivery: already applied
        opened_at = state.opened_at
        if opened_at is None:
            if event.type != "opened":
                return self._hold(state, event, now)
            return self._open(state, event, now)
        ts = event.ts
        if event.type == "opened" or ts < opened_at or state.closed_at is not None:
            problem = self._refusal(state, event)  # None for any other event
            if problem:
                return [rejected(state, event, *problem)]
        if ts >= state.last_ts and ts > state.last_fire:
            entry = state.add_entry(event)
            terms = self._terms(state)
            facts: SlotFacts = []
            self._run_until(state, terms, ts - 1, facts, now)
            self._apply_entry(state, terms, entry, facts, now)
            state.last_ts = ts
            return diff(state, facts, full=False, now=now) if facts else []
        records = self._withdraw_after(state, event) if event.type == "closed" else []
        state.add_entry(event)
        state.last_ts = max(state.last_ts, event.ts)
        return records + self._recompute(state, now)

    def _withdraw_after(self, state: TicketState, closed: Event) -> list[Record]:
        """A late close: events applied after it no longer count and are rejected now."""
        assert state.history is not None
        after = [e for e in state.history if e.ts > closed.ts]
        for entry in after:
            state.history.remove(entry)
        return [rejected_entry(state, e, "ticket_closed", "the ticket is closed")
                for e in after]

    def advance(self, state: TicketState, now: int) -> list[Record]:
        """Fire what is due up to `now` (inclusive); expire held events; compact a closed ticket."""
        if state.history is None:
            if now > (state.closed_at or 0) + self.tombstone_ms:
                state.forget()
            return []
        if state.opened_at is None:
            return self._expire_held(state, now)
        facts: SlotFacts = []
        self._run_until(state, self._terms(state), now, facts, now)
        records = diff(state, facts, full=False, now=now) if facts else []
        if state.closed_at is not None and now > state.closed_at + self.lateness_ms:
            state.compact()
        return records

    def next_due(self, state: TicketState) -> int | None:
        """The earliest instant at which `advance` has work for this ticket."""
        if state.history is None:
            return (state.closed_at or 0) + self.tombstone_ms + 1
        if state.opened_at is None:
            if not state.history:
                return None
            return min(entry.ts for entry in state.history) + self.lateness_ms + 1
        due = None
        for clock in state.clocks.values():
            clock_due = clock.due
            if clock_due is not None and (due is None or clock_due < due):
                due = clock_due
        if state.closed_at is not None:
            compaction = state.closed_at + self.lateness_ms + 1
            due = compaction if due is None else min(due, compaction)
        return due

    @staticmethod
    def is_empty(state: TicketState) -> bool:
        """True when nothing is left to keep: held events all expired, or a tombstone's time."""
        return state.opened_at is None and not state.history

    # -- admission -----------------------------------------------------------
    def _refusal(self, state: TicketState, event: Event) -> tuple[RejectReason, str] | None:
        if event.type == "opened":
            return "already_opened", "the ticket is already opened"
        assert state.opened_at is not None
        if event.ts < state.opened_at:
            return "before_opened", "the event is stamped before the ticket was opened"
        closed_at = state.closed_at
        if closed_at is not None and (event.ts > closed_at or (
                event.type == "closed" and event.ts == closed_at)):
            return "ticket_closed", "the ticket is closed"
        return None

    def _hold(self, state: TicketState, event: Event, now: int) -> list[Record]:
        if now > event.ts + self.lateness_ms:
            return [rejected(state, event, "never_opened", "the ticket was never opened")]
        state.add_entry(event)
        state.last_ts = max(state.last_ts, event.ts)
        return []

    def _open(self, state: TicketState, event: Event, now: int) -> list[Record]:
        state.service, state.customer = event.service, event.customer
        state.priority, state.version = event.priority, self.policies.version
        terms = self._terms(state)
        if not terms.has_target(event.priority or "", self.policies.metrics):
            state.service = state.customer = state.priority = state.version = None
            return [rejected(state, event, "no_target",
                                   f"no SLA target for priority {event.priority!r}")]
        state.opened_at = event.ts
        assert state.history is not None
        if not state.history:  # the usual case: nothing held, start the clocks in place
            entry = state.add_entry(event)
            state.last_ts = event.ts
            facts: SlotFacts = []
            self._apply_entry(state, terms, entry, facts, now)
            return diff(state, facts, full=False, now=now) if facts else []
        records = []
        for entry in [e for e in state.history if e.ts < event.ts]:
            state.history.remove(entry)
            records.append(rejected_entry(
                state, entry, "before_opened", "the event is stamped before the ticket was opened"))
        state.add_entry(event)
        state.last_ts = max(state.last_ts, event.ts)
        return records + self._recompute(state, now)

    def _expire_held(self, state: TicketState, now: int) -> list[Record]:
        assert state.history is not None
        expired = [e for e in state.history if now > e.ts + self.lateness_ms]
        for entry in expired:
            state.history.remove(entry)
        return [
            rejected_entry(state, e, "never_opened", "the ticket was never opened")
            for e in expired
        ]

    # -- the clocks ----------------------------------------------------------
    def _recompute(self, state: TicketState, now: int) -> list[Record]:
        """Rebuild the clocks from the whole history, then emit and retract the difference."""
        assert state.history is not None
        terms = self._terms(state)
        horizon = state.sim_time
        state.clocks = {}
        state.last_fire = NEVER
        state.closed_at = None
        facts: SlotFacts = []
        for entry in state.history:
            if entry.type == "opened":
                state.priority = entry.priority
            self._run_until(state, terms, entry.ts - 1, facts, now)
            self._apply_entry(state, terms, entry, facts, now)
        self._run_until(state, terms, horizon, facts, now)
        return diff(state, facts, full=True, now=now)

    def _run_until(self, state: TicketState, terms: _Plan, until: int, facts: SlotFacts,
                   now: int) -> None:
        """Fire, in time order, every threshold of the ticket's clocks due at or before `until`."""
        if until > state.sim_time:
            state.sim_time = until
        clocks = state.clocks.values()
        calendar, warn_at = terms.calendar, terms.warn_at
        while True:
            first, first_due = None, until
            for clock in clocks:  # the earliest due; on a tie, the first clock
                due = clock.due
                if due is not None and due <= first_due and (first is None or due < first_due):
                    first, first_due = clock, due
            if first is None:
                return
            fact = first.fire(calendar, warn_at)
            if fact.instant > state.last_fire:
                state.last_fire = fact.instant
            facts.append(fact_record(state, first, fact, calendar, warn_at, now))

    def _apply_entry(self, state: TicketState, terms: _Plan, entry: Entry, facts: SlotFacts,
                     now: int) -> None:
        ts, kind = entry.ts, entry.type
        calendar, warn_at, n_warnings = terms.calendar, terms.warn_at, terms.n_warnings
        if kind == "priority_changed":
            state.priority = entry.priority
            self._retarget(state, terms, ts)
        touched: list[Clock] = []
        clocks = state.clocks
        for metric, action in self._relevant.get(kind, ()):
            produced = self._apply_metric(state, terms, metric, clocks.get(metric.name), action, ts)
            if produced is None:
                continue  # the clock did not change: its `due` stands
            clock = clocks[metric.name]
            touched.append(clock)
            for fact in produced:
                facts.append(fact_record(state, clock, fact, calendar, warn_at, now))
        if kind == "closed" or kind == "cancelled":
            for clock in state.clocks.values():  # final for every metric, declared or not
                if clock.active:
                    produced = (clock.stop(calendar, ts, n_warnings) if kind == "closed"
                                else clock.cancel(calendar, ts))
                    facts.extend(fact_record(state, clock, f, calendar, warn_at, now)
                                 for f in produced)
                    touched.append(clock)
            if kind == "closed":
                state.closed_at = ts
        for clock in touched:
            clock.refresh_due(calendar, warn_at)

    def _apply_metric(self, state: TicketState, terms: _Plan, metric: MetricDef,
                      clock: Clock | None, action: str, ts: int) -> list[Fact] | None:
        """Move one metric's clock; its facts, or None when the clock is unchanged (or none)."""
        if clock is None:  # no clock yet: only a start event makes one
            if action != _START or not self._start(state, terms, metric, None, ts):
                return None
            return []
        status = clock.status
        if action in (_CANCEL, _STOP):
            if status != RUNNING and status != PAUSED:
                return None
            if action == _CANCEL:
                return clock.cancel(terms.calendar, ts)
            return clock.stop(terms.calendar, ts, terms.n_warnings)
        if action == _PAUSE:
            if status != RUNNING or metric.name not in terms.pausable:
                return None
            clock.pause(terms.calendar, ts)
        elif action == _RESUME:
            if status != PAUSED:
                return None
            clock.resume(ts)
        elif action == _REOPEN:
            if status != STOPPED:
                return None
            if metric.on_reopen == "resume":
                clock.reopen(ts)
            elif not self._start(state, terms, metric, clock, ts):
                return None
        elif metric.cycles == "per_start" and status in (STOPPED, CANCELLED):
            if not self._start(state, terms, metric, clock, ts):  # action == _START
                return None
        else:
            return None
        return []

    @staticmethod
    def _start(state: TicketState, terms: _Plan, metric: MetricDef, clock: Clock | None,
               ts: int) -> bool:
        """Start a cycle of the metric's clock; False when its priority has no target."""
        target = terms.target_ms(state.priority or "", metric.name)
        if target is None:
            return False
        if clock is None:
            clock = state.clocks[metric.name] = Clock(metric.name)
            cycle = 0
        else:
            cycle = clock.cycle + 1
        clock.start(ts, target, cycle)
        return True

    @staticmethod
    def _retarget(state: TicketState, terms: _Plan, ts: int) -> None:
        for clock in state.clocks.values():
            if clock.active:
                target = terms.target_ms(state.priority or "", clock.metric)
                if target is not None:
                    clock.retarget(terms.calendar, ts, target)
                    clock.refresh_due(terms.calendar, terms.warn_at)


# What an event type does to a metric's clock: the first of the metric's sets that holds the
# type, in this order (the sets are disjoint in a checked policy).
_CANCEL, _STOP, _PAUSE, _RESUME, _REOPEN, _START = (
    "cancel", "stop", "pause", "resume", "reopen", "start")


def _action(metric: MetricDef, kind: str) -> str:
    for action, types in ((_CANCEL, metric.cancel), (_STOP, metric.stop), (_PAUSE, metric.pause),
                          (_RESUME, metric.resume), (_REOPEN, metric.reopen)):
        if kind in types:
            return action
    return _START

