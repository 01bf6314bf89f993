"""Exceptions of the pure engine. Everything slamon raises derives from SlamonError."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

__all__ = ["SlamonError", "ProblemsError", "PolicyError", "InvalidEvent", "RejectReason",
           "REASONS"]

# Why an input event was rejected: the one vocabulary of reject codes. Each is a DLQ header
# (`slamon-reason`), the `reason` of a `rejected` record and a label value of the rejects
# metric, so the set stays small and bounded. Where each comes from:
RejectReason = Literal[
    # the codec (streams.codec): the message is not an event at all
    "not_json", "too_large",
    # the event schema (sla.events.parse_event)
    "missing_field", "bad_type", "bad_timestamp", "unknown_type",
    # sla.events.parse_event given the caller's clock: stamped too far ahead (max_future)
    "future_ts",
    # the engine (sla.engine): a valid event its ticket cannot take
    "never_opened", "already_opened", "before_opened", "ticket_closed", "no_target",
    # surveys (sla.events, sla.engine): a score off its scale; a survey before its ticket
    # closed; a survey of a ticket never seen that names no service and customer
    "bad_survey", "survey_before_close", "survey_unattributed",
    # the worker (agents.processor): applying the event failed; the traceback is logged
    "internal_error",
]
REASONS: tuple[RejectReason, ...] = get_args(RejectReason)


class SlamonError(Exception):
    """Root of every error slamon raises on purpose."""


class ProblemsError(SlamonError):
    """Invalid input with a list of `problems`, each naming its place (`file:line: path: ...`).

    The message is the problems one per line, under `heading` when a subclass sets one.
    """

    heading: str | None = None

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        if self.heading is None:
            super().__init__("\n".join(self.problems))
        else:
            super().__init__(f"{self.heading}:\n  " + "\n  ".join(self.problems))


class PolicyError(ProblemsError):
    """A policy file is invalid; `problems` lists every problem found, each with its place."""


class InvalidEvent(SlamonError):
    """A service event that cannot be applied: `code` for machines, the message for a person."""

    def __init__(self, code: RejectReason, message: str) -> None:
        super().__init__(message)
        self.code: RejectReason = code
        self.message = message
