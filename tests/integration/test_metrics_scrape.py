"""/metrics of a running worker fed real events: every metric of the monitor, sensible values,
bounded labels, and the ticket id in exemplars (OpenMetrics) only."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus_text

from sla.events import format_ts
from tests.integration.monitorkit import Reader, Worker, keyed, produce, worker_env

pytestmark = pytest.mark.integration

POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: [0.5]
  targets:
    P1: {response: 3s, resolution: 1h}
    P2: {response: 8s, resolution: 1h}
customers:
  acme:
    credits: [{below: 0.99, credit: 0.05}]
"""
TICKETS = {"live-breach", "live-met", "past-late"}
HOUR = 3_600_000
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _opened(ticket: str, ts: int, priority: str) -> dict:
    return {"event_id": f"{ticket}-1", "ticket_id": ticket, "type": "opened", "ts": format_ts(ts),
            "service": "email", "customer": "acme", "priority": priority}


def _event(ticket: str, n: int, kind: str, ts: int) -> dict:
    return {"event_id": f"{ticket}-{n}", "ticket_id": ticket, "type": kind, "ts": format_ts(ts)}


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path,
           free_port: Callable[[], int]) -> Iterator[Worker]:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    env = worker_env(kafka_bootstrap, tmp_path, free_port(), policies, SLAMON_PARTITIONS="1",
                     SLAMON_LATENESS="5")
    running = Worker(env, tmp_path / "worker.log").start()
    yield running
    running.stop()


def _scrape(worker: Worker, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(worker.web + "/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


def _samples(text: str) -> list:
    return [s for family in prometheus_text(text) for s in family.samples]


def _value(samples: list, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    found = [s.value for s in samples
             if s.name == name and labels.items() <= s.labels.items()]
    assert found, f"no sample {name}{labels}"
    return sum(found)


def test_every_metric_is_exported_with_sensible_values(kafka_bootstrap: str,
                                                       worker: Worker) -> None:
    now = int(time.time() * 1000)
    past = now - now % HOUR - 2 * HOUR
    events = [
        # An hour that is over: responded after its 8 s target, so its window closes breached.
        _opened("past-late", past + 60_000, "P2"),
        _event("past-late", 2, "responded", past + 120_000),
        _opened("live-met", now, "P2"), _event("live-met", 2, "responded", now + 1000),
        _event("live-met", 3, "resolved", now + 2000),
        _opened("live-breach", now, "P1"),  # nobody answers: a breach at now + 3 s
    ]
    reader = Reader(kafka_bootstrap, [worker.prefix + "breaches", worker.prefix + "compliance"])
    produce(kafka_bootstrap, worker.prefix + "events",
            [*keyed(events), (b"junk", b"this is not json")])
    reader.until(lambda rs: any(r.get("ticket_id") == "live-breach" for r in rs)
                 and any(r.get("kind") == "compliance" for r in rs), 60)
    reader.close()
    events_topic = worker.prefix + "events"

    deadline = time.monotonic() + 30  # the lag is reported every 5 s
    while True:
        content_type, text = _scrape(worker)
        samples = _samples(text)
        if any(s.name == "slamon_consumer_lag_messages" for s in samples):
            break
        assert time.monotonic() < deadline, "no slamon_consumer_lag_messages"
        time.sleep(1)
    assert content_type.startswith("text/plain")

    live = {"service": "email", "customer": "acme", "metric": "response"}
    assert _value(samples, "slamon_clock_breaches_total", priority="P1", **live) >= 1
    assert _value(samples, "slamon_clock_warnings_total", threshold="0.5", **live) >= 1
    assert _value(samples, "slamon_clock_outcomes_total", status="met", **live) >= 1
    assert _value(samples, "slamon_clock_outcomes_total", status="breached", **live) >= 1
    # Duration histograms have a bucket at each target (3 s and 8 s; 1 h for resolution).
    response_bounds = {s.labels["le"] for s in samples
                       if s.name == "slamon_clock_response_duration_seconds_bucket"}
    assert {"3.0", "8.0"} <= response_bounds, response_bounds
    assert "3600.0" in {s.labels["le"] for s in samples
                        if s.name == "slamon_clock_resolution_duration_seconds_bucket"}
    assert _value(samples, "slamon_clock_response_duration_seconds_count", priority="P2") == 2
    assert _value(samples, "slamon_clock_response_duration_seconds_bucket", priority="P2",
                  le="8.0") == 1  # live-met in 1 s; past-late took 60 s
    assert _value(samples, "slamon_events_total", type="opened") == 3
    assert _value(samples, "slamon_events_total", type="responded") == 2
    assert _value(samples, "slamon_events_total", type="resolved") == 1
    assert _value(samples, "slamon_events_rejected_total", reason="not_json") == 1
    assert _value(samples, "slamon_events_rejected_total", reason="too_large") == 0
    # Detection delay: live-breach's within seconds; past-late's breach (hours late) too.
    assert _value(samples, "slamon_breach_detection_delay_seconds_count") >= 2
    assert _value(samples, "slamon_breach_detection_delay_seconds_bucket", le="5.0") >= 1
    assert _value(samples, "slamon_clock_open", metric="resolution", state="running") == 2
    assert _value(samples, "slamon_clock_open", metric="response", state="running") == 1
    assert _value(samples, "slamon_consumer_lag_messages", topic=events_topic,
                  partition="0") == 0
    assert _value(samples, "slamon_compliance_ratio", window="hour", priority="P2",
                  **live) == 0.0
    assert _value(samples, "slamon_compliance_objective_ratio", customer="acme",
                  service="email") == 0.99
    assert time.time() - _value(samples, "slamon_events_last_timestamp_seconds") < 120
    assert _value(samples, "slamon_worker_ready") == 1  # it reports lag only when ready
    # The process itself: memory, CPU and Python's collections (the oldest generation's
    # count shows how often a worker pauses for a full collection).
    assert _value(samples, "process_resident_memory_bytes") > 0
    assert _value(samples, "process_cpu_seconds_total") > 0
    assert _value(samples, "python_gc_collections_total", generation="2") >= 0
    assert _value(samples, "python_info") == 1

    # Bounded labels: no label carries a ticket id.
    for sample in samples:
        assert "ticket_id" not in sample.labels, sample
        assert not TICKETS & set(sample.labels.values()), sample

    # OpenMetrics carries the ticket in exemplars.
    content_type, text = _scrape(worker, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    exemplars = {(s.name, s.exemplar.labels["ticket_id"])
                 for family in openmetrics(text) for s in family.samples if s.exemplar}
    assert ("slamon_clock_breaches_total", "live-breach") in exemplars, exemplars
    assert ("slamon_breach_detection_delay_seconds_bucket", "live-breach") in exemplars
    assert ("slamon_clock_response_duration_seconds_bucket", "live-met") in exemplars
    assert ("slamon_clock_resolution_duration_seconds_bucket", "live-met") in exemplars
    for family in openmetrics(text):
        for sample in family.samples:
            assert not TICKETS & set(sample.labels.values()), sample
