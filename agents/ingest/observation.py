"""What a desk translator reads out of one payload, before any state is consulted.

A desk payload says something about one ticket (rarely several): its status and priority
now (a snapshot) or their old and new values (a change set), whether a public reply by
staff or by the customer came with it, and perhaps a satisfaction rating. An
`Observation` carries that in the vendor's own words (status and priority as the vendor
names them); `agents.ingest.state` then compares it with the ticket's last known state
and the source's mapping to decide which slamon events it makes.

A payload that cannot be read raises `Untranslatable` with a reason from a small, fixed
vocabulary (`IngestReason`): the reason is a dead-letter header and a metric label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from sla.errors import SlamonError

__all__ = ["IngestReason", "INGEST_REASONS", "Untranslatable", "Observation", "Survey",
           "DeliveryMeta"]

IngestReason = Literal[
    "not_json",            # the body is not JSON
    "not_an_object",       # JSON, but not the object the desk sends
    "no_ticket",           # no ticket id where the desk puts it
    "no_timestamp",        # no usable event time
    "unknown_status",      # a status the source's mapping does not name
    "unknown_priority",    # a priority the source's mapping does not name
    "no_priority",         # a new ticket without a priority and no default_priority
    "no_service",          # a new ticket whose service cannot be found, without a default
    "no_customer",         # the same for its customer
    "bad_survey",          # a satisfaction rating that is not a score on a scale
    "unknown_source",      # a raw message naming a source that is not configured
    "internal_error",      # a bug: the traceback is logged
]
INGEST_REASONS: tuple[IngestReason, ...] = get_args(IngestReason)


class Untranslatable(SlamonError):
    """A payload (or part of one) that makes no events: `reason` for machines, text for people."""

    def __init__(self, reason: IngestReason, message: str) -> None:
        super().__init__(message)
        self.reason: IngestReason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class DeliveryMeta:
    """What the receiver knew of a delivery besides its body."""

    source: str
    delivery_id: str
    received_ms: int
    event_name: str | None = None  # the vendor's event header (GitHub X-GitHub-Event, ...)


@dataclass(frozen=True, slots=True)
class Survey:
    """A satisfaction rating: `score` on [scale_min, scale_max]; `positive` the threshold."""

    score: float
    scale_min: float
    scale_max: float
    positive: float | None = None
    comment: str | None = None


@dataclass(slots=True)
class Observation:
    """One ticket as a payload shows it, in the vendor's terms.

    `statuses` lists names for the current status, most specific first (ServiceNow's
    `on hold: awaiting caller` before `on hold`; Jira's status name before its category):
    the mapping takes the first it knows. An empty tuple: the payload says nothing about
    the status.
    """

    ticket: str  # the vendor's ticket id, as text
    ts: int  # the vendor's event time, epoch ms
    statuses: tuple[str, ...] = ()
    priority: str | None = None
    previous_priority: str | None = None  # from a change set: the priority before this event
    created_at: int | None = None  # when the vendor says the ticket was created
    created: bool = False  # this payload announces the ticket's creation
    staff_reply: bool = False  # a public reply by staff came with it
    customer_reply: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    survey: Survey | None = None
