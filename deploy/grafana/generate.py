"""Generate slamon's Grafana dashboards (deploy/grafana/dashboards/*.json).

Run `python deploy/grafana/generate.py` after a change and commit the JSON with it;
tests/unit/test_grafana_dashboards.py checks the committed files match this output.
Every panel queries the `$datasource` variable; rates use `$__rate_interval`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARDS", "overview", "ingest", "customer", "render", "main"]

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
RI = "$__rate_interval"
COMPLIANCE_STEPS: list[dict[str, Any]] = [
    {"color": "red", "value": None}, {"color": "orange", "value": 0.95},
    {"color": "green", "value": 0.99}]
CUSTOMER_LINK = {"title": "Customer view: ${__field.labels.customer}",
                 "url": "/d/slamon-customer/?var-customer=${__field.labels.customer}"
                        "&${datasource:queryparam}"}
Panel = dict[str, Any]


class Grid:
    """Lays panels out left to right, 24 columns wide, starting a new line when full."""

    def __init__(self) -> None:
        self.panels: list[Panel] = []
        self._x = self._y = self._line_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self._add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)

    def add(self, panel: Panel, w: int, h: int) -> None:
        if self._x + w > 24:
            self._newline()
        self._add(panel, w, h)

    def _add(self, panel: Panel, w: int, h: int) -> None:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self._x, "y": self._y, "w": w, "h": h}
        self.panels.append(panel)
        self._x += w
        self._line_h = max(self._line_h, h)
        if self._x >= 24:
            self._newline()

    def _newline(self) -> None:
        self._y += self._line_h
        self._x = self._line_h = 0


def target(expr: str, legend: str = "", *, instant: bool = False,
           exemplar: bool = False) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto",
            "instant": instant, "range": not instant, "exemplar": exemplar}


def _with_refs(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"refId": chr(ord("A") + i), **t} for i, t in enumerate(targets)]


def _thresholds(steps: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {"mode": "absolute", "steps": steps or [{"color": "green", "value": None}]}


def timeseries(title: str, targets: list[dict[str, Any]], unit: str, *, description: str = "",
               bars: bool = False, stack: bool = False, lines_at: list[float] | None = None,
               minimum: float | None = None) -> Panel:
    custom: dict[str, Any] = {"drawStyle": "bars" if bars else "line", "fillOpacity": 20,
                              "lineWidth": 1, "showPoints": "never", "spanNulls": False,
                              "stacking": {"mode": "normal" if stack else "none"}}
    steps: list[dict[str, Any]] | None = None
    if lines_at:
        custom["thresholdsStyle"] = {"mode": "line+area"}
        colours = ["orange", "red"]
        steps = [{"color": "transparent", "value": None}]
        steps += [{"color": colours[min(i, 1)], "value": v} for i, v in enumerate(lines_at)]
    defaults: dict[str, Any] = {"unit": unit, "custom": custom, "thresholds": _thresholds(steps),
                                "color": {"mode": "palette-classic"}}
    if minimum is not None:
        defaults["min"] = minimum
    return {"type": "timeseries", "title": title, "description": description, "datasource": DS,
            "targets": _with_refs(targets), "fieldConfig": {"defaults": defaults,
                                                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title: str, targets: list[dict[str, Any]], unit: str, *, description: str = "",
         steps: list[dict[str, Any]] | None = None, time_from: str | None = None) -> Panel:
    panel: Panel = {
        "type": "stat", "title": title, "description": description, "datasource": DS,
        "targets": _with_refs(targets),
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": _thresholds(steps),
                                     "color": {"mode": "thresholds"}}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background", "graphMode": "none", "textMode": "auto",
                    "justifyMode": "auto", "orientation": "auto"}}
    if time_from:
        panel["timeFrom"] = time_from
    return panel


def bargauge(title: str, targets: list[dict[str, Any]], unit: str, *, description: str = "",
             steps: list[dict[str, Any]] | None = None, minimum: float = 0, maximum: float = 1,
             links: list[dict[str, str]] | None = None) -> Panel:
    return {"type": "bargauge", "title": title, "description": description, "datasource": DS,
            "targets": _with_refs(targets),
            "fieldConfig": {"defaults": {"unit": unit, "min": minimum, "max": maximum,
                                         "decimals": 2, "thresholds": _thresholds(steps),
                                         "color": {"mode": "thresholds"},
                                         "links": links or []}, "overrides": []},
            "options": {"displayMode": "gradient", "orientation": "horizontal",
                        "showUnfilled": True, "valueMode": "color",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                          "values": False}}}


def datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
            "options": []}


def query_variable(name: str, query: str, *, multi: bool) -> dict[str, Any]:
    return {"name": name, "label": name.capitalize(), "type": "query", "datasource": DS,
            "definition": query, "query": {"query": query, "refId": f"{name}-values"},
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": multi,
            "allValue": ".*" if multi else None, "current": {}, "hide": 0, "options": []}


def window_variable() -> dict[str, Any]:
    options = [{"text": w, "value": w, "selected": w == "day"} for w in ("hour", "day", "month")]
    return {"name": "window", "label": "Compliance window", "type": "custom",
            "query": "hour,day,month", "current": {"text": "day", "value": "day"},
            "options": options, "multi": False, "includeAll": False, "hide": 0}


def dashboard(uid: str, title: str, description: str, variables: list[dict[str, Any]],
              panels: list[Panel]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["slamon"],
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "graphTooltip": 1,
        "timezone": "utc", "time": {"from": "now-6h", "to": "now"}, "refresh": "10s",
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "annotations": {"list": []},
        "links": [{"title": "slamon", "type": "dashboards", "tags": ["slamon"],
                   "asDropdown": True, "includeVars": True, "keepTime": True}],
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": panels,
    }


def overview() -> dict[str, Any]:
    """Operations overview: breaches now, at-risk clocks, compliance, monitor health, ingest."""
    sel = 'customer=~"$customer", service=~"$service"'
    g = Grid()
    g.row("SLA now")
    g.add(stat("Breaches, last 15 min", [target(
        f"sum(increase(slamon_clock_breaches_total{{{sel}}}[$__range])) or vector(0)",
        instant=True)], "short", time_from="15m",
        steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        description="Clocks that reached their target (alert: SLABreach)."), 4, 4)
    g.add(stat("Warnings, last 15 min", [target(
        f"sum(increase(slamon_clock_warnings_total{{{sel}}}[$__range])) or vector(0)",
        instant=True)], "short", time_from="15m",
        steps=[{"color": "green", "value": None}, {"color": "orange", "value": 1}]), 4, 4)
    g.add(stat("Running clocks", [target(
        'sum(slamon_clock_open{state="running"})', instant=True)], "short"), 4, 4)
    g.add(stat("Paused clocks", [target(
        'sum(slamon_clock_open{state="paused"})', instant=True)], "short"), 4, 4)
    g.add(stat("Detection delay p99", [target(
        "slamon:breach_detection_delay_seconds:p99_rate5m", instant=True)], "s",
        steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        description="Breach emission minus deadline, 5 min (alert over 1 s)."), 4, 4)
    g.add(stat("Workers up", [target('sum(up{job="slamon"})', instant=True)], "short",
               steps=[{"color": "red", "value": None}, {"color": "green", "value": 1}]), 4, 4)
    g.add(timeseries("Breaches by customer / service", [target(
        f"sum by (customer, service, metric) (increase(slamon_clock_breaches_total{{{sel}}}"
        f"[{RI}]))", "{{customer}} / {{service}} {{metric}}", exemplar=True)], "short",
        bars=True, stack=True), 12, 8)
    g.add(timeseries("At-risk clocks: warnings by threshold", [target(
        f"sum by (threshold, metric) (increase(slamon_clock_warnings_total{{{sel}}}[{RI}]))",
        "{{metric}} at {{threshold}} of target")], "short", bars=True, stack=True,
        description="Clocks crossing a warn_at fraction (alert: SLAAtRiskClimbing)."), 12, 8)
    g.row("Compliance")
    g.add(bargauge("Compliance by customer / service ($window, worst metric)", [target(
        f'min by (customer, service) (slamon_compliance_ratio{{{sel}, window="$window"}})',
        "{{customer}} / {{service}}", instant=True)], "percentunit", minimum=0.9,
        steps=COMPLIANCE_STEPS, links=[CUSTOMER_LINK]), 12, 10)
    g.add(timeseries("Error-budget burn rate, 1h", [target(
        f"slamon:sla_burn_rate:rate1h{{{sel}}}", "{{customer}} / {{service}} {{metric}}")],
        "suffix:x", lines_at=[6, 14.4], minimum=0,
        description="1 spends the budget exactly over the period; 14.4 pages "
                    "(alert: SLAComplianceBurnRate)."), 12, 10)
    g.add(timeseries("Compliance by customer ($window)", [target(
        f'min by (customer) (slamon_compliance_ratio{{{sel}, window="$window"}})',
        "{{customer}}")], "percentunit"), 12, 8)
    g.add(timeseries("SLA error ratio, 1h", [target(
        f"slamon:sla_error_ratio:rate1h{{{sel}}}", "{{customer}} / {{service}} {{metric}}")],
        "percentunit", minimum=0), 12, 8)
    g.row("Clocks")
    g.add(timeseries("Open clocks", [target(
        "sum by (metric, state) (slamon_clock_open)", "{{metric}} {{state}}")], "short"), 8, 8)
    for metric in ("response", "resolution"):
        name = f"slamon_clock_{metric}_duration_seconds_bucket"
        g.add(timeseries(f"{metric.capitalize()} time (working), p50 / p90", [
            target(f"histogram_quantile({q}, sum by (le) (rate({name}{{{sel}}}[{RI}])))",
                   f"p{int(q * 100)}", exemplar=q == 0.9) for q in (0.5, 0.9)], "s"), 8, 8)
    g.add(timeseries("Outcomes by status", [target(
        f"sum by (status) (increase(slamon_clock_outcomes_total{{{sel}}}[{RI}]))",
        "{{status}}")], "short", bars=True, stack=True), 12, 8)
    g.add(timeseries("Retracted breaches and warnings", [target(
        f"sum by (kind) (increase(slamon_clock_retractions_total{{{sel}}}[{RI}]))",
        "{{kind}}")], "short", bars=True), 12, 8)
    g.row("Monitor health")
    g.add(timeseries("Breach detection delay", [
        target(f"histogram_quantile({q}, sum by (le) "
               f"(rate(slamon_breach_detection_delay_seconds_bucket[{RI}])))",
               f"p{int(q * 100)}", exemplar=True) for q in (0.5, 0.99)], "s",
        lines_at=[1], minimum=0), 8, 8)
    g.add(timeseries("Events applied by type", [target(
        f"sum by (type) (rate(slamon_events_total[{RI}]))", "{{type}}")], "cps",
        stack=True), 8, 8)
    g.add(timeseries("Rejected input by reason", [target(
        f"sum by (reason) (rate(slamon_events_rejected_total[{RI}])) > 0", "{{reason}}")],
        "cps", stack=True), 8, 8)
    g.add(timeseries("Consumer lag by topic", [target(
        "sum by (topic) (max by (topic, partition) (slamon_consumer_lag_messages))",
        "{{topic}}")], "short", minimum=0), 8, 8)
    g.add(timeseries("Time since the last event", [target(
        "time() - max(slamon_events_last_timestamp_seconds)", "seconds ago")], "s",
        lines_at=[900], minimum=0), 8, 8)
    g.add(timeseries("Workers ready", [target(
        "sum by (instance) (slamon_worker_ready)", "{{instance}}")], "short", minimum=0,
        description="1: the worker handles its partitions; 0: it rebuilds its tables, "
                    "rebalances or cannot reach the broker (/readyz says which; alert: "
                    "SlamonNotReady). Its lag is not reported meanwhile."), 8, 8)
    g.add(timeseries("Worker CPU", [target(
        f"sum by (instance) (rate(process_cpu_seconds_total[{RI}]))", "{{instance}}")],
        "percentunit", minimum=0,
        description="Share of one core each worker uses: a worker near 100% falls behind "
                    "(see the consumer lag)."), 8, 8)
    g.add(timeseries("Worker memory (RSS)", [target(
        "sum by (instance) (process_resident_memory_bytes)", "{{instance}}")], "bytes",
        minimum=0, description="Grows with open tickets (~1-4 KB each) up to the decoded-state "
                               "cache's 200,000 tickets."), 8, 8)
    g.add(timeseries("Full garbage collections", [target(
        f'sum by (instance) (increase(python_gc_collections_total{{generation="2"}}[{RI}]))',
        "{{instance}}")], "short", bars=True, minimum=0,
        description="Each pauses a worker for ~0.2 s at 200,000 cached tickets; a worker "
                    "makes them at start, at each rebalance and about once per 4 million "
                    "events."), 8, 8)
    ingest(g)
    return dashboard("slamon-overview", "slamon / Operations overview",
                     "Breaches as they fire, at-risk clocks, compliance by customer and "
                     "service, the monitor's own health and the service-desk webhooks.",
                     customer_variables(several=True), g.panels)


def ingest(g: Grid) -> None:
    """The webhook receiver and translator (agents/ingest/metrics.py), by configured source."""
    requests = "slamon_ingest_requests_total"
    g.row("Ingest")
    g.add(timeseries("Accepted webhooks by source", [target(
        f'sum by (source) (rate({requests}{{outcome="accepted"}}[{RI}]))', "{{source}}")],
        "reqps", stack=True, minimum=0,
        description="Deliveries answered 202: the raw payload is on <prefix>raw."), 8, 8)
    g.add(timeseries("Refused webhooks by outcome", [target(
        f'sum by (source, outcome) (rate({requests}{{outcome!="accepted"}}[{RI}])) > 0',
        "{{source}} {{outcome}}")], "reqps", stack=True, minimum=0,
        description="401 missing_signature, bad_signature, stale_timestamp (alert: "
                    "SlamonIngestRefusing); 413 too_large; 400 unparsable; 404 unknown_source; "
                    "503 broker_unavailable (SlamonIngestBrokerUnavailable), source_unavailable "
                    "(SlamonIngestSourceUnavailable)."), 8, 8)
    g.add(timeseries("Accept latency by source, p50 / p99", [
        target(f"histogram_quantile({q}, sum by (source, le) "
               f"(rate(slamon_ingest_accept_seconds_bucket[{RI}])))",
               f"{{{{source}}}} p{int(q * 100)}") for q in (0.5, 0.99)], "s", minimum=0,
        description="Arrival to the broker's acknowledgement of the raw payload: what the "
                    "desk waits for (accepted deliveries only)."), 8, 8)
    g.add(timeseries("Events made by type", [target(
        f"sum by (type) (rate(slamon_ingest_events_total[{RI}]))", "{{type}}")], "cps",
        stack=True, minimum=0,
        description="slamon events the translator wrote to <prefix>events."), 8, 8)
    g.add(timeseries("Dead letters by reason", [target(
        f"sum by (source, reason) (increase(slamon_ingest_dead_letters_total[{RI}])) > 0",
        "{{source}} {{reason}}")], "short", bars=True, stack=True,
        description="Payloads sent to <prefix>raw.dlq with the reason (alert: "
                    "SlamonIngestDeadLetters)."), 8, 8)
    g.add(timeseries("Redeliveries by source", [target(
        f"sum by (source) (rate(slamon_ingest_redeliveries_total[{RI}]))", "{{source}}")],
        "cps", stack=True, minimum=0,
        description="Deliveries translated before: a desk's retries, which change "
                    "nothing."), 8, 8)


def customer() -> dict[str, Any]:
    """One customer's agreement: compliance per window, budget burn, breaches, durations."""
    sel = 'customer="$customer", service=~"$service"'
    g = Grid()
    g.row("Agreement: $customer")
    g.add(bargauge("Agreed level by service", [target(
        f"max by (service) (slamon_compliance_objective_ratio{{{sel}}})", "{{service}}",
        instant=True)], "percentunit", minimum=0.9), 8, 6)
    g.add(bargauge("Compliance this $window", [target(
        f'min by (service, metric) (slamon_compliance_ratio{{{sel}, window="$window"}})',
        "{{service}} {{metric}}", instant=True)], "percentunit", minimum=0.9,
        steps=COMPLIANCE_STEPS), 8, 6)
    g.add(stat("Breaches in range", [target(
        f"sum(increase(slamon_clock_breaches_total{{{sel}}}[$__range])) or vector(0)",
        instant=True)], "short",
        steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}]), 4, 6)
    g.add(stat("Warnings in range", [target(
        f"sum(increase(slamon_clock_warnings_total{{{sel}}}[$__range])) or vector(0)",
        instant=True)], "short",
        steps=[{"color": "green", "value": None}, {"color": "orange", "value": 1}]), 4, 6)
    g.row("Error budget")
    g.add(timeseries("Burn rate (1h, 6h)", [
        target(f"slamon:sla_burn_rate:rate{w}{{{sel}}}", f"{{{{service}}}} {{{{metric}}}} {w}")
        for w in ("1h", "6h")], "suffix:x", lines_at=[6, 14.4], minimum=0), 12, 8)
    g.add(timeseries("SLA error ratio (1h, 1d)", [
        target(f"slamon:sla_error_ratio:rate{w}{{{sel}}}", f"{{{{service}}}} {{{{metric}}}} {w}")
        for w in ("1h", "1d")], "percentunit", minimum=0), 12, 8)
    g.add(timeseries("Compliance by priority ($window)", [target(
        f'slamon_compliance_ratio{{{sel}, window="$window"}}',
        "{{service}} {{priority}} {{metric}}")], "percentunit"), 24, 8)
    g.row("Clocks")
    g.add(timeseries("Breaches by service", [target(
        f"sum by (service, priority, metric) (increase(slamon_clock_breaches_total{{{sel}}}"
        f"[{RI}]))", "{{service}} {{priority}} {{metric}}", exemplar=True)], "short",
        bars=True, stack=True), 12, 8)
    g.add(timeseries("Outcomes by status", [target(
        f"sum by (status) (increase(slamon_clock_outcomes_total{{{sel}}}[{RI}]))",
        "{{status}}")], "short", bars=True, stack=True), 12, 8)
    for metric in ("response", "resolution"):
        name = f"slamon_clock_{metric}_duration_seconds_bucket"
        g.add(timeseries(f"{metric.capitalize()} time (working) p90 by service", [target(
            f"histogram_quantile(0.9, sum by (le, service, priority) (rate({name}{{{sel}}}"
            f"[{RI}])))", "{{service}} {{priority}}", exemplar=True)], "s"), 12, 8)
    g.add(timeseries("At-risk clocks: warnings by threshold", [target(
        f"sum by (service, threshold) (increase(slamon_clock_warnings_total{{{sel}}}[{RI}]))",
        "{{service}} at {{threshold}}")], "short", bars=True, stack=True), 24, 8)
    g.row("Customer satisfaction")
    g.add(timeseries("CSAT by priority ($window)", [target(
        f'slamon_csat_ratio{{{sel}, window="$window"}}', "{{service}} {{priority}}")],
        "percentunit", minimum=0,
        description="Positive / received surveys of the latest closed window."), 10, 8)
    g.add(timeseries("CSAT when the clock was met or breached ($window)", [target(
        f'slamon_csat_by_clock_ratio{{{sel}, window="$window"}}',
        "{{service}} {{metric}} {{clock}}")], "percentunit", minimum=0,
        description="Does breaching hurt satisfaction? CSAT of the surveys whose ticket's "
                    "clock of the metric was met, and of those whose clock was breached."),
        10, 8)
    g.add(stat("Surveys in range", [target(
        f"sum(increase(slamon_csat_surveys_total{{{sel}}}[$__range])) or vector(0)",
        instant=True)], "short"), 4, 8)
    return dashboard("slamon-customer", "slamon / Customer",
                     "One customer's service levels: compliance per window against the "
                     "agreed level, error-budget burn, breaches and working-time durations.",
                     customer_variables(several=False), g.panels)


def customer_variables(several: bool) -> list[dict[str, Any]]:
    """$customer (one, or `several`), $service among that customer's, and $window."""
    match = "=~" if several else "="
    return [
        query_variable("customer", "label_values(slamon_clock_outcomes_total, customer)",
                       multi=several),
        query_variable("service", f'label_values(slamon_clock_outcomes_total{{customer{match}'
                                  f'"$customer"}}, service)', multi=True),
        window_variable(),
    ]


DASHBOARDS = {"slamon-overview.json": overview, "slamon-customer.json": customer}


def render(build: Any) -> str:
    """A dashboard as the JSON text committed under dashboards/."""
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        (OUT / name).write_text(render(build))
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
