"""A ticket's engine state: its event history, its clocks and what was emitted.

The state round-trips exactly through `to_wire()` / `from_wire()` (plain
lists, ints and strings: what orjson writes into a Faust table).
"""

from __future__ import annotations

from sla.clock import Clock

__all__ = ["TicketState", "Entry", "NEVER"]

NEVER = -(2**62)

# One applied event: (ts, seq, type, event_id, priority, service, customer, ref).
# Sorting entries orders them by event time, then arrival.
Entry = tuple[int, int, str, str, str | None, str | None, str | None, int | None]


class TicketState:
    """Everything the engine keeps about one ticket between two calls."""

    __slots__ = (
        "ticket_id", "service", "customer", "priority", "version", "opened_at", "closed_at",
        "history", "seq", "clocks", "emitted", "sim_time", "last_ts", "last_fire",
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
        # slot -> [revision, live (1/0), fingerprint, metric, kind]
        self.emitted: dict[str, list] = {}
        self.sim_time = NEVER  # clocks have fired everything due up to this instant
        self.last_ts = NEVER  # largest event time applied
        self.last_fire = NEVER  # largest instant a threshold fired at

    @property
    def tombstone(self) -> bool:
        return self.history is None

    def to_wire(self) -> list:
        return [
            self.ticket_id, self.service, self.customer, self.priority, self.version,
            self.opened_at, self.closed_at, self.history, self.seq,
            [clock.to_wire() for clock in self.clocks.values()],
            self.emitted, self.sim_time, self.last_ts, self.last_fire,
        ]

    @classmethod
    def from_wire(cls, wire: list) -> TicketState:
        state = cls.__new__(cls)
        (state.ticket_id, state.service, state.customer, state.priority, state.version,
         state.opened_at, state.closed_at, history, state.seq, clocks,
         state.emitted, state.sim_time, state.last_ts, state.last_fire) = wire
        state.history = None if history is None else [tuple(entry) for entry in history]
        state.clocks = {c[0]: Clock.from_wire(c) for c in clocks}
        return state
