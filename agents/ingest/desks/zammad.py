"""Zammad: a trigger's webhook, signed `X-Hub-Signature: sha1=<hex>` (HMAC-SHA1 of the body)
when the webhook has a signature token; `X-Zammad-Delivery` is the delivery id.

The default payload is a snapshot: `ticket` (`id`, `number`, `state`, `priority` such as
"2 normal", `group`, `organization`, `owner`, `created_at`, `updated_at`; names or objects
with a `name`) and the `article` that fired the trigger, if any (`sender` Agent / Customer /
System, `internal`). The job's own change set is not sent, so transitions come from the
last known state. The first response is an article by an Agent that is not internal.

Zammad reopens a closed ticket when the customer writes; slamon treats `close` as final.
Map `closed` under `resolve` (and something else, or nothing, under `close`) if your team
works that way.
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
from agents.ingest.fields import at, flag, obj, text, vendor_ms
from agents.ingest.mapping import FieldRule
from agents.ingest.observation import DeliveryMeta, Observation, Untranslatable
from agents.ingest.signatures import SignatureSpec

__all__ = ["DESK"]


def _ticket_ref(body: Any, event_name: str | None) -> str | None:
    return text(at(body, "ticket.id")) if isinstance(body, dict) else None


def observe(body: Any, meta: DeliveryMeta, source: SourceView) -> list[Observation]:
    body = require_object(body, "a Zammad webhook")
    tree = body.get("ticket")
    if not isinstance(tree, dict):
        raise Untranslatable("not_an_object", "no `ticket` object in the webhook payload")
    ticket = require_ticket(tree.get("id"), "ticket.id")
    article = obj(body.get("article"))
    sender = (text(article.get("sender")) or "").lower()
    public = bool(article) and not flag(article.get("internal"))
    state = text(tree.get("state"))
    return [Observation(
        ticket=ticket,
        ts=require_ts(tree.get("updated_at"), article.get("created_at"), what="ticket.updated_at"),
        statuses=(state,) if state else (),
        priority=text(tree.get("priority")),
        created_at=vendor_ms(tree.get("created_at")),
        staff_reply=public and sender == "agent",
        customer_reply=public and sender == "customer",
        attributes=common_attributes(meta, ticket, number=tree.get("number"),
                                     assignee=at(tree, "owner.login") or tree.get("owner"),
                                     group=tree.get("group")),
    )]


DESK = Desk(
    name="zammad",
    signature=SignatureSpec("hmac-sha1", "X-Hub-Signature", prefix="sha1="),
    phases={"open": ("new", "open"), "pause": ("pending reminder",),
            "resolve": ("pending close",), "close": ("closed", "merged", "removed"),
            "cancel": ()},
    priorities={"3 high": "P2", "2 normal": "P3", "1 low": "P4"},
    service=FieldRule(("ticket.group",), default="support"),
    customer=FieldRule(("ticket.organization",), default="unassigned"),
    observe=observe,
    ticket_ref=_ticket_ref,
    delivery_headers=("X-Zammad-Delivery",),
)
