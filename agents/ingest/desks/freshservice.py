"""Freshservice: a Workflow Automator "Trigger Webhook" whose JSON body the admin writes
(the README has one): a snapshot of the ticket and the event that fired it.

    {"event": "ticket_created" | "ticket_updated" | "agent_reply" | "requester_reply",
     "ticket": {"id", "status", "priority", "group", "department", "category",
                "created_at", "updated_at", "responder_id", "requester_id"}}

Status 2 Open, 3 Pending, 4 Resolved, 5 Closed (numbers or names; custom statuses by
name); priority 1 Low .. 4 Urgent. Freshservice signs nothing: the webhook sends a shared
secret header (default `X-Slamon-Token`). It sends no delivery id either: the same body is
taken as the same delivery.
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
from agents.ingest.fields import at, text, vendor_ms
from agents.ingest.mapping import FieldRule
from agents.ingest.observation import DeliveryMeta, Observation, Untranslatable
from agents.ingest.signatures import SignatureSpec

__all__ = ["DESK"]

STATUSES = {"2": "open", "3": "pending", "4": "resolved", "5": "closed"}
PRIORITIES = {"1": "low", "2": "medium", "3": "high", "4": "urgent"}


def _ticket_ref(body: Any, event_name: str | None) -> str | None:
    return text(at(body, "ticket.id")) if isinstance(body, dict) else None


def observe(body: Any, meta: DeliveryMeta, source: SourceView) -> list[Observation]:
    body = require_object(body, "a Freshservice webhook body")
    tree = body.get("ticket")
    if not isinstance(tree, dict):
        raise Untranslatable("not_an_object", "no `ticket` object in the webhook body")
    ticket = require_ticket(tree.get("id"), "ticket.id")
    status = text(tree.get("status"))
    priority = text(tree.get("priority"))
    event = (text(body.get("event")) or "").lower()
    return [Observation(
        ticket=ticket,
        ts=require_ts(tree.get("updated_at"), what="ticket.updated_at"),
        statuses=(STATUSES.get(status, status),) if status else (),
        priority=PRIORITIES.get(priority, priority) if priority else None,
        created_at=vendor_ms(tree.get("created_at")),
        created=event == "ticket_created",
        staff_reply=event == "agent_reply",
        customer_reply=event == "requester_reply",
        attributes=common_attributes(meta, ticket, assignee=tree.get("responder_id"),
                                     group=tree.get("group")),
    )]


DESK = Desk(
    name="freshservice",
    signature=SignatureSpec("token", "X-Slamon-Token"),
    phases={"open": ("open",), "pause": ("pending",), "resolve": ("resolved",),
            "close": ("closed",), "cancel": ()},
    priorities={"urgent": "P1", "high": "P2", "medium": "P3", "low": "P4"},
    service=FieldRule(("ticket.category", "ticket.group"), default="service-desk"),
    customer=FieldRule(("ticket.department",), default="unassigned"),
    observe=observe,
    ticket_ref=_ticket_ref,
)
