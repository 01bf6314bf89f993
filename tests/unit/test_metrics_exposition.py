"""MonitorMetrics exposes what one prometheus-client Counter or Histogram per family exposed.

The reference below is the way the counts were kept before agents.metriccounts: plain
prometheus-client Counters and Histograms with the same names, HELP and labels, `inc` and
`observe` with the ticket as exemplar, the same dedup and priming. Both see the records of
a replay of 2,000 synthetic events (plus surveys, retractions, redeliveries and records
without a ticket) and their OpenMetrics expositions, parsed, must agree on every family
(name, type, HELP, order) and sample (name, labels, value, exemplar labels and value,
order); only the `_created` values and exemplar timestamps may differ.
"""

from __future__ import annotations

import bisect
import random
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import agents.metriccounts
import agents.metrics
from agents.app import policy_targets
from agents.devkit.traffic import ticket_events
from agents.metrics import (
    CLOCK_LABELS,
    DETECTION_DELAY_BUCKETS,
    REJECT_REASONS,
    STATUSES,
    MonitorMetrics,
    duration_buckets,
    format_threshold,
)
from agents.policyfile import load_policies
from sla.engine import Engine
from sla.events import parse_ts
from sla.replay import Replay

ROOT = Path(__file__).resolve().parents[2]
CLOCK = CLOCK_LABELS
COUNTERS = (  # attribute, name, HELP, labels: in the order they were registered
    ("breaches", "slamon_clock_breaches", "SLA breaches fired, per clock.", CLOCK),
    ("warnings", "slamon_clock_warnings",
     "At-risk warnings fired at a configured fraction of the target.", (*CLOCK, "threshold")),
    ("outcomes", "slamon_clock_outcomes", "Stopped clocks by first outcome (revision 0).",
     (*CLOCK, "status")),
    ("revisions", "slamon_clock_outcome_revisions",
     "Revised outcomes (reopen, late event) by new status.", (*CLOCK, "status")),
    ("retractions", "slamon_clock_retractions",
     "Outputs (breach, warning, outcome) withdrawn by a late event.",
     ("service", "customer", "metric", "kind")),
    ("surveys", "slamon_csat_surveys", "Satisfaction surveys accepted.",
     ("service", "customer", "priority", "positive")),
    ("events", "slamon_events", "Service events applied, by type.", ("type",)),
    ("rejected", "slamon_events_rejected", "Input rejected to the DLQ, by reason.", ("reason",)),
)


class Reference:
    """The counters and histograms of MonitorMetrics, kept by prometheus-client itself."""

    def __init__(self, registry: CollectorRegistry, targets: dict[str, list[float]]) -> None:
        self.c = {attr: Counter(name, doc, labels, registry=registry)
                  for attr, name, doc, labels in COUNTERS}
        for reason in REJECT_REASONS:
            self.c["rejected"].labels(reason)
        self.delay = Histogram("slamon_breach_detection_delay_seconds",
                               "Breach emission time minus the instant the breach became due.",
                               buckets=DETECTION_DELAY_BUCKETS, registry=registry)
        self.durations = {metric: Histogram(
            f"slamon_clock_{metric}_duration_seconds",
            f"Counted (working) seconds of stopped {metric} clocks.", CLOCK[:3],
            buckets=duration_buckets(targets[metric]), registry=registry) for metric in targets}
        self.ids: set[str] = set()
        self.dims: set[tuple[str, ...]] = set()

    def observe(self, rec: dict[str, Any]) -> None:
        if rec["kind"] == "rejected":
            self.c["rejected"].labels(rec["reason"]).inc()
            return
        if rec["kind"] == "compliance" or rec["id"] in self.ids:
            return
        self.ids.add(rec["id"])
        dims = tuple(str(rec.get(name) or "") for name in CLOCK)
        ticket = rec.get("ticket_id")
        ex = None if ticket is None else {"ticket_id": str(ticket)[:119]}
        if rec["kind"] == "survey":
            for flag in ("true", "false"):
                self.c["surveys"].labels(*dims[:3], flag)
            flag = "true" if rec["positive"] else "false"
            self.c["surveys"].labels(*dims[:3], flag).inc(1, exemplar=ex)
            return
        if rec["kind"] == "retraction":
            self.c["retractions"].labels(dims[0], dims[1], dims[3], rec["retracts_kind"]).inc()
            return
        if dims not in self.dims:
            self.dims.add(dims)
            self.c["breaches"].labels(*dims)
            for status in STATUSES:
                self.c["outcomes"].labels(*dims, status)
        if rec["kind"] == "breach":
            self.c["breaches"].labels(*dims).inc(1, exemplar=ex)
            delay = parse_ts(rec["detected_at"]) / 1000 - parse_ts(rec["breached_at"]) / 1000
            self.delay.observe(max(0.0, delay), exemplar=ex)
        elif rec["kind"] == "warning":
            self.c["warnings"].labels(*dims, format_threshold(rec["threshold"])).inc(
                1, exemplar=ex)
        elif rec["revision"]:
            self.c["revisions"].labels(*dims, rec["status"]).inc()
        else:
            self.c["outcomes"].labels(*dims, rec["status"]).inc()
            if rec["status"] != "cancelled":
                self.durations[dims[3]].labels(*dims[:3]).observe(
                    float(rec["elapsed_seconds"]), exemplar=ex)


def records(seed: int = 7) -> list[dict[str, Any]]:
    """A replay's records, with surveys and retractions (which the synthetic traffic does
    not make), redeliveries and missing tickets."""
    rng = random.Random(seed)
    replay = Replay(Engine(load_policies(ROOT / "config" / "policies.yaml")))
    out: list[dict[str, Any]] = []
    events = ticket_events(2000, parse_ts("2026-10-19T00:00:00Z"), tickets_per_hour=300.0,
                           seed=seed)
    for line, event in enumerate(events, 1):
        for rec in replay.feed(event, line):
            out.append(rec)
            if rec["kind"] == "outcome" and rng.random() < 0.3:
                out.append({"kind": "survey", "id": f"{rec['id']}:survey",
                            "ticket_id": rec["ticket_id"], "positive": rng.random() < 0.7,
                            **{name: rec[name] for name in CLOCK}})
            if rec["kind"] in ("breach", "warning") and rng.random() < 0.1:
                out.append({"kind": "retraction", "id": f"{rec['id']}:retracted",
                            "retracts": rec["id"], "retracts_kind": rec["kind"],
                            "ticket_id": rec["ticket_id"],
                            **{name: rec[name] for name in CLOCK}})
            if rng.random() < 0.1:
                out.append(dict(rec))  # a redelivery
            if rng.random() < 0.02 and "ticket_id" in rec:  # no ticket: no exemplar
                out.append({**{k: v for k, v in rec.items() if k != "ticket_id"},
                            "id": f"{rec.get('id')}:no-ticket"})
    out += replay.finish()
    out.append({"kind": "rejected", "reason": "never_opened", "ticket_id": "T-9"})
    return out


def parsed(registry: CollectorRegistry) -> list[tuple]:
    """Families in order: name, type, HELP and samples, less `_created` values and exemplar
    times."""
    text = generate_latest(registry).decode()
    return [(family.name, family.type, family.documentation,
             [(s.name, s.labels, None if s.name.endswith("_created") else s.value,
               None if s.exemplar is None else (s.exemplar.labels, s.exemplar.value))
              for s in family.samples])
            for family in text_string_to_metric_families(text)]


def exposed_both(recs: list[dict[str, Any]]) -> tuple[list[tuple], list[tuple]]:
    targets = policy_targets(load_policies(ROOT / "config" / "policies.yaml"))
    new_registry, ref_registry = CollectorRegistry(), CollectorRegistry()
    metrics = MonitorMetrics(new_registry, tuple(targets), targets)
    reference = Reference(ref_registry, targets)
    for n, rec in enumerate(recs):
        metrics.observe(rec)
        reference.observe(rec)
        if n % 7 == 0:
            event_type = ("opened", "assigned", "resolved")[n % 3]
            metrics.observe_event(event_type, count=n % 5 + 1)
            reference.c["events"].labels(event_type).inc(n % 5 + 1)
    names = {family[0] for family in parsed(ref_registry)}
    new = [family for family in parsed(new_registry) if family[0] in names]
    return new, parsed(ref_registry)


@pytest.fixture(scope="module")
def replayed() -> list[dict[str, Any]]:
    return records()


def test_the_exposition_is_prometheus_clients_own(replayed: list[dict[str, Any]]) -> None:
    kinds = {rec["kind"] for rec in replayed}
    assert {"breach", "warning", "outcome", "retraction", "survey", "compliance"} <= kinds
    new, reference = exposed_both(replayed)
    assert [family[0] for family in new] == [family[0] for family in reference]
    for got, want in zip(new, reference, strict=True):
        assert got[:3] == want[:3]
        assert got[3] == want[3], got[0]
    exemplars = [s for family in reference for s in family[3] if s[3] is not None]
    assert len(exemplars) > 100


def test_the_comparison_fails_when_a_value_lands_in_the_wrong_bucket(
        replayed: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above can fail: a value one bucket too high."""
    def one_too_high(bounds: tuple[float, ...], value: float) -> int:
        return min(bisect.bisect_left(bounds, value) + 1, len(bounds) - 1)

    monkeypatch.setattr(agents.metriccounts, "bisect_left", one_too_high)
    new, reference = exposed_both(replayed)
    assert new != reference


@pytest.mark.skipif(agents.metrics.__file__.endswith(".so"),
                    reason="compiled: MonitorMetrics calls CounterCounts.inc without looking "
                           "it up, so a patched method is never called")
def test_the_comparison_fails_when_a_counter_drops_its_amount(
        replayed: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above can fail: a counter's amount dropped."""
    def inc_by_one(self: Any, labels: tuple, ticket: object = None, amount: int = 1) -> None:
        original(self, labels, ticket, 1)

    original = agents.metriccounts.CounterCounts.inc
    monkeypatch.setattr(agents.metriccounts.CounterCounts, "inc", inc_by_one)
    new, reference = exposed_both(replayed)
    assert new != reference
