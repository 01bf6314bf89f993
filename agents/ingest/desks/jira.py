"""Jira Service Management: `jira:issue_created`, `jira:issue_updated` and `comment_created`
webhooks, signed `X-Hub-Signature: sha256=<hex>` when registered with a secret.

`timestamp` (epoch ms) is the event time; `issue.fields` is a snapshot (status with its
category new / indeterminate / done, priority, created, reporter, assignee); an update's
`changelog.items` says what changed, with `fromString` / `toString`. A status reads as its
name, then as `category: <key>`, so the default mapping covers custom statuses by category
unless a name is mapped. The delivery id is `X-Atlassian-Webhook-Identifier` (the same on
every retry).

The first response is a public comment (`jsdPublic` not false) by an agent: not the
reporter and not a portal customer (`author.accountType` "customer"); one report says
internal comments can carry `jsdPublic: true`, hence the author test too. A change of the
`Satisfaction` field (JSM feedback, 1..5) becomes a survey.

Organisations and request types are site-specific custom fields: the defaults read
`customfield_10010` (request type) and `customfield_10002` (organizations), the usual Cloud
ids; set `service` / `customer` paths for your site.
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
from agents.ingest.fields import at, normalise, obj, text, vendor_ms
from agents.ingest.mapping import FieldRule
from agents.ingest.observation import DeliveryMeta, Observation, Survey
from agents.ingest.signatures import SignatureSpec

__all__ = ["DESK"]

_SATISFACTION = {"satisfaction", "satisfaction rating", "request feedback"}


def _ticket_ref(body: Any, event_name: str | None) -> str | None:
    return text(at(body, "issue.id")) if isinstance(body, dict) else None


def _changes(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """changelog items by lower-case field name."""
    items = at(body, "changelog.items")
    found: dict[str, dict[str, Any]] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and text(item.get("field")):
                found[normalise(str(item["field"]))] = item
    return found


def observe(body: Any, meta: DeliveryMeta, source: SourceView) -> list[Observation]:
    body = require_object(body, "a Jira webhook")
    issue = body.get("issue")
    if not isinstance(issue, dict):
        return []  # project, version, sprint events: nothing about a request
    fields = obj(issue.get("fields"))
    ticket = require_ticket(issue.get("id"), "issue.id")
    changes = _changes(body)
    comment = obj(body.get("comment")) or None
    status = text(at(fields, "status.name")) or text(changes.get("status", {}).get("toString"))
    category = text(at(fields, "status.statusCategory.key"))
    statuses = tuple(s for s in (status, f"category: {category}" if category else None) if s)
    event_ts = comment.get("created") if comment and not changes else None
    obs = Observation(
        ticket=ticket,
        ts=require_ts(body.get("timestamp"), event_ts, fields.get("updated")),
        statuses=statuses,
        priority=text(at(fields, "priority.name"))
        or text(changes.get("priority", {}).get("toString")),
        previous_priority=text(changes.get("priority", {}).get("fromString")),
        created_at=vendor_ms(fields.get("created")),
        created=body.get("webhookEvent") == "jira:issue_created",
        attributes=common_attributes(meta, ticket, key=issue.get("key"),
                                     assignee=at(fields, "assignee.accountId"),
                                     request_type=at(fields, "customfield_10010.requestType.name")),
    )
    if comment is not None:
        author = obj(comment.get("author"))
        public = comment.get("jsdPublic") is not False
        reporter = text(at(fields, "reporter.accountId"))
        customer = (text(author.get("accountType")) == "customer"
                    or (reporter is not None and text(author.get("accountId")) == reporter))
        obs.staff_reply = public and not customer
        obs.customer_reply = public and customer
    for name, item in changes.items():
        if name in _SATISFACTION:
            obs.survey = _survey(item.get("to"), item.get("toString"))
    return [obs]


def _survey(*values: Any) -> Survey | None:
    for value in values:
        score = text(value)
        if score is not None and score.isdigit() and 1 <= int(score) <= 5:
            return Survey(float(score), 1.0, 5.0, 4.0)
    return None


DESK = Desk(
    name="jira",
    signature=SignatureSpec("hmac-sha256", "X-Hub-Signature", prefix="sha256="),
    phases={
        "open": ("open", "to do", "waiting for support", "in progress", "work in progress",
                 "escalated", "reopened", "category: new", "category: indeterminate"),
        "pause": ("waiting for customer", "pending"),
        "resolve": ("resolved", "done", "category: done"),
        "close": ("closed",),
        "cancel": ("canceled", "cancelled", "declined", "won't do"),
    },
    priorities={"highest": "P1", "high": "P2", "medium": "P3", "low": "P4", "lowest": "P4"},
    service=FieldRule(("issue.fields.customfield_10010.requestType.name",
                       "issue.fields.project.key")),
    customer=FieldRule(("issue.fields.customfield_10002.0.name",), default="unassigned"),
    observe=observe,
    ticket_ref=_ticket_ref,
    delivery_headers=("X-Atlassian-Webhook-Identifier",),
)
