"""What every desk type provides: defaults, how it signs, and how its payloads read.

A `Desk` is a value, not a class hierarchy: the receiver asks it where the delivery id and
the ticket are (to key the raw message), the sources loader takes its default mapping and
signature scheme, and the translator calls `observe`. Every function here is pure: a JSON
tree in, observations out, `Untranslatable` for what cannot be read, never another
exception (the translators are fuzzed to hold to that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.ingest.fields import at, text, vendor_ms
from agents.ingest.mapping import FieldRule, Phase, SourceMapping
from agents.ingest.observation import DeliveryMeta, Observation, Untranslatable
from agents.ingest.signatures import SignatureSpec

__all__ = ["Desk", "Observe", "body_digest", "require_object", "require_ticket", "require_ts",
           "common_attributes", "first_text",
           "SourceView", "label_statuses", "label_priority", "label_names"]



class SourceView(Protocol):
    """What a translator reads of its source's configuration."""

    @property
    def mapping(self) -> SourceMapping: ...

    @property
    def fields(self) -> Mapping[str, str]: ...  # generic type: role -> field path


Observe = Callable[[Any, DeliveryMeta, SourceView], list[Observation]]


@dataclass(frozen=True, slots=True)
class Desk:
    """One desk type: its defaults and its reading of payloads."""

    name: str
    signature: SignatureSpec
    phases: Mapping[Phase, tuple[str, ...]]
    priorities: Mapping[str, str]
    service: FieldRule
    customer: FieldRule
    observe: Observe
    ticket_ref: Callable[[Any, str | None], str | None]  # (body, event name) -> ticket id
    delivery_headers: tuple[str, ...] = ()  # the vendor's delivery id headers, best first
    body_delivery_id: Callable[[Any], str | None] = lambda body: None
    event_header: str | None = None  # a header naming the event, kept with the raw payload
    default_priority: str | None = None
    staff: tuple[str, ...] = ()
    # The vendor's complete set of status names, where admins cannot add their own: check-
    # config reports names outside it and names of it the mapping leaves out.
    known_statuses: tuple[str, ...] | None = None
    notes: dict[str, str] = field(default_factory=dict)


def body_digest(body: bytes) -> str:
    """A delivery id for a vendor that sends none: the same body is the same delivery."""
    return "sha256-" + hashlib.sha256(body).hexdigest()[:32]


def require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Untranslatable("not_an_object", f"expected a JSON object ({what}), got "
                                              f"{type(body).__name__}")
    return body


def require_ticket(value: Any, path: str) -> str:
    ticket = text(value)
    if ticket is None:
        raise Untranslatable("no_ticket", f"no ticket id at {path}")
    return ticket


def require_ts(*candidates: Any, fallback: int | None = None, what: str = "event time") -> int:
    """The first candidate that is a vendor time; else `fallback` (the receive time)."""
    for candidate in candidates:
        ms = vendor_ms(candidate)
        if ms is not None:
            return ms
    if fallback is not None:
        return fallback
    raise Untranslatable("no_timestamp", f"no {what} in the payload")


def common_attributes(meta: DeliveryMeta, vendor_id: str, **more: Any) -> dict[str, str]:
    """Attributes every event carries: the source, the vendor's ids, assignee and group."""
    attributes = {"source": meta.source, "vendor_id": vendor_id}
    for name, value in more.items():
        found = text(value)
        if found is not None:
            attributes[name] = found
    return attributes


def first_text(tree: Any, *paths: str) -> str | None:
    for path in paths:
        found = text(at(tree, path))
        if found is not None:
            return found
    return None


def label_statuses(labels: list[str], mapping: SourceMapping, phases: tuple[Phase, ...]
                   ) -> tuple[str, ...]:
    """Labels (GitHub, GitLab) the mapping puts in one of `phases`, as status names.

    An open issue labelled `waiting for customer` is paused; the label on a closed issue
    is ignored, so that closing resolves it whatever labels stay on it.
    """
    found = []
    for label in labels:
        try:
            phase = mapping.phase((label,))
        except Untranslatable:
            continue
        if phase in phases:
            found.append(label)
    return tuple(found)


def label_priority(labels: list[str], mapping: SourceMapping) -> str | None:
    """The first label the mapping knows as a priority (`P1`, `priority: high`), if any."""
    for label in labels:
        if mapping.knows_priority(label):
            return label
    return None


def label_names(value: Any, key: str) -> list[str]:
    """Label names of a vendor's label list (`[{"name": ...}]` or `[{"title": ...}]`)."""
    names = []
    if isinstance(value, list):
        for item in value:
            name = text(item.get(key)) if isinstance(item, Mapping) else text(item)
            if name is not None:
                names.append(name)
    return names
