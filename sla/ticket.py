"""A ticket's engine state: its event history, its clocks and what was emitted.

The state round-trips exactly through `to_wire()` / `from_wire()` (plain
lists, ints and strings: what orjson writes into a Faust table). In memory its
parts have names (`Entry`, `Emitted`, `Clock`); on the wire they stay the
positional lists every release has written, so stored state keeps loading.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from sla.clock import Clock
from sla.events import Event

__all__ = ["TicketState", "Entry", "Emitted", "NEVER"]

# Below every instant: where nothing happened yet, comparisons (`ts > last_ts`) need no
# special case. An ordering bottom, not "none": it is never formatted or emitted.
NEVER: Final = -(2**62)


class Entry(NamedTuple):
    """One applied (or held) event in a ticket's history; on the wire, a list in this order.

    Sorting entries orders them by event time, then arrival.
    """

    ts: int
    seq: int  # arrival order within the ticket
    type: str
    event_id: str
    priority: str | None
    service: str | None
    customer: str | None
    ref: int | None  # where the event came from (offset, line), for a later rejection


# An entry is made for every event: built as `_tuple(Entry, (...))`, which is what
# Entry(...) does, without the Python-level __new__ in between.
_tuple: Final = tuple.__new__


class Emitted:
    """What a ticket last emitted in one output slot: enough to revise or retract it.

    On the wire: `[revision, live (1/0), fingerprint, metric, kind]`.
    """

    __slots__ = ("revision", "live", "fingerprint", "metric", "kind")

    def __init__(self, revision: int, live: bool, fingerprint: list | None, metric: str,
                 kind: str) -> None:
        self.revision = revision
        self.live = live  # False once retracted
        self.fingerprint = fingerprint  # an outcome's [status, elapsed, stopped_at]; else None
        self.metric = metric
        self.kind = kind

    @property
    def status(self) -> str | None:
        """An outcome's status (met, breached or cancelled); None for other kinds."""
        if self.kind != "outcome" or not self.fingerprint:
            return None
        status, _elapsed, _stopped_at = self.fingerprint
        return str(status)

    def to_wire(self) -> list:
        return [self.revision, 1 if self.live else 0, self.fingerprint, self.metric, self.kind]

    @classmethod
    def from_wire(cls, wire: list) -> Emitted:
        revision, live, fingerprint, metric, kind = wire
        return cls(revision, bool(live), fingerprint, metric, kind)


class TicketState:
    """Everything the engine keeps about one ticket between two calls."""

    __slots__ = (
        "ticket_id", "service", "customer", "priority", "version", "opened_at", "closed_at",
        "history", "seq", "clocks", "emitted", "sim_time", "last_ts", "last_fire", "applied",
    )

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        self.service: str | None = None
        self.customer: str | None = None
        self.priority: str | None = None
        self.version: int | None = None
        self.opened_at: int | None = None
        self.closed_at: int | None = None
        # None once a closed ticket is compacted to a tombstone.
        self.history: list[Entry] | None = []
        self.seq = 0
        self.clocks: dict[str, Clock] = {}
        self.emitted: dict[str, Emitted] = {}  # output slot -> what was emitted there
        self.sim_time = NEVER  # clocks have fired everything due up to this instant
        self.last_ts = NEVER  # largest event time applied
        self.last_fire = NEVER  # largest instant a threshold fired at
        # A tombstone's applied event ids: a redelivered one is a duplicate, not a late event.
        self.applied: frozenset[str] = frozenset()

    @property
    def tombstone(self) -> bool:
        return self.history is None

    # -- what the engine changes besides the clocks ------------------------------------------
    def add_entry(self, event: Event) -> Entry:
        """Keep `event` in the history, in time order (then arrival); the entry it became."""
        entry = _tuple(Entry, (event.ts, self.seq, event.type, event.event_id, event.priority,
                               event.service, event.customer, event.ref))
        self.seq += 1
        history = self.history
        assert history is not None, "a tombstone keeps no history"
        if history and entry < history[-1]:
            history.append(entry)
            history.sort()
        else:
            history.append(entry)
        return entry

    def forget(self) -> None:
        """A tombstone past its time: nothing is left to keep (`Engine.is_empty`)."""
        self.history = []
        self.applied = frozenset()
        self.emitted = {}
        self.opened_at = self.closed_at = None

    def compact(self) -> None:
        """Shrink a closed ticket to a tombstone: it only rejects what still comes for it.

        The ids of the events it applied stay, so that their redelivery (after a restart)
        is recognised as a duplicate and skipped, never rejected. So do its live outcomes
        (one per clock cycle): a satisfaction survey that comes after the close is split by
        whether the ticket's clocks were met or breached (`sla.surveys`).
        """
        if self.history is not None:
            self.applied = frozenset([entry.event_id for entry in self.history])
        self.history = None
        self.clocks = {}
        self.emitted = {slot: known for slot, known in self.emitted.items()
                        if known.kind == "outcome" and known.live}

    def to_wire(self) -> list:
        return [
            self.ticket_id, self.service, self.customer, self.priority, self.version,
            self.opened_at, self.closed_at,
            None if self.history is None else [tuple(entry) for entry in self.history],
            self.seq, [clock.to_wire() for clock in self.clocks.values()],
            {slot: emitted.to_wire() for slot, emitted in self.emitted.items()},
            self.sim_time, self.last_ts, self.last_fire,
            *([sorted(self.applied)] if self.applied else []),  # tombstones only
        ]

    @classmethod
    def from_wire(cls, wire: list) -> TicketState:
        # cls("") and not cls.__new__(cls): mypyc compiles no __new__ call of its classes
        # (README, Compiled engine); every slot set here is overwritten below.
        state = cls("")
        (state.ticket_id, state.service, state.customer, state.priority, state.version,
         state.opened_at, state.closed_at, history, state.seq, clocks,
         emitted, state.sim_time, state.last_ts, state.last_fire) = wire[:14]
        state.applied = frozenset(wire[14]) if len(wire) > 14 else frozenset()
        state.history = None if history is None else [Entry._make(entry) for entry in history]
        state.clocks = {clock.metric: clock for clock in map(Clock.from_wire, clocks)}
        state.emitted = {slot: Emitted.from_wire(known) for slot, known in emitted.items()}
        return state
