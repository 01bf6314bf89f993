"""Customer-satisfaction surveys: which the engine accepts, and the record each becomes.

A `survey` event carries a score on a declared scale (`sla.events.Survey`). It moves no
clock. It is accepted:

- for a ticket that is closed, stamped at or after the close (surveys are sent after
  resolution): counted under the ticket's service, customer and priority, with the
  verdict of each of its clocks (met or breached; a metric with no such outcome, none);
- for a ticket slamon never saw opened (or has forgotten, a week after its close): counted
  under the service and customer the survey names (its priority, or `unknown`), with no
  verdicts; without a service and customer it is rejected (`survey_unattributed`).

A survey of a ticket still open, or stamped before its close, is rejected
(`survey_before_close`). The `survey` record names in `clocks` every metric the ticket ran
a clock for (every metric of its policy version for a ticket never seen), so the
compliance windows of each of them count the survey, split by that metric's verdict
(`sla.compliance`). Its id is deterministic (ticket, event), so a
redelivered survey replaces itself. A survey's comment is never kept.
"""

from __future__ import annotations

from typing import Final

from sla.events import Event, Survey, format_ts
from sla.model import MetricDef
from sla.records import Record, rejected
from sla.ticket import TicketState

__all__ = ["answer_survey", "survey_id", "UNKNOWN_PRIORITY"]

# The priority of a survey of a ticket never seen that names none.
UNKNOWN_PRIORITY: Final = "unknown"


def survey_id(ticket_id: str, event_id: str) -> str:
    """`<ticket>:<event>:survey`: ends with a letter, so never the key of a clock (which
    ends with its cycle number) in a compliance window."""
    return f"{ticket_id}:{event_id}:survey"


def answer_survey(state: TicketState, event: Event,
                  metrics: tuple[MetricDef, ...]) -> list[Record]:
    """The record of a `survey` event for the ticket in `state` (not changed), or its rejection.

    `metrics`: the metrics of the ticket's policy version.
    """
    survey = event.survey
    assert survey is not None, "a survey event carries its score"
    names = [metric.name for metric in metrics]
    if state.opened_at is None and state.closed_at is None:  # never seen (or forgotten)
        if event.service is None or event.customer is None:
            return [rejected(state, event, "survey_unattributed",
                             "a survey of a ticket never opened needs its service and customer")]
        return [_record(event, survey, event.service, event.customer,
                        event.priority or UNKNOWN_PRIORITY, dict.fromkeys(names), seen=False)]
    closed_at = state.closed_at
    if closed_at is None or event.ts < closed_at:
        return [rejected(state, event, "survey_before_close",
                         "a survey counts once its ticket is closed")]
    verdicts = _verdicts(state)
    ran = {known.metric for known in state.emitted.values()
           if known.kind == "outcome" and known.live}
    clocks = {name: verdicts.get(name) for name in names if name in ran or not ran}
    return [_record(event, survey, state.service or "", state.customer or "",
                    state.priority or UNKNOWN_PRIORITY, clocks, seen=True)]


def _verdicts(state: TicketState) -> dict[str, str]:
    """metric -> "breached" if any of its clock's cycles was, else "met" if one was met."""
    verdicts: dict[str, str] = {}
    for known in state.emitted.values():
        status = known.status
        if not known.live or status not in ("met", "breached"):
            continue
        if verdicts.get(known.metric) != "breached":
            verdicts[known.metric] = status
    return verdicts


def _record(event: Event, survey: Survey, service: str, customer: str, priority: str,
            clocks: dict[str, str | None], seen: bool) -> Record:
    return {
        "id": survey_id(event.ticket_id, event.event_id), "kind": "survey",
        "ticket_id": event.ticket_id, "event_id": event.event_id,
        "service": service, "customer": customer, "priority": priority,
        "at": format_ts(event.ts), "score": survey.score, "scale_min": survey.scale_min,
        "scale_max": survey.scale_max, "positive": survey.positive,
        "score_ratio": survey.score_ratio, "ticket_seen": seen, "clocks": clocks,
    }
