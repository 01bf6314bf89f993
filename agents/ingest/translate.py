"""One delivery in, slamon events (or a dead-letter reason) out: the translation both the
ingest agent and `slamon translate` run.

`translate_delivery` parses the body, asks the source's desk for observations, and turns
each into events against the ticket's last known state (`agents.ingest.state`), read from
and written back to `memories` (a dict offline, the agent's table live). It never raises
for bad input: what cannot be translated is a `Translation` with a `reason` (and whatever
events other tickets of the same delivery made).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from agents.ingest.observation import DeliveryMeta, IngestReason, Untranslatable
from agents.ingest.sources import Source
from agents.ingest.state import TicketMemory, apply_observation

__all__ = ["Translation", "translate_delivery", "memory_key"]

EventDict = dict[str, Any]


@dataclass(slots=True)
class Translation:
    """What one delivery made: events in order; `reason` / `message` when (part of) it could
    not be translated; `repeated` counts tickets for which it was a redelivery."""

    events: list[EventDict] = field(default_factory=list)
    reason: IngestReason | None = None
    message: str | None = None
    repeated: int = 0


def memory_key(source: str, vendor_ticket: str) -> bytes:
    """The key of a ticket's state (and of its raw messages): `source|ticket`."""
    return f"{source}|{vendor_ticket}".encode()


def translate_delivery(source: Source, meta: DeliveryMeta, raw: bytes | Any,
                       memories: MutableMapping[bytes, bytes], offset: int | None = None,
                       ) -> Translation:
    """Translate one delivery (`raw`: the body as bytes, or already parsed JSON).

    `offset` is the raw message's offset (None offline): a delivery seen before from the
    same offset sends its events again (a crash replay); from another offset, nothing (the
    vendor's retry).
    """
    result = Translation()
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            return Translation(reason="not_json", message=f"not JSON: {error}")
    else:
        body = raw
    try:
        observations = source.desk.observe(body, meta, source)
    except Untranslatable as error:
        return Translation(reason=error.reason, message=error.message)
    for obs in observations:
        key = memory_key(source.name, obs.ticket)
        memory = TicketMemory.loads(memories.get(key))
        seen = memory.seen(meta.delivery_id)
        if seen is not None:
            result.repeated += 1
            if offset is not None and seen.get("o") == offset:
                result.events.extend(seen.get("e", []))
            continue
        try:
            events = apply_observation(memory, obs, source.mapping, meta,
                                       source.ticket_id(obs.ticket), body)
        except Untranslatable as error:
            result.reason, result.message = error.reason, error.message
            continue
        memory.remember(meta.delivery_id, offset, events)
        memories[key] = memory.dumps()
        result.events.extend(events)
    return result
