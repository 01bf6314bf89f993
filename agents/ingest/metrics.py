"""The ingest metrics, on the registry the caller passes (the monitor's; never the global).

    slamon_ingest_requests_total{source, outcome}     webhook deliveries answered: accepted,
                                                      or why not (the HTTP status follows)
    slamon_ingest_accept_seconds{source}              arrival to the broker's ack of the raw
                                                      payload (what the vendor waits for)
    slamon_ingest_events_total{source, type}          events made from desk payloads
    slamon_ingest_dead_letters_total{source, reason}  payloads sent to <prefix>raw.dlq
    slamon_ingest_redeliveries_total{source}          deliveries seen before (vendor retries)

Labels are bounded: `source` is a configured source name ("" for a name not configured),
outcomes and reasons are fixed vocabularies, event types the engine's. Children of every
configured source and outcome exist at 0 from the start, so the first refusal is a rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Histogram

from agents.ingest.observation import INGEST_REASONS

__all__ = ["IngestMetrics", "Outcome", "OUTCOMES"]

Outcome = Literal[
    "accepted",            # 202: on the raw topic
    "unknown_source",      # 404: no such source configured
    "source_unavailable",  # 503: its secret cannot be read (the vendor retries)
    "too_large",           # 413
    "missing_signature",   # 401
    "bad_signature",       # 401
    "stale_timestamp",     # 401: a signed timestamp outside the window (a replay?)
    "unparsable",          # 400: not JSON
    "broker_unavailable",  # 503: the broker did not acknowledge in time
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
ACCEPT_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IngestMetrics:
    """Counters and the accept-latency histogram of the receiver and the translator."""

    def __init__(self, registry: CollectorRegistry, sources: Iterable[str]) -> None:
        self.requests = Counter("slamon_ingest_requests",
                                "Webhook deliveries answered, by source and outcome.",
                                ("source", "outcome"), registry=registry)
        self.accept_seconds = Histogram(
            "slamon_ingest_accept_seconds",
            "From a webhook's arrival to the broker's acknowledgement of its raw payload.",
            ("source",), buckets=ACCEPT_BUCKETS, registry=registry)
        self.events = Counter("slamon_ingest_events", "Events made from desk payloads.",
                              ("source", "type"), registry=registry)
        self.dead_letters = Counter("slamon_ingest_dead_letters",
                                    "Desk payloads sent to the raw dead-letter topic, by reason.",
                                    ("source", "reason"), registry=registry)
        self.redeliveries = Counter("slamon_ingest_redeliveries",
                                    "Deliveries translated before (a vendor's retry).",
                                    ("source",), registry=registry)
        for source in sources:
            for outcome in OUTCOMES:
                self.requests.labels(source, outcome)
            for reason in INGEST_REASONS:
                self.dead_letters.labels(source, reason)
            self.redeliveries.labels(source)
        self.requests.labels("", "unknown_source")
        self._answers: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}

    def answered(self, source: str, outcome: Outcome, seconds: float | None = None) -> None:
        key = (source, outcome)
        child = self._answers.get(key)
        if child is None:  # labels() costs ~25 µs a call: once per pair, then a dict lookup
            child = self._answers[key] = self.requests.labels(source, outcome)
        child.inc()
        if seconds is not None:
            histogram = self._latency.get(source)
            if histogram is None:
                histogram = self._latency[source] = self.accept_seconds.labels(source)
            histogram.observe(seconds)

    def translated(self, source: str, types: Iterable[str], reason: str | None,
                   repeated: int) -> None:
        for kind in types:
            self.events.labels(source, kind).inc()
        if reason is not None:
            self.dead_letters.labels(source, reason).inc()
        if repeated:
            self.redeliveries.labels(source).inc(repeated)
