"""GitLab issues: `Issue Hook` and `Note Hook` webhooks; `X-Gitlab-Token` carries the secret
itself (compared in constant time). `Idempotency-Key` (GitLab 17.4+, the same on retries)
or else `X-Gitlab-Event-UUID` is the delivery id.

An issue event has `object_attributes` (`iid`, `state` opened / closed, `action` open /
close / reopen / update, `created_at`, `updated_at`, `author_id`), `labels` and `changes`
(`{field: {previous, current}}`). As with GitHub, waiting on the customer and priority are
labels (scoped labels such as `status::waiting for customer` work as any other name).

The first response is a note on the issue that is not internal and not by the issue's
author (GitLab's payload does not say who is staff; the reporter is the customer).
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
from agents.ingest.fields import at, flag, text, vendor_ms
from agents.ingest.mapping import FieldRule
from agents.ingest.observation import DeliveryMeta, Observation
from agents.ingest.signatures import SignatureSpec

__all__ = ["DESK"]


def _issue(body: dict[str, Any]) -> dict[str, Any] | None:
    kind = body.get("object_kind")
    if kind in ("issue", "work_item"):
        found = body.get("object_attributes")
    elif kind == "note" and at(body, "object_attributes.noteable_type") == "Issue":
        found = body.get("issue")
    else:
        return None
    return found if isinstance(found, dict) else None


def _ticket_ref(body: Any, event_name: str | None) -> str | None:
    if not isinstance(body, dict):
        return None
    issue = _issue(body)
    project = text(at(body, "project.path_with_namespace"))
    number = text(issue.get("iid")) if issue else None
    return f"{project}#{number}" if project and number else None


def observe(body: Any, meta: DeliveryMeta, source: SourceView) -> list[Observation]:
    body = require_object(body, "a GitLab webhook")
    issue = _issue(body)
    if issue is None:
        return []  # pushes, merge requests, notes on other things
    ticket = require_ticket(_ticket_ref(body, meta.event_name),
                            "project.path_with_namespace + iid")
    mapping = source.mapping
    labels = label_names(body.get("labels") if body.get("object_kind") != "note"
                         else issue.get("labels"), "title")
    if text(issue.get("state")) == "closed":
        statuses = (*label_statuses(labels, mapping, ("close", "cancel")), "closed")
    else:
        statuses = (*label_statuses(labels, mapping, ("open", "pause")), "opened")
    previous = label_names(at(body, "changes.labels.previous"), "title")
    note = body.get("object_attributes") if body.get("object_kind") == "note" else None
    obs = Observation(
        ticket=ticket,
        ts=require_ts(note.get("created_at") if isinstance(note, dict) else None,
                      issue.get("updated_at")),
        statuses=statuses,
        priority=label_priority(labels, mapping),
        previous_priority=label_priority(previous, mapping) if previous else None,
        created_at=vendor_ms(issue.get("created_at")),
        created=text(issue.get("action")) == "open",
        attributes=common_attributes(meta, ticket, assignee=at(body, "assignees.0.username")),
    )
    if isinstance(note, dict):
        internal = flag(note.get("internal")) or flag(note.get("confidential"))
        by_reporter = text(note.get("author_id")) == text(issue.get("author_id"))
        obs.staff_reply = not internal and not by_reporter
        obs.customer_reply = not internal and by_reporter
    return [obs]


DESK = Desk(
    name="gitlab",
    signature=SignatureSpec("token", "X-Gitlab-Token"),
    phases={"open": ("opened",),
            "pause": ("waiting for customer", "status::waiting for customer"),
            "resolve": ("closed",), "close": ("status::archived",), "cancel": ()},
    priorities={"p1": "P1", "p2": "P2", "p3": "P3", "p4": "P4", "priority::1": "P1",
                "priority::2": "P2", "priority::3": "P3", "priority::4": "P4"},
    default_priority="P3",
    service=FieldRule(("project.path_with_namespace",)),
    customer=FieldRule(("project.namespace",)),
    observe=observe,
    ticket_ref=_ticket_ref,
    delivery_headers=("Idempotency-Key", "X-Gitlab-Event-UUID"),
    event_header="X-Gitlab-Event",
)
