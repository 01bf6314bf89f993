"""`generic`: any JSON payload, read by the field paths the source names.

    fields:
      ticket_id: ticket.id          # required
      ts: ticket.updated_at         # required: the event time
      status: ticket.status         # snapshot status (mapped by `statuses`)
      priority: ticket.priority
      created_at: ticket.created_at
      created: is_new               # truthy: the payload announces the ticket
      staff_reply: reply.public_by_staff    # truthy: a public reply by staff came with it
      customer_reply: reply.by_customer
      delivery_id: delivery.id      # else the `delivery_header`, else a digest of the body
      survey_score: rating.score    # with survey_scale_min / survey_scale_max (default 1..5)

Paths are dotted (`items.0.id` for list items). The source's `statuses` and `priorities`
are required: a generic payload has no vendor defaults.
"""

from __future__ import annotations

from typing import Any

from agents.ingest.desks.base import (
    Desk,
    SourceView,
    common_attributes,
    require_object,
    require_ticket,
    require_ts,
)
from agents.ingest.fields import at, flag, text, vendor_ms
from agents.ingest.mapping import FieldRule
from agents.ingest.observation import DeliveryMeta, Observation, Survey, Untranslatable
from agents.ingest.signatures import SignatureSpec

__all__ = ["DESK", "FIELD_ROLES", "REQUIRED_FIELDS"]

FIELD_ROLES = ("ticket_id", "ts", "status", "priority", "created_at", "created", "staff_reply",
               "customer_reply", "delivery_id", "survey_score", "survey_scale_min",
               "survey_scale_max", "survey_comment")
REQUIRED_FIELDS = ("ticket_id", "ts")


def _read(body: Any, fields: Any, role: str) -> Any:
    path = fields.get(role)
    return at(body, path) if path else None


def observe(body: Any, meta: DeliveryMeta, source: SourceView) -> list[Observation]:
    body = require_object(body, "the configured payload")
    fields = source.fields
    ticket = require_ticket(_read(body, fields, "ticket_id"), fields.get("ticket_id", "?"))
    status = text(_read(body, fields, "status"))
    return [Observation(
        ticket=ticket,
        ts=require_ts(_read(body, fields, "ts"), what=fields.get("ts", "ts")),
        statuses=(status,) if status else (),
        priority=text(_read(body, fields, "priority")),
        created_at=vendor_ms(_read(body, fields, "created_at")),
        created=flag(_read(body, fields, "created")),
        staff_reply=flag(_read(body, fields, "staff_reply")),
        customer_reply=flag(_read(body, fields, "customer_reply")),
        attributes=common_attributes(meta, ticket),
        survey=_survey(body, fields),
    )]


def _survey(body: Any, fields: Any) -> Survey | None:
    score = _read(body, fields, "survey_score")
    if score is None:
        return None
    low = _read(body, fields, "survey_scale_min")
    high = _read(body, fields, "survey_scale_max")
    values = [score, 1 if low is None else low, 5 if high is None else high]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values) \
            or not values[1] <= values[0] <= values[2] or values[1] >= values[2]:
        raise Untranslatable("bad_survey", f"survey score {score!r} is not a number on its scale")
    return Survey(float(values[0]), float(values[1]), float(values[2]), None,
                  text(_read(body, fields, "survey_comment")))


def _ticket_ref(body: Any, event_name: str | None) -> str | None:
    return None  # needs the source's fields: the receiver asks `Source.ticket_ref`


DESK = Desk(
    name="generic",
    signature=SignatureSpec("hmac-sha256", "X-Slamon-Signature", prefix="sha256="),
    phases={},
    priorities={},
    service=FieldRule(),
    customer=FieldRule(),
    observe=observe,
    ticket_ref=_ticket_ref,
)
