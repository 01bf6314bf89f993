"""The raw topic's messages: what the receiver writes and the translator agent reads.

A delivery travels as the vendor's body, byte for byte, keyed `source|ticket` (so one
ticket's deliveries share a partition and stay in order; `source|` when the receiver found
no ticket in it), with headers:

    slamon-ingest-source   the source name (a key of the sources file)
    slamon-delivery-id     the vendor's delivery id (or a digest of the body)
    slamon-received-at     epoch milliseconds when the receiver accepted it
    slamon-vendor-event    the vendor's event header, where it sends one (GitHub, GitLab)

A payload the translator cannot translate goes to `<prefix>raw.dlq` as it came, with the
dead-letter headers of `streams.outputs` (reason, message, topic:partition:offset) added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agents.ingest.observation import DeliveryMeta
from streams.outputs import MESSAGE_HEADER, REASON_HEADER, SOURCE_HEADER, Output

__all__ = ["SOURCE", "DELIVERY", "RECEIVED", "VENDOR_EVENT", "raw_output", "raw_meta",
           "raw_dead_letter", "header_list"]

SOURCE = "slamon-ingest-source"
DELIVERY = "slamon-delivery-id"
RECEIVED = "slamon-received-at"
VENDOR_EVENT = "slamon-vendor-event"


def raw_output(topic: str, meta: DeliveryMeta, ticket_ref: str | None, body: bytes) -> Output:
    headers = [(SOURCE, meta.source.encode()), (DELIVERY, meta.delivery_id.encode()),
               (RECEIVED, str(meta.received_ms).encode())]
    if meta.event_name:
        headers.append((VENDOR_EVENT, meta.event_name.encode()))
    return Output(topic, f"{meta.source}|{ticket_ref or ''}".encode(), body, headers)


def header_list(headers: Any) -> list[tuple[str, bytes]]:
    """A consumed message's headers as (name, value) pairs, whatever shape the client gave."""
    if not headers:
        return []
    items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for name, value in items:
        if isinstance(value, str):
            value = value.encode()
        pairs.append((str(name), bytes(value or b"")))
    return pairs


def raw_meta(headers: list[tuple[str, bytes]]) -> DeliveryMeta | None:
    """The delivery a raw message describes; None without a source header."""
    found = {name: value.decode(errors="replace") for name, value in headers}
    source = found.get(SOURCE)
    if not source:
        return None
    received = found.get(RECEIVED, "")
    return DeliveryMeta(source, found.get(DELIVERY) or "", int(received) if
                        received.isdigit() else 0, found.get(VENDOR_EVENT) or None)


def raw_dead_letter(topic: str, key: bytes | None, body: bytes,
                    headers: list[tuple[str, bytes]], reason: str, message: str,
                    origin: str) -> Output:
    """A raw payload on the raw dead-letter topic: as it came, with why in headers."""
    kept = [(n, v) for n, v in headers if n not in (REASON_HEADER, MESSAGE_HEADER, SOURCE_HEADER)]
    return Output(topic, key, body, [*kept, (REASON_HEADER, reason.encode()),
                                     (MESSAGE_HEADER, message.encode()),
                                     (SOURCE_HEADER, origin.encode())])
