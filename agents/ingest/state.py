"""The last known state of each ticket, and the slamon events a new observation makes.

Most desks send snapshots (the status now) and some send change sets (old and new); both
become events the same way: by comparing the observation with what slamon last knew of
the ticket (`TicketMemory`: its phase, priority, whether staff has replied, when it was
opened). A phase change is one or two events (`open` -> `pause` is `paused`, `resolve` ->
`pause` is `reopened` then `paused`); a new priority is `priority_changed`; the first public
reply by staff is `responded`. A ticket seen for the first time is `opened` at the time the
vendor says it was created, so connecting a desk mid-life back-fills its open tickets.

Redeliveries change nothing. The memory keeps the last few deliveries of the ticket with
the events they made: a delivery seen again from a *different* raw offset (the vendor
retried after we had accepted it) makes no event; the *same* offset seen again (the worker
crashed after translating but before committing) sends the same events again, with the same
ids, which the clock engine recognises. Event ids derive from the source, the vendor's
delivery id and the event type, so they are stable across both.

An observation stamped before the ticket's last status change does not move the status
back (vendors do not promise order); `close` is final, as in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from agents.ingest.mapping import Phase, SourceMapping
from agents.ingest.observation import DeliveryMeta, Observation, Untranslatable
from sla.events import format_ts

__all__ = ["TicketMemory", "RECENT_DELIVERIES", "phase_events", "apply_observation"]

RECENT_DELIVERIES = 8
EventDict = dict[str, Any]

# (from, to) -> event types, in order; a pair not listed makes no event.
_TRANSITIONS: dict[tuple[Phase, Phase], tuple[str, ...]] = {
    ("open", "pause"): ("paused",),
    ("open", "resolve"): ("resolved",),
    ("open", "close"): ("closed",),
    ("open", "cancel"): ("cancelled",),
    ("pause", "open"): ("resumed",),
    ("pause", "resolve"): ("resolved",),
    ("pause", "close"): ("closed",),
    ("pause", "cancel"): ("cancelled",),
    ("resolve", "open"): ("reopened",),
    ("resolve", "pause"): ("reopened", "paused"),
    ("resolve", "close"): ("closed",),
    ("resolve", "cancel"): ("cancelled",),
    ("cancel", "close"): ("closed",),
}


def phase_events(old: Phase, new: Phase) -> tuple[str, ...]:
    """The event types a move from phase `old` to `new` makes (none for a cancelled ticket
    coming back: its clocks are gone; none out of `close`: it is final)."""
    return _TRANSITIONS.get((old, new), ())


@dataclass(slots=True)
class TicketMemory:
    """What slamon last knew of one ticket of one source (stored as JSON in a table)."""

    phase: Phase | None = None  # None: never seen
    status_ts: int = 0  # event time of the last phase change applied
    priority: str | None = None  # the policy priority last sent
    responded: bool = False
    opened_at: int | None = None
    service: str | None = None
    customer: str | None = None
    # the last deliveries of this ticket: {"d": delivery id, "o": raw offset, "e": events}
    recent: list[dict[str, Any]] = field(default_factory=list)

    def dumps(self) -> bytes:
        return orjson.dumps({
            "phase": self.phase, "status_ts": self.status_ts, "priority": self.priority,
            "responded": self.responded, "opened_at": self.opened_at,
            "service": self.service, "customer": self.customer, "recent": self.recent,
        })

    @staticmethod
    def loads(raw: bytes | None) -> TicketMemory:
        if not raw:
            return TicketMemory()
        data = orjson.loads(raw)
        return TicketMemory(data.get("phase"), data.get("status_ts", 0), data.get("priority"),
                            bool(data.get("responded")), data.get("opened_at"),
                            data.get("service"), data.get("customer"), data.get("recent", []))

    def seen(self, delivery_id: str) -> dict[str, Any] | None:
        for entry in self.recent:
            if entry.get("d") == delivery_id:
                return entry
        return None

    def remember(self, delivery_id: str, offset: int | None, events: list[EventDict]) -> None:
        self.recent.append({"d": delivery_id, "o": offset, "e": events})
        del self.recent[:-RECENT_DELIVERIES]


class _Events:
    """Builds one delivery's events for one ticket, with ids from the delivery."""

    def __init__(self, meta: DeliveryMeta, ticket_id: str, attributes: dict[str, str]) -> None:
        self.meta = meta
        self.ticket_id = ticket_id
        self.attributes = attributes
        self.made: list[EventDict] = []

    def add(self, kind: str, ts: int, **fields: Any) -> None:
        same = sum(1 for event in self.made if event["type"] == kind)
        suffix = f":{same}" if same else ""
        event: EventDict = {
            "event_id": f"{self.meta.source}:{self.meta.delivery_id}:{kind}{suffix}",
            "ticket_id": self.ticket_id, "type": kind, "ts": format_ts(ts),
        }
        event.update((name, value) for name, value in fields.items() if value is not None)
        if self.attributes:
            event["attributes"] = dict(self.attributes)
        self.made.append(event)


def apply_observation(memory: TicketMemory, obs: Observation, mapping: SourceMapping,
                      meta: DeliveryMeta, ticket_id: str, body: Any) -> list[EventDict]:
    """The events `obs` makes against `memory`, which is updated in place.

    Raises Untranslatable (and leaves `memory` as it was) when the observation names a
    status or priority the mapping does not know, or a new ticket lacks what `opened` needs.
    """
    phase = mapping.phase(obs.statuses)
    priority = mapping.priority(obs.priority)
    events = _Events(meta, ticket_id, obs.attributes)
    updated = TicketMemory(memory.phase, memory.status_ts, memory.priority, memory.responded,
                           memory.opened_at, memory.service, memory.customer, memory.recent)
    if updated.phase is None:
        _open(updated, obs, mapping, body, priority, events)
    elif updated.phase != "close":
        known = mapping.service.resolve(body), mapping.customer.resolve(body)
        updated.service = known[0] or updated.service
        updated.customer = known[1] or updated.customer
    ts = max(obs.ts, updated.opened_at or obs.ts)
    if updated.phase != "close":
        if priority is not None and priority != updated.priority:
            events.add("priority_changed", ts, priority=priority)
            updated.priority = priority
        _replies(updated, obs, mapping, ts, events)
        if phase is not None and phase != updated.phase and obs.ts >= updated.status_ts:
            assert updated.phase is not None
            for kind in phase_events(updated.phase, phase):
                events.add(kind, ts)
            updated.phase = phase
            updated.status_ts = obs.ts
    if obs.survey is not None:
        survey = obs.survey
        events.add("survey", obs.ts, score=survey.score, scale_min=survey.scale_min,
                   scale_max=survey.scale_max, positive=survey.positive,
                   comment=survey.comment, service=updated.service,
                   customer=updated.customer)
    _copy(updated, memory)
    return events.made


def _open(memory: TicketMemory, obs: Observation, mapping: SourceMapping, body: Any,
          priority: str | None, events: _Events) -> None:
    """`opened` for a ticket seen for the first time, at its creation time if known."""
    first = mapping.priority(obs.previous_priority) or priority or mapping.default_priority
    if first is None:
        raise Untranslatable("no_priority", f"ticket {obs.ticket!r} has no priority and the "
                                            "source sets no default_priority")
    service = mapping.service.resolve(body)
    if service is None:
        raise Untranslatable("no_service", f"ticket {obs.ticket!r}: no service found "
                                           "(set service.default for the source)")
    customer = mapping.customer.resolve(body)
    if customer is None:
        raise Untranslatable("no_customer", f"ticket {obs.ticket!r}: no customer found "
                                            "(set customer.default for the source)")
    opened_at = min(obs.created_at, obs.ts) if obs.created_at is not None else obs.ts
    events.add("opened", opened_at, service=service, customer=customer, priority=first)
    memory.phase, memory.status_ts, memory.priority = "open", opened_at, first
    memory.opened_at, memory.service, memory.customer = opened_at, service, customer


def _replies(memory: TicketMemory, obs: Observation, mapping: SourceMapping, ts: int,
             events: _Events) -> None:
    if obs.staff_reply:
        if not memory.responded and memory.phase in ("open", "pause"):
            events.add("responded", ts)
            memory.responded = True
        if "agent_replied" in mapping.emit:
            events.add("agent_replied", ts)
    if obs.customer_reply and "customer_replied" in mapping.emit:
        events.add("customer_replied", ts)


def _copy(source: TicketMemory, target: TicketMemory) -> None:
    for name in ("phase", "status_ts", "priority", "responded", "opened_at", "service",
                 "customer", "recent"):
        setattr(target, name, getattr(source, name))
