"""ServiceNow incidents: a business rule's REST message (the script in the README), or any
sender of the same JSON: the incident's fields as stored values.

ServiceNow has no signed webhooks: the sender authenticates with a shared secret header
(default `X-Slamon-Token`) or HTTP Basic (`signature: {scheme: basic}`). Each message is a
snapshot: `sys_id`, `number`, `state` (1 New, 2 In Progress, 3 On Hold, 6 Resolved,
7 Closed, 8 Canceled; numbers or names), `hold_reason` (1 Awaiting Caller, 3 Problem,
4 Vendor, 5 Change), `priority` (1..5, or "1 - Critical"), `opened_at`, `sys_updated_on`
(UTC, `YYYY-MM-DD HH:MM:SS`), `sys_mod_count`, `company`, `business_service`,
`assignment_group`, `assigned_to`, and what the rule adds: `operation` (insert/update),
`comments_added` (a customer-visible comment came with this update) and
`comment_by_caller` (the caller wrote it). `sys_id` + `sys_mod_count` is the delivery id:
one per update of the record.

An incident on hold reads as `on hold: <reason>` first, then `on hold`, so the default
pauses every hold and a mapping can pause only `on hold: awaiting caller`.
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
from agents.ingest.fields import flag, text, vendor_ms
from agents.ingest.mapping import FieldRule
from agents.ingest.observation import DeliveryMeta, Observation
from agents.ingest.signatures import SignatureSpec

__all__ = ["DESK", "STATES", "HOLD_REASONS"]

STATES = {"1": "new", "2": "in progress", "3": "on hold", "6": "resolved", "7": "closed",
          "8": "canceled"}
HOLD_REASONS = {"1": "awaiting caller", "3": "problem", "4": "vendor", "5": "change"}


def _ticket_ref(body: Any, event_name: str | None) -> str | None:
    return text(body.get("sys_id")) if isinstance(body, dict) else None


def _delivery_id(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    sys_id, count = text(body.get("sys_id")), text(body.get("sys_mod_count"))
    return f"{sys_id}:{count}" if sys_id and count else None


def _coded(value: Any, names: dict[str, str]) -> str | None:
    """A choice value as its name: "3" or 3 -> "on hold"; a display value stays itself."""
    found = text(value)
    return None if found is None else names.get(found, found.lower())


def _priority(value: Any) -> str | None:
    found = text(value)
    if found and found[0].isdigit():
        return found.split()[0].rstrip("-")  # "1 - Critical" -> "1"
    return found


def observe(body: Any, meta: DeliveryMeta, source: SourceView) -> list[Observation]:
    body = require_object(body, "an incident")
    ticket = require_ticket(body.get("sys_id"), "sys_id")
    state = _coded(body.get("state"), STATES)
    statuses: tuple[str, ...] = ()
    if state is not None:
        reason = _coded(body.get("hold_reason"), HOLD_REASONS)
        statuses = (f"{state}: {reason}", state) if state == "on hold" and reason else (state,)
    comment = flag(body.get("comments_added"))
    by_caller = flag(body.get("comment_by_caller"))
    return [Observation(
        ticket=ticket,
        ts=require_ts(body.get("sys_updated_on"), fallback=None, what="sys_updated_on"),
        statuses=statuses,
        priority=_priority(body.get("priority")),
        created_at=vendor_ms(body.get("opened_at")),
        created=text(body.get("operation")) == "insert",
        staff_reply=comment and not by_caller,
        customer_reply=comment and by_caller,
        attributes=common_attributes(meta, ticket, number=body.get("number"),
                                     assignee=body.get("assigned_to"),
                                     group=body.get("assignment_group")),
    )]


DESK = Desk(
    name="servicenow",
    signature=SignatureSpec("token", "X-Slamon-Token"),
    phases={"open": ("new", "in progress"), "pause": ("on hold",), "resolve": ("resolved",),
            "close": ("closed",), "cancel": ("canceled",)},
    priorities={"1": "P1", "2": "P2", "3": "P3", "4": "P4", "5": "P4"},
    service=FieldRule(("business_service",), default="incident"),
    customer=FieldRule(("company",), default="unassigned"),
    observe=observe,
    ticket_ref=_ticket_ref,
    body_delivery_id=_delivery_id,
    known_statuses=(*STATES.values(), *(f"on hold: {r}" for r in HOLD_REASONS.values())),
)
