"""Where MonitorMetrics' counts land: on the metric at once, or tallied for a whole batch.

`MonitorMetrics` groups the new records of a batch by what they count into (kind, clock
dimensions, status or threshold...), resolves each group to its metric children once and
hands the group's entries to a sink: `Direct` applies them at once (one record at a time),
`BatchTally` adds up a batch's groups per child and applies them in `flush`: one count per
counter child instead of one per record. That is what makes the metrics cost per batch.

An entry is (seq, ticket, value): the record's place in the batch, its ticket id (the
exemplar; None for none) and, for a histogram, the value observed (0.0 for a counter).
The exposition is the same as one record at a time, because Prometheus keeps one exemplar
per counter and per histogram bucket, the latest, and a count is a count:
- a counter child counted n times gets n, and the exemplar `inc(1, exemplar)` of its
  latest record (by seq) with a ticket would leave (its value stays 1);
- a histogram child gets every value in record order (so `_sum` adds up in the same
  order), and each bucket the exemplar of its latest value with a ticket.
Exemplar timestamps are the flush time instead of each record's (the same batch). Children
are created when a group is first resolved, in the order of the records, so samples are
exposed in the same order too.

Writing: `inc` and `observe` cost ~1 us each and ~2 us more with an exemplar (mostly its
validation), per call. When prometheus-client's children are built as this module expects
(checked once by `internals_hold`, pinned for the installed version by
tests/unit/test_metrics_batch.py), the sinks write the values directly: one add per counter
child, one per histogram bucket and one sum per histogram child, and the latest exemplar of
each (its labels are valid by construction: one `ticket_id` within the cap). Otherwise they
go through the public `inc` and `observe`, with the same exposition.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.samples import Exemplar as StoredExemplar

__all__ = ["BatchTally", "Direct", "Entry", "Exemplar", "RecentIds", "Sink",
           "exemplar_of", "internals_hold"]

Exemplar = dict[str, str]
Entry = tuple[int, Any, float]  # (seq in the batch, ticket id or None, value; 0.0 if none)
_EXEMPLAR_VALUE_MAX = 128 - len("ticket_id")  # OpenMetrics caps an exemplar's label set


def exemplar_of(ticket: Any) -> Exemplar | None:
    """The exemplar naming a ticket (None without one); a long id is cut to the cap."""
    return None if ticket is None else _ticket_labels(ticket)


def _ticket_labels(ticket: Any) -> Exemplar:
    return {"ticket_id": str(ticket)[:_EXEMPLAR_VALUE_MAX]}


class RecentIds:
    """A bounded set of the most recent record ids."""

    def __init__(self, size: int) -> None:
        self._ids: OrderedDict[Any, None] = OrderedDict()
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


class MetricChild(Protocol):
    """A labelled Counter child (`inc`) or Histogram child (`observe`): each sink calls only
    the method of the child's kind it was handed."""

    def inc(self, amount: float = 1, exemplar: Exemplar | None = None) -> None: ...
    def observe(self, amount: float, exemplar: Exemplar | None = None) -> None: ...


class Sink(Protocol):
    """Takes a group of records' increments of a counter child or values of a histogram
    child (whose finite bucket bounds are `bounds`); `entries` are in record order."""

    def inc(self, child: MetricChild, entries: Sequence[Entry]) -> None: ...
    def observe(self, child: MetricChild, bounds: tuple[float, ...],
                entries: Sequence[Entry]) -> None: ...


def _latest_ticket(entries: Sequence[Entry]) -> tuple[int, Any]:
    """(seq, ticket) of the last entry with a ticket, else (-1, None)."""
    for seq, ticket, _ in reversed(entries):
        if ticket is not None:
            return seq, ticket
    return -1, None


def _inc(child: MetricChild, count: int, ticket: Any) -> None:
    if ticket is None:
        child.inc(count)
        return
    if count > 1:
        child.inc(count - 1)
    child.inc(1, exemplar=exemplar_of(ticket))


class Direct:
    """Applies each group to its metric child at once."""

    __slots__ = ("_direct",)

    def __init__(self, direct_writes: bool | None = None) -> None:
        """`direct_writes`: write the children's values directly (default: if they hold)."""
        self._direct = internals_hold() if direct_writes is None else direct_writes

    def inc(self, child: MetricChild, entries: Sequence[Entry]) -> None:
        if self._direct:
            _write_count(child, len(entries), _latest_ticket(entries)[1], time.time())
        else:
            _inc(child, len(entries), _latest_ticket(entries)[1])

    def observe(self, child: MetricChild, bounds: tuple[float, ...],
                entries: Sequence[Entry]) -> None:
        if self._direct:
            _write_values(child, entries, bounds, time.time())
            return
        for _, ticket, value in entries:
            child.observe(value, exemplar=exemplar_of(ticket))


class BatchTally:
    """A batch's groups added up per counter child and histogram child, until `flush`."""

    __slots__ = ("_counts", "_values", "_direct")

    def __init__(self, direct_writes: bool | None = None) -> None:
        """`direct_writes`: write the children's values directly (default: if they hold)."""
        self._direct = internals_hold() if direct_writes is None else direct_writes
        # child -> [count, seq of the latest ticket, that ticket], in first-seen order
        self._counts: dict[MetricChild, list] = {}
        self._values: dict[MetricChild, tuple[tuple[float, ...], list[Entry]]] = {}

    def inc(self, child: MetricChild, entries: Sequence[Entry]) -> None:
        seq, ticket = _latest_ticket(entries)
        tally = self._counts.get(child)
        if tally is None:
            self._counts[child] = [len(entries), seq, ticket]
            return
        tally[0] += len(entries)
        if seq > tally[1]:
            tally[1], tally[2] = seq, ticket

    def observe(self, child: MetricChild, bounds: tuple[float, ...],
                entries: Sequence[Entry]) -> None:
        tally = self._values.get(child)
        if tally is None:
            self._values[child] = (bounds, list(entries))
        else:
            tally[1].extend(entries)

    def flush(self) -> None:
        """Apply what was tallied to the metric children, then start empty."""
        counts, self._counts = self._counts, {}
        values, self._values = self._values, {}
        now = time.time()
        direct = self._direct
        for child, (count, _, ticket) in counts.items():
            if direct:
                _write_count(child, count, ticket, now)
            else:
                _inc(child, count, ticket)
        for child, (bounds, entries) in values.items():
            entries.sort()  # record order, when several groups fed the child (seq is unique)
            if direct:
                _write_values(child, entries, bounds, now)
                continue
            for value, exemplar in _latest_per_bucket(entries, bounds):
                child.observe(value, exemplar=exemplar)


def _latest_per_bucket(entries: list[Entry],
                       bounds: tuple[float, ...]) -> list[tuple[float, Exemplar | None]]:
    """The values in order, each bucket's exemplar kept on its latest value with a ticket.

    A value falls in the first bucket whose bound is >= it (prometheus-client's rule), the
    +Inf bucket past the last bound.
    """
    last: dict[int, int] = {}
    for i, (_, ticket, value) in enumerate(entries):
        if ticket is not None:
            last[bisect_left(bounds, value)] = i
    kept = set(last.values())
    return [(value, exemplar_of(ticket) if i in kept else None)
            for i, (_, ticket, value) in enumerate(entries)]


def _write_count(child: Any, count: int, ticket: Any, now: float) -> None:
    """`inc(count)` with the exemplar `inc(1, exemplar)` would leave, written directly."""
    child._value.inc(count)
    if ticket is not None:
        child._value.set_exemplar(StoredExemplar(_ticket_labels(ticket), 1, now))


def _write_values(child: Any, entries: Sequence[Entry], bounds: tuple[float, ...],
                  now: float) -> None:
    """`observe` of each value in order, written directly: the sum adds up value by value as
    `observe` would (the worker is its only writer), each bucket once, and each bucket's
    latest exemplar. A NaN adds to the sum and to no bucket, as in `observe`."""
    if len(entries) == 1:  # the common case of a small batch: no tallies to build
        _, ticket, value = entries[0]
        child._sum.inc(value)
        if not math.isnan(value):
            bucket = child._buckets[bisect_left(bounds, value)]
            bucket.inc(1)
            if ticket is not None:
                bucket.set_exemplar(StoredExemplar(_ticket_labels(ticket), value, now))
        return
    counts = [0] * (len(bounds) + 1)
    latest: dict[int, tuple[float, Any]] = {}
    total = child._sum.get()
    for _, ticket, value in entries:
        total += value
        if math.isnan(value):
            continue
        bucket = bisect_left(bounds, value)
        counts[bucket] += 1
        if ticket is not None:
            latest[bucket] = (value, ticket)
    child._sum.set(total)
    buckets = child._buckets
    for bucket, count in enumerate(counts):
        if count:
            buckets[bucket].inc(count)
    for bucket, (value, ticket) in latest.items():
        buckets[bucket].set_exemplar(StoredExemplar(_ticket_labels(ticket), value, now))


def internals_hold() -> bool:
    """Whether prometheus-client builds children as `_write_count` and `_write_values` write
    them: a counter's `_value`, a histogram's `_sum` and one `_buckets` value per bound and
    +Inf, each with get, set, inc and set_exemplar (true of 0.20 to 0.26)."""
    registry = CollectorRegistry()
    counter: Any = Counter("probe", "", ("a",), registry=registry).labels("a")
    histogram: Any = Histogram("probe_h", "", ("a",), buckets=(1.0,),
                               registry=registry).labels("a")
    try:
        values = [counter._value, histogram._sum, *histogram._buckets]
        return (list(histogram._upper_bounds) == [1.0, math.inf] and len(values) == 4
                and all(callable(getattr(v, name, None)) for v in values
                        for name in ("get", "set", "inc", "set_exemplar")))
    except AttributeError:
        return False
