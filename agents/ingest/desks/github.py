"""GitHub issues: `issues` and `issue_comment` webhooks, signed `X-Hub-Signature-256:
sha256=<hex>`; `X-GitHub-Delivery` is the delivery id, `X-GitHub-Event` the event.

An issue is `open` or `closed` (with `state_reason` completed / not_planned / duplicate);
waiting on the customer and priority are labels. So an open issue's status is the first
label the mapping puts under `open` or `pause` (`waiting for customer`), else `open`; a
closed one's is a label under `close` or `cancel`, else `closed: <state_reason>`, else
`closed`. Priority is the first label the priorities mapping names (`P1`, `priority: high`).
`locked` closes (final); `deleted` cancels.

The first response is a comment by staff: `author_association` OWNER, MEMBER or
COLLABORATOR (the `staff` list). Event times: the issue's `created_at` when opened,
`closed_at` when closed, the comment's `created_at`, else the issue's `updated_at`.
"""

from __future__ import annotations

from typing import Any

from agents.ingest.desks.base import (
    Desk,
    SourceView,
    common_attributes,
    label_names,
    label_priority,
    label_statuses,
    require_object,
    require_ticket,
    require_ts,
)
from agents.ingest.fields import at, obj, text, vendor_ms
from agents.ingest.mapping import FieldRule
from agents.ingest.observation import DeliveryMeta, Observation
from agents.ingest.signatures import SignatureSpec

__all__ = ["DESK"]


def _ticket_ref(body: Any, event_name: str | None) -> str | None:
    if not isinstance(body, dict):
        return None
    repo, number = text(at(body, "repository.full_name")), text(at(body, "issue.number"))
    return f"{repo}#{number}" if repo and number else None


def observe(body: Any, meta: DeliveryMeta, source: SourceView) -> list[Observation]:
    body = require_object(body, "a GitHub webhook")
    issue = body.get("issue")
    if not isinstance(issue, dict):
        return []  # ping, push, pull requests ...: nothing about an issue
    ticket = require_ticket(_ticket_ref(body, meta.event_name), "repository.full_name + "
                                                                 "issue.number")
    mapping = source.mapping
    action = text(body.get("action")) or ""
    comment = obj(body.get("comment")) or None
    labels = label_names(issue.get("labels"), "name")
    state = text(issue.get("state")) or "open"
    if action == "locked":
        statuses: tuple[str, ...] = ("locked",)
    elif action == "deleted" and comment is None:
        statuses = ("deleted",)
    elif state == "closed":
        reason = text(issue.get("state_reason"))
        statuses = (*label_statuses(labels, mapping, ("close", "cancel")),
                    *((f"closed: {reason}",) if reason else ()), "closed")
    else:
        statuses = (*label_statuses(labels, mapping, ("open", "pause")), "open")
    when = {"opened": issue.get("created_at"), "closed": issue.get("closed_at")}.get(action)
    obs = Observation(
        ticket=ticket,
        ts=require_ts(comment.get("created_at") if comment else None, when,
                      issue.get("updated_at")),
        statuses=statuses,
        priority=label_priority(labels, mapping),
        created_at=vendor_ms(issue.get("created_at")),
        created=action == "opened",
        attributes=common_attributes(meta, ticket, assignee=at(issue, "assignee.login")),
    )
    if comment is not None and action == "created":
        staff = mapping.is_staff(text(comment.get("author_association")))
        obs.staff_reply, obs.customer_reply = staff, not staff
    return [obs]


DESK = Desk(
    name="github",
    signature=SignatureSpec("hmac-sha256", "X-Hub-Signature-256", prefix="sha256="),
    phases={"open": ("open",), "pause": ("waiting for customer", "waiting-for-customer"),
            "resolve": ("closed: completed", "closed"),
            "close": ("locked",),
            "cancel": ("closed: not_planned", "closed: duplicate", "deleted")},
    priorities={"p1": "P1", "p2": "P2", "p3": "P3", "p4": "P4", "priority: critical": "P1",
                "priority: high": "P2", "priority: medium": "P3", "priority: low": "P4"},
    default_priority="P3",
    service=FieldRule(("repository.name",)),
    customer=FieldRule(("repository.owner.login",)),
    staff=("OWNER", "MEMBER", "COLLABORATOR"),
    observe=observe,
    ticket_ref=_ticket_ref,
    delivery_headers=("X-GitHub-Delivery",),
    event_header="X-GitHub-Event",
)
