"""Zendesk: event-subscription webhooks (`zen:event-type:ticket.*`), signed with HMAC-SHA256.

Every ticket event carries the envelope `id` (the event: our delivery id), `time`,
`subject` (`zen:ticket:<id>`) and `detail`, the ticket as it is now (status NEW, OPEN,
PENDING, HOLD, SOLVED, CLOSED; priority LOW..URGENT; group, organization, assignee), plus
an `event` object with what changed (`previous` / `current`; for comment_added the comment
with `is_public` and `author.is_staff`). So each event is also a snapshot; where the event
itself names the new status or priority, that wins over `detail`. Zendesk does not promise
order: the translator ignores a status older than the last one applied.

A trigger webhook's body is written by the admin; one with a `ticket` object (`id`,
`status`, `priority`, `updated_at`, ...) reads as a snapshot. A `satisfaction_rating`
(`score` good/bad, or a numeric `rating`) becomes a survey.
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
from agents.ingest.observation import DeliveryMeta, Observation, Survey, Untranslatable
from agents.ingest.signatures import SignatureSpec

__all__ = ["DESK"]

_PREFIX = "zen:event-type:ticket."
_CANCELLING = {"soft_deleted", "permanently_deleted", "marked_as_spam", "merged"}


def _ticket_ref(body: Any, event_name: str | None) -> str | None:
    if not isinstance(body, dict):
        return None
    subject = text(body.get("subject"))
    if subject and subject.startswith("zen:ticket:"):
        return subject.removeprefix("zen:ticket:")
    return text(at(body, "detail.id")) or text(at(body, "ticket.id"))


def _changed(value: Any, key: str) -> str | None:
    """`event.current` is the new value itself, or an object holding it under `key`."""
    return text(value.get(key)) if isinstance(value, dict) else text(value)


def observe(body: Any, meta: DeliveryMeta, source: SourceView) -> list[Observation]:
    body = require_object(body, "a Zendesk webhook")
    kind = text(body.get("type"))
    if kind is None:
        return _trigger(body, meta)
    if not kind.startswith(_PREFIX):
        return []  # user, organization, article events: nothing about a ticket
    event_type = kind.removeprefix(_PREFIX)
    detail = obj(body.get("detail"))
    ticket = require_ticket(_ticket_ref(body, None), "subject / detail.id")
    event = obj(body.get("event"))
    obs = Observation(
        ticket=ticket,
        ts=require_ts(body.get("time"), detail.get("updated_at")),
        created_at=vendor_ms(detail.get("created_at")),
        created=event_type == "created",
        attributes=common_attributes(meta, ticket, assignee=detail.get("assignee_id"),
                                     group=detail.get("group_id"),
                                     organization=detail.get("organization_id")),
    )
    status = text(detail.get("status"))
    priority = text(detail.get("priority"))
    if event_type == "status_changed":
        status = _changed(event.get("current"), "status") or status
    elif event_type == "priority_changed":
        priority = _changed(event.get("current"), "priority") or priority
        obs.previous_priority = _changed(event.get("previous"), "priority")
    elif event_type in _CANCELLING:
        status = "deleted"
    elif event_type == "comment_added":
        comment = obj(event.get("comment"))
        public = flag(comment.get("is_public"))
        staff = flag(at(comment, "author.is_staff"))
        obs.staff_reply = public and staff
        obs.customer_reply = public and not staff
    elif "csat" in event_type or "satisfaction" in event_type:
        obs.survey = _survey(event.get("current"))
    obs.statuses = (status,) if status else ()
    obs.priority = priority
    return [obs]


def _trigger(body: dict[str, Any], meta: DeliveryMeta) -> list[Observation]:
    """A trigger webhook whose body the admin wrote: `{"ticket": {...}}`."""
    ticket_tree = body.get("ticket")
    if not isinstance(ticket_tree, dict):
        raise Untranslatable("not_an_object", "neither an event (`type`) nor a trigger body "
                                              "with a `ticket` object")
    ticket = require_ticket(ticket_tree.get("id"), "ticket.id")
    status = text(ticket_tree.get("status"))
    rating = body.get("satisfaction_rating", ticket_tree.get("satisfaction_rating"))
    return [Observation(
        ticket=ticket,
        ts=require_ts(ticket_tree.get("updated_at"), body.get("time"),
                      fallback=meta.received_ms or None),
        statuses=(status,) if status else (),
        priority=text(ticket_tree.get("priority")),
        created_at=vendor_ms(ticket_tree.get("created_at")),
        attributes=common_attributes(meta, ticket, assignee=ticket_tree.get("assignee"),
                                     group=ticket_tree.get("group")),
        survey=_survey(rating) if rating is not None else None,
    )]


def _survey(rating: Any) -> Survey | None:
    """good/bad -> 1/0 on 0..1; a numeric rating on its `scale` (default 1..5); offered or
    unoffered (a survey sent, no answer yet) -> no survey."""
    if isinstance(rating, dict):
        score = rating.get("score", rating.get("rating"))
        comment = text(rating.get("comment"))
        scale = obj(rating.get("scale"))
    else:
        score, comment, scale = rating, None, {}
    if isinstance(score, str) and score.strip().lower() in ("good", "bad"):
        return Survey(1.0 if score.strip().lower() == "good" else 0.0, 0.0, 1.0, 1.0, comment)
    if isinstance(score, str) and score.strip().lower() in ("offered", "unoffered", ""):
        return None
    if isinstance(score, int | float) and not isinstance(score, bool):
        low, high = scale.get("min", 1), scale.get("max", 5)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) \
                and low < high and low <= score <= high:
            return Survey(float(score), float(low), float(high), None, comment)
    raise Untranslatable("bad_survey", f"satisfaction rating {str(rating)[:80]!r} is not good/bad "
                                       "nor a number on its scale")


DESK = Desk(
    name="zendesk",
    signature=SignatureSpec("zendesk", "X-Zendesk-Webhook-Signature"),
    phases={"open": ("new", "open", "hold"), "pause": ("pending",), "resolve": ("solved",),
            "close": ("closed",), "cancel": ("deleted",)},
    priorities={"urgent": "P1", "high": "P2", "normal": "P3", "low": "P4"},
    default_priority="P3",
    service=FieldRule(("detail.group_id", "ticket.group"), default="support"),
    customer=FieldRule(("detail.organization_id", "ticket.organization"), default="unassigned"),
    observe=observe,
    ticket_ref=_ticket_ref,
    body_delivery_id=lambda body: text(body.get("id")) if isinstance(body, dict) else None,
    known_statuses=("new", "open", "pending", "hold", "solved", "closed", "deleted"),
)
