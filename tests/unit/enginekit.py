"""Small builders for engine tests: policies in code, events in one line each."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import MappingProxyType

from sla.calendar import Calendar, Exclusion
from sla.engine import Engine
from sla.events import format_ts
from sla.model import DEFAULT_METRICS, CreditTier, MetricDef, Terms
from sla.replay import Replay

T0 = "2026-12-01T00:00:00Z"  # a Tuesday
TARGETS = {
    "P1": {"response": 15 * 60, "resolution": 4 * 3600},
    "P2": {"response": 3600, "resolution": 8 * 3600},
}
ALWAYS = Calendar("24x7", "UTC", (((0, 1440),),) * 7)
OFFICE = Calendar(
    "office-berlin", "Europe/Berlin",
    ((( 9 * 60, 17 * 60),),) * 5 + ((), ()),
    frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
)


class StubPolicies:
    """A PolicyView built in code: one Terms for every (service, customer) unless overridden."""

    def __init__(self, version: int = 1, calendar: Calendar = ALWAYS,
                 warn_at: tuple[float, ...] = (0.5, 0.75, 0.9),
                 pausable: frozenset[str] = frozenset({"resolution"}),
                 targets: dict | None = None, metrics: tuple[MetricDef, ...] = DEFAULT_METRICS,
                 exclusions: tuple[Exclusion, ...] = (),
                 credits: tuple[CreditTier, ...] = ()) -> None:
        self.version = version
        self.metrics = metrics
        self._terms = Terms(
            calendar_name=calendar.name, calendar=calendar.working_time(exclusions),
            warn_at=warn_at, pausable=pausable,
            targets=MappingProxyType(targets or TARGETS), credits=credits,
        )

    def terms(self, service: str, customer: str) -> Terms:
        return self._terms

    def credits(self, customer: str, service: str | None = None) -> tuple[CreditTier, ...]:
        return self._terms.credits


def at(text: str) -> str:
    """'00:15' or '00:15:30' on T0's day, or a full RFC 3339 time, as RFC 3339 UTC."""
    if "T" in text:
        return text
    return T0.replace("00:00:00", text if text.count(":") == 2 else text + ":00")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(at(text)).timestamp() * 1000)


def ev(kind: str, when: str, ticket: str = "T1", eid: str | None = None, **fields) -> dict:
    event = {"event_id": eid or f"{ticket}-{kind}-{when}", "ticket_id": ticket, "type": kind,
             "ts": at(when)}
    if kind == "opened":
        event.setdefault("service", "email")
        event.setdefault("customer", "acme")
        event.setdefault("priority", "P1")
    event.update(fields)
    return event


def replay(events: list[dict], policies=None, as_of: str | None = None,
           lateness_ms: int = 60_000) -> list[dict]:
    engine = Engine(policies or StubPolicies(), lateness_ms=lateness_ms)
    run = Replay(engine)
    records: list[dict] = []
    for line, event in enumerate(events, 1):
        records += run.feed(event, line)
    records += run.finish(None if as_of is None else ms(as_of))
    return records


def kinds(records: list[dict], *wanted: str) -> list[dict]:
    return [r for r in records if r["kind"] in wanted]


def brief(records: list[dict]) -> list[tuple]:
    """(kind, metric, the instant that matters, extra) per clock record: easy to compare by hand."""
    out = []
    for r in records:
        if r["kind"] == "breach":
            out.append(("breach", r["metric"], r["deadline"], r["breached_at"]))
        elif r["kind"] == "warning":
            out.append(("warning", r["metric"], r["threshold"], r["at"]))
        elif r["kind"] == "outcome":
            out.append(("outcome", r["metric"], r["status"], r["elapsed_seconds"], r["revision"]))
        elif r["kind"] == "retraction":
            out.append(("retraction", r["retracts"]))
    return out


__all__ = ["StubPolicies", "OFFICE", "T0", "at", "ms", "ev", "replay", "kinds", "brief",
           "format_ts", "UTC"]
