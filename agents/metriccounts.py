"""Counters and histograms kept in plain Python structures, exposed through one collector.

Why: the worker counts every output record it publishes, and prometheus-client's
`Counter.inc` / `Histogram.observe` with an exemplar cost ~1 us each plus ~2 us of exemplar
validation. Here a count is a dict lookup and an integer add; the exemplar's ticket is kept
as given, with its time, and only turned into an `Exemplar` (capped) when Prometheus scrapes.

What a scrape sees is what prometheus-client's own Counter and Histogram expose: the same
family names, types and HELP, `_total` + `_created` per counter child, `_bucket` (cumulative,
`le` formatted alike) + `_count` + `_sum` + `_created` per histogram child, children in the
order first seen, and one exemplar per counter child and per bucket: the latest one.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Protocol

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

__all__ = ["Collectable", "CounterCounts", "Families", "HistogramCounts"]

Labels = tuple[str, ...]
EXEMPLAR_VALUE_MAX: Final = 128 - len("ticket_id")  # OpenMetrics caps an exemplar's label set


def _exemplar(ticket: object, value: float, at: float) -> Exemplar:
    return Exemplar({"ticket_id": str(ticket)[:EXEMPLAR_VALUE_MAX]}, value, at)


class Collectable(Protocol):
    """Anything that yields metric families: these counts, or a prometheus-client Gauge."""

    def collect(self) -> Iterable[Metric]: ...


class _CounterChild:
    __slots__ = ("count", "created", "ticket", "at")

    def __init__(self) -> None:
        self.count = 0
        self.created = time.time()
        self.ticket: object = None  # the latest exemplar's ticket (None: no exemplar yet)
        self.at = 0.0


class CounterCounts:
    """A labelled counter: per label tuple its count, creation time and latest exemplar."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.children: dict[Labels, _CounterChild] = {}

    def prime(self, labels: Labels) -> None:
        """Create the child at 0 (so `increase()` sees its first count)."""
        if labels not in self.children:
            self.children[labels] = _CounterChild()

    def inc(self, labels: Labels, ticket: object = None, amount: int = 1) -> None:
        """Add `amount`; a ticket (not None) becomes the child's exemplar, of value `amount`."""
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = _CounterChild()
        child.count += amount
        if ticket is not None:
            child.ticket = ticket
            child.at = time.time()

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, child in list(self.children.items()):  # a copy: a scrape may run in a thread
            exemplar = None if child.ticket is None else _exemplar(child.ticket, 1, child.at)
            family.add_metric(labels, child.count, created=child.created, exemplar=exemplar)
        yield family


class _HistogramChild:
    __slots__ = ("counts", "sum", "exemplars", "created")

    def __init__(self, n: int) -> None:
        self.counts = [0] * n  # per bucket, not cumulative
        self.sum = 0.0
        self.exemplars: list[tuple[object, float, float] | None] = [None] * n
        self.created = time.time()


class HistogramCounts:
    """A histogram (labelled or not): per label tuple its bucket counts, sum and, per bucket,
    the latest exemplar (ticket, observed value, time)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float]) -> None:
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"histogram {name}: buckets {buckets} are not in sorted order")
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.bounds = tuple(bounds)
        self._les = tuple(floatToGoString(b) for b in bounds)
        self.children: dict[Labels, _HistogramChild] = {}
        if not self.labelnames:  # an unlabelled histogram exists from the start
            self.children[()] = _HistogramChild(len(bounds))

    def observe(self, labels: Labels, value: float, ticket: object = None) -> None:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = _HistogramChild(len(self.bounds))
        child.sum += value
        if value == value:  # NaN lands in no bucket, as in prometheus-client
            i = bisect_left(self.bounds, value)
            child.counts[i] += 1
            if ticket is not None:
                child.exemplars[i] = (ticket, value, time.time())

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, child in list(self.children.items()):
            buckets: list = []
            acc = 0.0
            for le, n, ex in zip(self._les, child.counts, child.exemplars, strict=True):
                acc += n
                buckets.append((le, acc) if ex is None else (le, acc, _exemplar(*ex)))
            family.add_metric(labels, buckets, child.sum)
            family.samples.append(Sample(f"{self.name}_created",
                                         dict(zip(self.labelnames, labels, strict=True)),
                                         child.created, None, None))
        yield family


class Families:
    """The one collector registered for a set of families, exposed in the order given
    (counts of this module and prometheus-client Gauges, which are not registered
    themselves); `add` appends one later (a histogram of a metric first seen)."""

    def __init__(self, parts: Iterable[Collectable]) -> None:
        self.parts = list(parts)

    def add(self, part: Collectable) -> None:
        self.parts.append(part)

    def collect(self) -> Iterator[Metric]:
        for part in list(self.parts):
            yield from part.collect()

    def describe(self) -> Iterator[Metric]:
        """The families at registration, so a second set of the same names on one registry
        fails as it did with one prometheus-client metric each."""
        return self.collect()
