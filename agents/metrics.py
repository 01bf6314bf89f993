"""The monitor's own Prometheus metrics, fed from the output records it publishes.

`MonitorMetrics` registers every slamon metric on a `CollectorRegistry` that
the caller passes in (never the global one; nothing is created at import
time). The live path calls one `observe_*` method per record it publishes
(the plain dicts of DESIGN.md "Outputs") or `observe(record)` to dispatch on
`kind`, plus the setters for open clocks, consumer lag and objectives.

Labels are bounded (service, customer, priority, metric, and small code sets);
a ticket id only ever travels in an exemplar. Exemplars are exposed in the
OpenMetrics format only: serve `/metrics` with `exposition()`.

The counters and histograms counted per record keep their counts in plain
structures (`agents.metriccounts`: a dict lookup and an add, ~1 us a record
with the exemplar, where prometheus-client's inc/observe with exemplar validation
took ~5 us); the gauges, set rarely, are prometheus-client Gauges. One collector
exposes them all, in the order below, as prometheus-client's own metrics did.

Conventions the alert rules in deploy/prometheus rely on:
- `slamon_clock_outcomes_total` counts each clock once, at its first outcome
  (revision 0); later revisions go to `slamon_clock_outcome_revisions_total`.
  The exact, revision-aware figure is `slamon_compliance_ratio`.
- Children for every status of a clock's dimensions are created at 0 the first
  time the dimensions are seen, so `increase()` sees the next breach.
- A record id seen recently is not counted twice (a redelivery is harmless).
- Customer satisfaction: `slamon_csat_surveys_total` counts accepted surveys (the
  `survey` records) by whether they were positive; `slamon_csat_ratio` is the CSAT
  (positive / received) of the latest window reported, per service, customer and
  priority; `slamon_csat_by_clock_ratio` splits it by whether the ticket's clock of
  `metric` was met or breached. A survey's comment never becomes a label.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import choose_encoder

from agents.metriccounts import CounterCounts, Families, HistogramCounts
from sla.errors import REASONS
from sla.events import parse_ts

__all__ = [
    "MonitorMetrics",
    "ObjectiveLookup",
    "DETECTION_DELAY_BUCKETS",
    "REJECT_REASONS",
    "duration_buckets",
    "exported_names",
    "exposition",
    "format_threshold",
]

# A dict, not a Mapping: compiled, `rec.get` is then a dict lookup, not a method call.
Record = dict[str, Any]
ObjectiveLookup = Callable[[str, str], float | None]  # (customer, service) -> agreed ratio

# The buckets are not Final: compiled (mypyc 2.4), a Final tuple of floats read in a
# function raised NameError ("value for final name ... was not set"). None is on a hot path.
# Breach detection delay: emission minus deadline; the monitor aims well under a second.
DETECTION_DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Duration buckets sit at each target and at these fractions and multiples of it.
TARGET_FRACTIONS = (0.5, 0.75, 0.9, 1.0, 2.0, 4.0)
# Used for a metric without known targets: 1m .. 3d.
DEFAULT_DURATION_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
                           86400.0, 259200.0)
CLOCK_LABELS: Final = ("service", "customer", "priority", "metric")
STATUSES: Final = ("met", "breached", "cancelled")
# Every reject code slamon gives (sla.errors.REASONS): created at 0 so the first is a rate.
REJECT_REASONS: Final = REASONS
_SEEN_IDS: Final = 16384
_NAME_UNSAFE: Final = re.compile(r"[^a-zA-Z0-9_]")


def duration_buckets(targets: Iterable[float]) -> tuple[float, ...]:
    """Histogram bounds at every target and at fractions and multiples of it (+Inf is implied)."""
    bounds = {round(t * f, 3) for t in targets if t > 0 for f in TARGET_FRACTIONS}
    return tuple(sorted(bounds)) or DEFAULT_DURATION_BUCKETS


def format_threshold(fraction: float) -> str:
    """The `threshold` label of a warning: the configured fraction, e.g. 0.75 -> "0.75"."""
    return f"{float(fraction):g}"


def _metric_slug(metric: str) -> str:
    return _NAME_UNSAFE.sub("_", metric).lower()


def _seconds(value: Any) -> float:
    """An RFC 3339 string (or epoch milliseconds) -> epoch seconds."""
    return parse_ts(value) / 1000


def _dims(rec: Record) -> tuple[str, str, str, str]:
    return (str(rec.get("service") or ""), str(rec.get("customer") or ""),
            str(rec.get("priority") or ""), str(rec.get("metric") or ""))


class _RecentIds:
    """A bounded set of the most recent record ids."""

    def __init__(self, size: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, record_id: Any) -> bool:
        """True if the id is new (or absent); remembers it."""
        if record_id is None:
            return True
        if record_id in self._ids:
            return False
        self._ids[record_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


class MonitorMetrics:
    """Every slamon metric on one registry, with cheap observe methods for the live path."""

    def __init__(
        self,
        registry: CollectorRegistry,
        metrics: Sequence[str] = ("response", "resolution"),
        targets: Mapping[str, Iterable[float]] | None = None,
        objective_for: ObjectiveLookup | None = None,
    ) -> None:
        """`targets`: per metric, the distinct target seconds of the policy (histogram buckets).

        `objective_for(customer, service)` gives the agreed compliance ratio (or None); it is
        asked once per pair seen in a record and exported as slamon_compliance_objective_ratio.
        """
        self._targets = {m: tuple(ts) for m, ts in (targets or {}).items()}
        self._objective_for = objective_for
        self._children: dict[tuple, Any] = {}
        self._seen_dims: set[tuple[str, str, str, str]] = set()
        self._seen_pairs: set[tuple[str, str]] = set()
        self._recent = _RecentIds(_SEEN_IDS)
        self._window_starts: dict[tuple[str, ...], float] = {}
        self._lag_keys: set[tuple[str, str]] = set()
        self.breaches = CounterCounts("slamon_clock_breaches", "SLA breaches fired, per clock.",
                                      CLOCK_LABELS)
        self.warnings = CounterCounts(
            "slamon_clock_warnings",
            "At-risk warnings fired at a configured fraction of the target.",
            (*CLOCK_LABELS, "threshold"))
        self.outcomes = CounterCounts("slamon_clock_outcomes",
                                      "Stopped clocks by first outcome (revision 0).",
                                      (*CLOCK_LABELS, "status"))
        self.revisions = CounterCounts("slamon_clock_outcome_revisions",
                                       "Revised outcomes (reopen, late event) by new status.",
                                       (*CLOCK_LABELS, "status"))
        self.retractions = CounterCounts(
            "slamon_clock_retractions",
            "Outputs (breach, warning, outcome) withdrawn by a late event.",
            ("service", "customer", "metric", "kind"))
        self.open_clocks = Gauge("slamon_clock_open", "Open clocks of this worker's partitions.",
                                 ("metric", "state"), registry=None)
        self.compliance = Gauge("slamon_compliance_ratio",
                                "Met / (met + breached) of the latest window reported.",
                                (*CLOCK_LABELS, "window"), registry=None)
        self.csat = Gauge("slamon_csat_ratio",
                          "Positive / received satisfaction surveys of the latest window.",
                          ("service", "customer", "priority", "window"), registry=None)
        self.csat_by_clock = Gauge(
            "slamon_csat_by_clock_ratio",
            "CSAT of the latest window's surveys whose ticket's clock of the metric was met or "
            "breached.", (*CLOCK_LABELS, "window", "clock"), registry=None)
        self.surveys = CounterCounts("slamon_csat_surveys", "Satisfaction surveys accepted.",
                                     ("service", "customer", "priority", "positive"))
        self.objective = Gauge("slamon_compliance_objective_ratio",
                               "The customer's agreed compliance level for a service.",
                               ("customer", "service"), registry=None)
        self.events = CounterCounts("slamon_events", "Service events applied, by type.",
                                    ("type",))
        self.rejected = CounterCounts("slamon_events_rejected",
                                      "Input rejected to the DLQ, by reason.", ("reason",))
        for reason in REJECT_REASONS:
            self.rejected.prime((reason,))
        self.last_event = Gauge("slamon_events_last_timestamp_seconds",
                                "Wall time of the last service event processed.", registry=None)
        self.lag = Gauge("slamon_consumer_lag_messages", "Messages behind the end of a partition.",
                         ("topic", "partition"), registry=None)
        # A worker that is up and not ready handles none of its partitions and reports no
        # lag meanwhile: only this says so (alert SlamonNotReady). Read at each scrape.
        self.ready = Gauge("slamon_worker_ready",
                           "1 when the worker handles its partitions (/readyz 200); 0 while it "
                           "rebuilds its tables, rebalances or cannot reach the broker.",
                           registry=None)
        self.detection_delay = HistogramCounts(
            "slamon_breach_detection_delay_seconds",
            "Breach emission time minus the instant the breach became due.", (),
            DETECTION_DELAY_BUCKETS)
        self._families = Families([
            self.breaches, self.warnings, self.outcomes, self.revisions, self.retractions,
            self.open_clocks, self.compliance, self.csat, self.csat_by_clock, self.surveys,
            self.objective, self.events, self.rejected, self.last_event, self.lag, self.ready,
            self.detection_delay])
        self.durations: dict[str, HistogramCounts] = {}
        for metric in metrics:
            self._duration_histogram(metric)
        registry.register(self._families)

    # -- clock outputs -------------------------------------------------------------------------
    def observe(self, rec: Record) -> None:
        """Dispatch an output record on its `kind` (a `rejected` record counts its reason)."""
        # The commonest kinds first. Compiled, comparing strings costs less than a table of
        # handlers, each a lambda calling a method.
        kind = rec.get("kind")
        if kind == "warning":
            self.observe_warning(rec)
        elif kind == "outcome":
            self.observe_outcome(rec)
        elif kind == "breach":
            self.observe_breach(rec)
        elif kind == "compliance":
            self.observe_compliance(rec)
        elif kind == "retraction":
            self.observe_retraction(rec)
        elif kind == "survey":
            self.observe_survey(rec)
        elif kind == "rejected":
            self.observe_reject(str(rec.get("reason") or ""))

    def observe_breach(self, rec: Record, emitted_at: float | None = None) -> None:
        """Count a breach; observe its detection delay (`emitted_at` epoch s, else detected_at).

        The delay is measured from `breached_at`: the deadline itself, except for a retarget
        whose new target was already passed, where the breach only became due at the retarget.
        """
        if not self._recent.add(rec.get("id")):
            return
        dims = self._prime(rec)
        ticket = rec.get("ticket_id")
        self.breaches.inc(dims, ticket)
        due = rec.get("breached_at") or rec.get("deadline")
        emitted = emitted_at if emitted_at is not None else rec.get("detected_at")
        if due is not None and emitted is not None:
            sent = emitted if isinstance(emitted, float | int) else _seconds(emitted)
            delay = max(0.0, sent - _seconds(due))
            self.detection_delay.observe((), delay, ticket)

    def observe_warning(self, rec: Record) -> None:
        """Count a warning at its threshold (the configured fraction of the target)."""
        if not self._recent.add(rec.get("id")):
            return
        service, customer, priority, metric = self._prime(rec)
        labels = (service, customer, priority, metric,
                  format_threshold(rec.get("threshold") or 0.0))
        self.warnings.inc(labels, rec.get("ticket_id"))

    def observe_outcome(self, rec: Record) -> None:
        """Count a stopped clock; observe its counted seconds (met or breached) with the ticket."""
        if not self._recent.add(rec.get("id")):
            return
        service, customer, priority, metric = self._prime(rec)
        status = str(rec.get("status") or "")
        # Label tuples spelled out: compiled, `(*dims, status)` builds a list and converts it.
        if rec.get("revision") or 0:
            self.revisions.inc((service, customer, priority, metric, status))
            return
        self.outcomes.inc((service, customer, priority, metric, status))
        elapsed = rec.get("elapsed_seconds")
        if status != "cancelled" and elapsed is not None:
            histogram = self._duration_histogram(metric)
            histogram.observe((service, customer, priority), float(elapsed), rec.get("ticket_id"))

    def observe_retraction(self, rec: Record) -> None:
        """Count a withdrawn output (a breach, warning or outcome a late event undid), by kind."""
        if not self._recent.add(rec.get("id")):
            return
        service, customer, _, metric = _dims(rec)
        labels = (service, customer, metric, str(rec.get("retracts_kind") or ""))
        self.retractions.inc(labels)

    def observe_compliance(self, rec: Record) -> None:
        """Set the compliance ratio of the record's window; an older window never overwrites."""
        service, customer, priority, metric = _dims(rec)
        labels = (service, customer, priority, metric, str(rec.get("window") or ""))
        start = _seconds(rec["window_start"]) if rec.get("window_start") else 0.0
        if start < self._window_starts.get(labels, float("-inf")):
            return
        self._window_starts[labels] = start
        self._observe_csat(rec, labels)
        ratio = rec.get("compliance_ratio")
        if ratio is None or not rec.get("total", 1):
            self.compliance.remove(*labels)
            self._children.pop((id(self.compliance), labels), None)
            return
        self._child(self.compliance, labels).set(float(ratio))

    def _observe_csat(self, rec: Record, labels: tuple[str, ...]) -> None:
        """CSAT of a window that counted surveys (the same on each metric's record)."""
        if not rec.get("surveys"):
            return
        service, customer, priority, metric, window = labels
        if rec.get("csat_ratio") is not None:
            self._child(self.csat, (service, customer, priority, window)).set(
                float(rec["csat_ratio"]))
        for clock in ("met", "breached"):
            value = rec.get(f"csat_{clock}_ratio")
            split = (*labels, clock)
            if value is not None:
                self._child(self.csat_by_clock, split).set(float(value))
            elif self._children.pop((id(self.csat_by_clock), split), None) is not None:
                self.csat_by_clock.remove(*split)  # no survey of that kind in this window

    def observe_survey(self, rec: Record) -> None:
        """Count an accepted satisfaction survey (positive or not), the ticket as exemplar."""
        if not self._recent.add(rec.get("id")):
            return
        service, customer, priority, _ = _dims(rec)
        positive = "true" if rec.get("positive") else "false"
        for flag in ("true", "false"):  # both children exist once the dimensions are seen
            self.surveys.prime((service, customer, priority, flag))
        self.surveys.inc((service, customer, priority, positive), rec.get("ticket_id"))

    # -- input and consumer --------------------------------------------------------------------
    def observe_event(self, event_type: str, at: float | None = None, count: int = 1) -> None:
        """Count `count` applied events; `at` (epoch s, default now) becomes the last-event time."""
        self.events.inc((event_type,), None, count)
        self.last_event.set(time.time() if at is None else at)

    def observe_reject(self, reason: str, count: int = 1) -> None:
        """Count rejected input by its reason code (one of `sla.errors.REASONS`)."""
        self.rejected.inc((reason,), None, count)

    def set_open_clocks(self, metric: str, state: str, n: int) -> None:
        """The number of open clocks of `metric` in `state` (running or paused) on this worker."""
        self._child(self.open_clocks, (metric, state)).set(n)

    def set_lag(self, topic: str, partition: int | str, lag: int) -> None:
        """Messages between the committed offset and the end of a partition this worker owns."""
        key = (topic, str(partition))
        self._lag_keys.add(key)
        self._child(self.lag, key).set(lag)

    def forget_partitions(self, keep: Iterable[tuple[str, int | str]] = ()) -> None:
        """Drop the lag of every partition not in `keep` (call after a rebalance)."""
        kept = {(topic, str(partition)) for topic, partition in keep}
        for key in self._lag_keys - kept:
            self.lag.remove(*key)
            self._children.pop((id(self.lag), key), None)
        self._lag_keys &= kept

    # -- objectives ----------------------------------------------------------------------------
    def set_objective(self, customer: str, service: str, ratio: float | None) -> None:
        """The agreed compliance level of (customer, service); None removes it."""
        key = (customer, service)
        self._seen_pairs.add(key)
        if ratio is None:
            self.objective.remove(*key)
        else:
            self.objective.labels(*key).set(ratio)

    def set_objective_source(self, objective_for: ObjectiveLookup | None) -> None:
        """Replace the objective lookup (a policy reload) and re-ask it for every pair seen."""
        self._objective_for = objective_for
        for customer, service in sorted(self._seen_pairs):
            ratio = None if objective_for is None else objective_for(customer, service)
            self.set_objective(customer, service, ratio)

    def set_ready_source(self, ready: Callable[[], bool]) -> None:
        """slamon_worker_ready reads `ready()` at each scrape (0 until this is called)."""
        self.ready.set_function(lambda: 1.0 if ready() else 0.0)

    # -- internals -----------------------------------------------------------------------------
    def _child(self, parent: Any, labels: tuple[str, ...]) -> Any:
        key = (id(parent), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = parent.labels(*labels)
        return child

    def _prime(self, rec: Record) -> tuple[str, str, str, str]:
        """The record's clock labels; the first time, create their counters at 0."""
        dims = _dims(rec)
        if dims not in self._seen_dims:
            self._seen_dims.add(dims)
            self.breaches.prime(dims)
            for status in STATUSES:
                self.outcomes.prime((*dims, status))
            pair = (dims[1], dims[0])
            if pair not in self._seen_pairs and self._objective_for is not None:
                self.set_objective(*pair, self._objective_for(*pair))
            self._seen_pairs.add(pair)
        return dims

    def _duration_histogram(self, metric: str) -> HistogramCounts:
        histogram = self.durations.get(metric)
        if histogram is None:
            histogram = self.durations[metric] = HistogramCounts(
                f"slamon_clock_{_metric_slug(metric)}_duration_seconds",
                f"Counted (working) seconds of stopped {metric} clocks.",
                CLOCK_LABELS[:3], duration_buckets(self._targets.get(metric, ())))
            self._families.add(histogram)
        return histogram


def exported_names(metrics: Sequence[str] = ("response", "resolution")) -> frozenset[str]:
    """Every sample name MonitorMetrics exposes (with _total, _bucket, ... suffixes)."""
    registry = CollectorRegistry()
    MonitorMetrics(registry, metrics)
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_count", "_sum", "_created")}
    return frozenset(family.name + suffix for family in registry.collect()
                     for suffix in suffixes[family.type])


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The /metrics body and content type for an Accept header (OpenMetrics carries exemplars)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
