"""MonitorMetrics on a fresh registry: names, values, exemplars, bounded labels."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from agents.metrics import (
    DETECTION_DELAY_BUCKETS,
    MonitorMetrics,
    duration_buckets,
    exported_names,
    exposition,
    format_threshold,
)

CLOCK = {"service": "payments", "customer": "acme", "priority": "P1", "metric": "response"}
LABELS = dict(CLOCK)
HIST_LABELS = {"service": "payments", "customer": "acme", "priority": "P1"}
TARGETS = {"response": [900, 3600], "resolution": [14400, 28800]}


def breach(ticket: str = "T-1", **extra: Any) -> dict[str, Any]:
    rec = {"kind": "breach", "id": f"{ticket}:response:0:breach", "ticket_id": ticket, **CLOCK,
           "policy_version": 7, "target_seconds": 900.0, "elapsed_seconds": 900.0,
           "started_at": "2026-12-01T10:00:00Z", "deadline": "2026-12-01T10:15:00Z",
           "breached_at": "2026-12-01T10:15:00Z", "detected_at": "2026-12-01T10:15:00.120Z"}
    return {**rec, **extra}


def warning(ticket: str = "T-1", threshold: float = 0.75) -> dict[str, Any]:
    return {"kind": "warning", "id": f"{ticket}:response:0:warning:{threshold}",
            "ticket_id": ticket, **CLOCK, "threshold": threshold, "at": "2026-12-01T10:11:15Z",
            "deadline": "2026-12-01T10:15:00Z", "remaining_seconds": 225.0}


def outcome(ticket: str = "T-1", status: str = "met", elapsed: float = 600.0,
            revision: int = 0, **extra: Any) -> dict[str, Any]:
    rec = {"kind": "outcome", "id": f"{ticket}:response:0:outcome:{revision}",
           "ticket_id": ticket, **CLOCK, "status": status, "elapsed_seconds": elapsed,
           "target_seconds": 900.0, "stopped_at": "2026-12-01T10:10:00Z", "revision": revision}
    return {**rec, **extra}


def compliance(ratio: float = 0.5, start: str = "2026-12-01T10:00:00Z",
               total: int = 2) -> dict[str, Any]:
    return {"kind": "compliance", **CLOCK, "window": "hour", "window_start": start,
            "window_end": "2026-12-01T11:00:00Z", "met": 1, "breached": 1, "total": total,
            "compliance_ratio": ratio, "p50_seconds": 600.0, "p90_seconds": 1000.0,
            "p99_seconds": 1000.0, "credit": 0.1}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> MonitorMetrics:
    return MonitorMetrics(registry, ("response", "resolution"), TARGETS,
                          objective_for=lambda customer, service: 0.99)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def samples(registry: CollectorRegistry) -> list[Any]:
    return [s for family in registry.collect() for s in family.samples]


def test_breach_counts_and_detection_delay(registry, metrics):
    metrics.observe_breach(breach())
    assert value(registry, "slamon_clock_breaches_total", **LABELS) == 1
    assert value(registry, "slamon_breach_detection_delay_seconds_count") == 1
    assert value(registry, "slamon_breach_detection_delay_seconds_sum") == pytest.approx(0.12)
    assert value(registry, "slamon_breach_detection_delay_seconds_bucket", le="0.1") == 0
    assert value(registry, "slamon_breach_detection_delay_seconds_bucket", le="0.25") == 1


def test_retarget_breach_delay_counts_from_breached_at(registry, metrics):
    # the new target was passed at 09:40; the breach became due at the retarget, 10:15
    metrics.observe_breach(breach(deadline="2026-12-01T09:40:00Z"))
    assert value(registry, "slamon_breach_detection_delay_seconds_sum") == pytest.approx(0.12)


def test_breach_delay_from_emission_time_when_given(registry, metrics):
    deadline = 1_796_120_100.0  # 2026-12-01T10:15:00Z
    metrics.observe_breach(breach(), emitted_at=deadline + 2.0)
    assert value(registry, "slamon_breach_detection_delay_seconds_sum") == pytest.approx(2.0)


def test_redelivered_record_counts_once(registry, metrics):
    metrics.observe(breach())
    metrics.observe(breach())
    metrics.observe(breach("T-2"))
    assert value(registry, "slamon_clock_breaches_total", **LABELS) == 2


def test_warning_threshold_label(registry, metrics):
    metrics.observe(warning(threshold=0.75))
    metrics.observe(warning(threshold=0.9))
    metrics.observe(warning("T-2", threshold=0.75))
    assert value(registry, "slamon_clock_warnings_total", **LABELS, threshold="0.75") == 2
    assert value(registry, "slamon_clock_warnings_total", **LABELS, threshold="0.9") == 1
    assert format_threshold(0.5) == "0.5"


def test_first_sight_primes_breach_and_outcome_counters_at_zero(registry, metrics):
    metrics.observe(warning())
    assert value(registry, "slamon_clock_breaches_total", **LABELS) == 0
    for status in ("met", "breached", "cancelled"):
        assert value(registry, "slamon_clock_outcomes_total", **LABELS, status=status) == 0


def test_outcome_counts_and_duration_histogram(registry, metrics):
    metrics.observe(outcome("T-1", "met", 600.0))
    metrics.observe(outcome("T-2", "breached", 1000.0))
    metrics.observe(outcome("T-3", "cancelled", 50.0))
    for status in ("met", "breached", "cancelled"):
        assert value(registry, "slamon_clock_outcomes_total", **LABELS, status=status) == 1
    name = "slamon_clock_response_duration_seconds"
    assert value(registry, f"{name}_count", **HIST_LABELS) == 2  # cancelled is not a duration
    assert value(registry, f"{name}_sum", **HIST_LABELS) == 1600.0
    assert value(registry, f"{name}_bucket", **HIST_LABELS, le="900.0") == 1
    assert value(registry, f"{name}_bucket", **HIST_LABELS, le="+Inf") == 2


def test_outcome_revision_counted_apart(registry, metrics):
    metrics.observe(outcome("T-1", "met", 600.0))
    metrics.observe(outcome("T-1", "breached", 1200.0, revision=1))
    assert value(registry, "slamon_clock_outcomes_total", **LABELS, status="met") == 1
    assert value(registry, "slamon_clock_outcomes_total", **LABELS, status="breached") == 0
    assert value(registry, "slamon_clock_outcome_revisions_total", **LABELS,
                 status="breached") == 1
    assert value(registry, "slamon_clock_response_duration_seconds_count", **HIST_LABELS) == 1


def test_retraction_counted_by_kind(registry, metrics):
    metrics.observe({"kind": "retraction", "id": "x:retracted", "retracts": "x",
                     "retracts_kind": "breach", "ticket_id": "T-1", "metric": "response",
                     "service": "payments", "customer": "acme", "at": "2026-12-01T10:20:00Z"})
    assert value(registry, "slamon_clock_retractions_total", service="payments",
                 customer="acme", metric="response", kind="breach") == 1


def test_duration_buckets_at_targets(registry, metrics):
    assert duration_buckets([900, 3600]) == (
        450.0, 675.0, 810.0, 900.0, 1800.0, 2700.0, 3240.0, 3600.0, 7200.0, 14400.0)
    assert duration_buckets([]) and duration_buckets([0]) == duration_buckets([])
    metrics.observe(outcome(metric="resolution"))
    bounds = {s.labels["le"] for s in samples(registry)
              if s.name == "slamon_clock_resolution_duration_seconds_bucket"}
    assert {"14400.0", "28800.0", "+Inf"} <= bounds


def test_unknown_metric_gets_a_histogram_on_first_outcome(registry, metrics):
    metrics.observe(outcome(metric="next-response", elapsed=30.0))
    assert value(registry, "slamon_clock_next_response_duration_seconds_count",
                 **HIST_LABELS) == 1


def test_compliance_ratio_latest_window_wins(registry, metrics):
    labels = {**LABELS, "window": "hour"}
    metrics.observe(compliance(0.5, "2026-12-01T10:00:00Z"))
    assert value(registry, "slamon_compliance_ratio", **labels) == 0.5
    metrics.observe(compliance(1.0, "2026-12-01T11:00:00Z"))
    metrics.observe(compliance(0.25, "2026-12-01T10:00:00Z"))  # late record of an older window
    assert value(registry, "slamon_compliance_ratio", **labels) == 1.0
    metrics.observe(compliance(1.0, "2026-12-01T12:00:00Z", total=0))
    assert value(registry, "slamon_compliance_ratio", **labels) is None


def test_objective_from_lookup_and_reload(registry, metrics):
    metrics.observe(outcome())
    assert value(registry, "slamon_compliance_objective_ratio", customer="acme",
                 service="payments") == 0.99
    metrics.set_objective_source(lambda customer, service: 0.95)
    assert value(registry, "slamon_compliance_objective_ratio", customer="acme",
                 service="payments") == 0.95
    metrics.set_objective_source(None)
    assert value(registry, "slamon_compliance_objective_ratio", customer="acme",
                 service="payments") is None
    metrics.set_objective("globex", "email", 0.9)
    assert value(registry, "slamon_compliance_objective_ratio", customer="globex",
                 service="email") == 0.9


def test_events_rejects_open_clocks_and_lag(registry, metrics):
    metrics.observe_event("opened", at=1_796_120_000.0)
    metrics.observe_event("opened", at=1_796_120_001.5)
    metrics.observe_reject("not_json")
    metrics.observe({"kind": "rejected", "reason": "never_opened", "ticket_id": "T-9"})
    metrics.set_open_clocks("response", "running", 12)
    metrics.set_open_clocks("resolution", "paused", 3)
    metrics.set_lag("sla.events", 0, 40)
    metrics.set_lag("sla.events", 1, 7)
    assert value(registry, "slamon_events_total", type="opened") == 2
    assert value(registry, "slamon_events_last_timestamp_seconds") == 1_796_120_001.5
    assert value(registry, "slamon_events_rejected_total", reason="not_json") == 1
    assert value(registry, "slamon_events_rejected_total", reason="never_opened") == 1
    assert value(registry, "slamon_clock_open", metric="response", state="running") == 12
    assert value(registry, "slamon_clock_open", metric="resolution", state="paused") == 3
    assert value(registry, "slamon_consumer_lag_messages", topic="sla.events",
                 partition="0") == 40
    metrics.forget_partitions(keep=[("sla.events", 1)])
    assert value(registry, "slamon_consumer_lag_messages", topic="sla.events",
                 partition="0") is None
    assert value(registry, "slamon_consumer_lag_messages", topic="sla.events",
                 partition="1") == 7


def test_ticket_ids_only_in_exemplars(registry, metrics):
    tickets = [f"TICKET-{n}" for n in range(5)]
    for ticket in tickets:
        metrics.observe(warning(ticket))
        metrics.observe(breach(ticket))
        metrics.observe(outcome(ticket, "breached", 1000.0))
    metrics.observe(compliance())
    everything = samples(registry)
    for sample in everything:
        assert not set(sample.labels.values()) & set(tickets), sample
        assert "ticket_id" not in sample.labels
    exemplars = {s.name: s.exemplar.labels["ticket_id"] for s in everything if s.exemplar}
    assert exemplars["slamon_clock_breaches_total"] in tickets
    assert exemplars["slamon_clock_warnings_total"] in tickets
    assert exemplars["slamon_clock_response_duration_seconds_bucket"] in tickets
    assert exemplars["slamon_breach_detection_delay_seconds_bucket"] in tickets


def test_long_ticket_id_exemplar_is_truncated(registry, metrics):
    metrics.observe(breach("T" * 500))
    (exemplar,) = [s.exemplar for s in samples(registry)
                   if s.name == "slamon_clock_breaches_total" and s.exemplar]
    assert exemplar.labels["ticket_id"] == "T" * 119


def test_exported_names_cover_the_contract():
    names = exported_names()
    assert {
        "slamon_clock_breaches_total", "slamon_clock_warnings_total",
        "slamon_clock_outcomes_total", "slamon_clock_response_duration_seconds_bucket",
        "slamon_clock_resolution_duration_seconds_bucket", "slamon_clock_open",
        "slamon_compliance_ratio", "slamon_compliance_objective_ratio", "slamon_events_total",
        "slamon_events_rejected_total", "slamon_events_last_timestamp_seconds",
        "slamon_consumer_lag_messages", "slamon_breach_detection_delay_seconds_bucket",
    } <= names
    assert "slamon_clock_next_response_duration_seconds_sum" in exported_names(["next_response"])


def test_registries_are_independent_and_global_untouched(registry, metrics):
    MonitorMetrics(CollectorRegistry())  # a second instance does not collide
    global_names = {family.name for family in REGISTRY.collect()}
    assert not any(name.startswith("slamon_") for name in global_names)
    assert DETECTION_DELAY_BUCKETS[0] == 0.01 and DETECTION_DELAY_BUCKETS[-1] == 30.0


def test_exposition_negotiates_openmetrics(registry, metrics):
    metrics.observe(breach())
    body, content_type = exposition(registry, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert b'# {ticket_id="T-1"}' in body
    body, content_type = exposition(registry, None)
    assert content_type.startswith("text/plain")
    assert b"ticket_id" not in body
