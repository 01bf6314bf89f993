"""CSAT metrics: surveys counted once by whether positive, the window's CSAT and its split
by met and breached clocks, no comment or ticket id in any label."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from agents.metrics import MonitorMetrics, exported_names

DIMS = {"service": "payments", "customer": "acme", "priority": "P1"}


def survey(ticket: str, positive: bool) -> dict[str, Any]:
    return {"kind": "survey", "id": f"{ticket}:survey:s-{ticket}", "ticket_id": ticket, **DIMS,
            "score": 5.0 if positive else 2.0, "positive": positive}


def window(start: str, **csat: Any) -> dict[str, Any]:
    return {"kind": "compliance", "id": f"payments:acme:P1:response:day:{start}", **DIMS,
            "metric": "response", "window": "day", "window_start": start, "met": 3,
            "breached": 1, "total": 4, "compliance_ratio": 0.75, **csat}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_surveys_are_counted_once_by_whether_positive() -> None:
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    for record in (survey("T1", True), survey("T2", False), survey("T1", True)):
        metrics.observe(record)
    assert value(registry, "slamon_csat_surveys_total", **DIMS, positive="true") == 1.0
    assert value(registry, "slamon_csat_surveys_total", **DIMS, positive="false") == 1.0


def test_a_windows_csat_and_its_split_by_clock() -> None:
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    metrics.observe(window("2026-11-02T00:00:00Z", surveys=4, positive=3, csat_ratio=0.75,
                           csat_met_ratio=1.0, csat_breached_ratio=0.0))
    assert value(registry, "slamon_csat_ratio", **DIMS, window="day") == 0.75
    split = {**DIMS, "metric": "response", "window": "day"}
    assert value(registry, "slamon_csat_by_clock_ratio", **split, clock="met") == 1.0
    assert value(registry, "slamon_csat_by_clock_ratio", **split, clock="breached") == 0.0
    # The next day had surveys of met clocks only: the breached split goes, not stays stale.
    metrics.observe(window("2026-11-03T00:00:00Z", surveys=2, positive=1, csat_ratio=0.5,
                           csat_met_ratio=0.5, csat_breached_ratio=None))
    assert value(registry, "slamon_csat_ratio", **DIMS, window="day") == 0.5
    assert value(registry, "slamon_csat_by_clock_ratio", **split, clock="breached") is None
    # An older window never overwrites; a window without surveys leaves CSAT alone.
    metrics.observe(window("2026-11-01T00:00:00Z", surveys=1, positive=0, csat_ratio=0.0))
    metrics.observe(window("2026-11-04T00:00:00Z"))
    assert value(registry, "slamon_csat_ratio", **DIMS, window="day") == 0.5


def test_the_csat_names_are_exported() -> None:
    assert {"slamon_csat_ratio", "slamon_csat_by_clock_ratio", "slamon_csat_surveys_total"} \
        <= exported_names()
