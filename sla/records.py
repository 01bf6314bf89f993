"""Output records: what the engine's facts become on the wire, with deterministic ids.

The engine (`sla.engine`) decides what happened to a ticket's clocks; this module
only builds the records that say so: `fact_record` turns one clock fact into a
breach, warning or outcome record under its slot; `diff` gives new outputs their
ids against what the ticket already emitted and, after a recompute, retracts the
outputs that no longer hold; `rejected` and `rejected_entry` build the record for
an event the engine refuses. Kept apart from the rules so that the record shapes
(DESIGN.md's output schemas) are read in one place.
"""

from __future__ import annotations

from sla.clock import CANCELLED, Clock, Fact
from sla.errors import RejectReason
from sla.events import Event, format_ts
from sla.model import WorkingTime
from sla.ticket import Emitted, Entry, TicketState

__all__ = ["Record", "SlotFacts", "fact_record", "diff", "rejected", "rejected_entry"]

Record = dict
# (slot, record) per fact, in the order the facts happened; a slot names one output
# (ticket, metric, cycle, kind and, for a warning, its threshold).
SlotFacts = list[tuple[str, Record]]


def fact_record(state: TicketState, clock: Clock, fact: Fact, calendar: WorkingTime,
                warn_at: tuple[float, ...], now: int) -> tuple[str, Record]:
    """The slot and record (id not yet set) of one fact of `clock`, detected at `now`."""
    kind, instant, deadline = fact.kind, fact.instant, fact.deadline
    ticket_id, metric, cycle = state.ticket_id, clock.metric, clock.cycle
    slot = f"{ticket_id}:{metric}:{cycle}:{kind}"
    record: Record = {
        "id": None, "kind": kind, "ticket_id": ticket_id, "metric": metric,
        "cycle": cycle, "service": state.service, "customer": state.customer,
        "priority": state.priority, "policy_version": state.version,
        "target_seconds": clock.target / 1000, "started_at": format_ts(clock.started_at),
    }
    if kind == "breach":
        assert deadline is not None  # a breach always has one
        record["elapsed_seconds"] = clock.counted_at(calendar, instant) / 1000
        record["deadline"] = format_ts(deadline)
        record["breached_at"] = format_ts(instant)
        record["detected_at"] = format_ts(max(now, instant))
    elif kind == "warning":
        threshold = warn_at[fact.threshold]
        slot = f"{slot}:{threshold}"
        due = clock.deadline(calendar)
        record["threshold"] = threshold
        record["at"] = format_ts(instant)
        record["deadline"] = None if due is None else format_ts(due)
        remaining = clock.target - clock.counted_at(calendar, instant)
        record["remaining_seconds"] = max(0, remaining) / 1000
    else:
        if clock.status == CANCELLED:
            status = "cancelled"
        elif clock.fired >> len(warn_at) & 1:  # clock.breach_fired(len(warn_at))
            status = "breached"
        else:
            status = "met"
        record["status"] = status
        record["elapsed_seconds"] = clock.counted / 1000
        record["stopped_at"] = format_ts(instant)
    return slot, record


def diff(state: TicketState, facts: SlotFacts, full: bool, now: int) -> list[Record]:
    """Facts to records: new outputs get ids; with `full`, vanished outputs are retracted."""
    if not facts and not full:
        return []  # most events: nothing fired, nothing stopped
    if full:
        latest: dict[str, Record] = {}
        for slot, record in facts:
            latest.pop(slot, None)
            latest[slot] = record
        facts = list(latest.items())
    records: list[Record] = []
    emitted = state.emitted
    for slot, record in facts:
        kind = record["kind"]
        known = emitted.get(slot)
        fingerprint = None
        if kind == "outcome":
            fingerprint = [record["status"], record["elapsed_seconds"], record["stopped_at"]]
            if known is not None and known.live and known.fingerprint == fingerprint:
                continue
        elif known is not None and known.live:
            continue
        revision = 0 if known is None else known.revision + 1
        emitted[slot] = Emitted(revision, True, fingerprint, record["metric"], kind)
        if kind == "outcome":  # _output_id, written out
            record["id"] = f"{slot}:{revision}"
            record["revision"] = revision
        else:
            record["id"] = f"{slot}:{revision}" if revision else slot
        records.append(record)
    if full:
        current = {slot for slot, _ in facts}
        for slot, known in emitted.items():
            if known.live and slot not in current:
                known.live = False
                records.append(_retraction(state, slot, known, now))
    return records


def _retraction(state: TicketState, slot: str, known: Emitted, now: int) -> Record:
    withdrawn = _output_id(slot, known.kind, known.revision)
    return {
        "kind": "retraction", "id": f"{withdrawn}:retracted", "retracts": withdrawn,
        "retracts_kind": known.kind, "ticket_id": state.ticket_id, "metric": known.metric,
        "service": state.service, "customer": state.customer, "at": format_ts(now),
    }


def rejected(state: TicketState, event: Event, code: RejectReason, message: str) -> Record:
    """The record of an event the engine refuses, with its reason code and a message."""
    return {
        "kind": "rejected", "reason": code, "message": message, "ref": event.ref,
        "ticket_id": state.ticket_id, "event_id": event.event_id, "type": event.type,
        "ts": format_ts(event.ts),
    }


def rejected_entry(state: TicketState, entry: Entry, code: RejectReason,
                   message: str) -> Record:
    """The record of an event refused after it was held or applied (from its history entry)."""
    return {
        "kind": "rejected", "reason": code, "message": message, "ref": entry.ref,
        "ticket_id": state.ticket_id, "event_id": entry.event_id, "type": entry.type,
        "ts": format_ts(entry.ts),
    }


def _output_id(slot: str, kind: str, revision: int) -> str:
    """Deterministic: ticket, metric, cycle, kind, threshold, and a revision where there is one."""
    if kind == "outcome" or revision:
        return f"{slot}:{revision}"
    return slot
