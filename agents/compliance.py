"""The live compliance agent: outcomes in, a `compliance` record per window when it closes.

Outcomes (and retractions of outcomes) reach it on `<prefix>compliance.input`
keyed by service|customer, so every clock of a customer's service is counted
on one partition. Two tables hold the state, written in-stream, one small
entry per change (a window's clocks are never rewritten as a whole):

- entries: [*window, clock] -> [partition, window end, met, seconds]
- clocks: clock -> [service, customer, priority, metric, stopped_ms], so a revision
  or a retraction withdraws the clock from the windows it was counted in.

Which clocks each open window holds is kept in memory, rebuilt from the
entries table after an assignment. A window closes when the watermark passes
its end plus the lateness; its record goes to `<prefix>compliance`. The
watermark is the event time of the clock agent (the largest `ts` it had
applied when it sent the outcome, carried in the message): windows close
before the outcome that moved time on is counted, as in replay. With several
clock partitions, an outcome that arrives after its window closed (skew
beyond the lateness) is not counted (`late_outcomes`).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, MutableMapping

import orjson

from sla.compliance import WINDOWS, ratio, summarise, window_bounds
from sla.events import parse_ts
from streams.outputs import Output
from streams.topics import TopicCatalogue

__all__ = ["ComplianceProcessor", "add_compliance_agent"]

logger = logging.getLogger(__name__)

CreditLookup = Callable[[str, str, float], float]
Window = tuple  # (service, customer, priority, metric, window kind, window start)


def _entry_key(window: Window, clock: str) -> bytes:
    return orjson.dumps([*window, clock])


class ComplianceProcessor:
    def __init__(self, entries: MutableMapping[bytes, bytes], clocks: MutableMapping[bytes, bytes],
                 topics: TopicCatalogue, credit_for: CreditLookup, lateness_ms: int,
                 observer: object = None) -> None:
        self.entries = entries
        self.clocks = clocks
        self.topics = topics
        self.credit_for = credit_for
        self.lateness_ms = lateness_ms
        self.observer = observer
        self._members: dict[Window, set[str]] = {}  # open window -> its clocks
        self._open: dict[int, list[tuple[int, Window]]] = {}  # partition -> heap (end, window)
        self._watermark: dict[int, int] = {}
        self.late_outcomes = 0

    def rebuild(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Refill the open windows from the entries table (after an assignment)."""
        self._members.clear()
        self._open.clear()
        for key, value in items:
            *window_list, clock = orjson.loads(key)
            window = tuple(window_list)
            partition, end, _, _ = orjson.loads(value)
            if window not in self._members:
                self._members[window] = set()
                heapq.heappush(self._open.setdefault(partition, []), (end, window))
            self._members[window].add(clock)

    def handle(self, partition: int, value: bytes) -> list[Output]:
        try:
            record = orjson.loads(value)
            kind = record["kind"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            logger.warning("compliance input at partition %d is not a record; skipped", partition)
            return []
        watermark = record.get("watermark")
        if watermark is not None and watermark > self._watermark.get(partition, watermark - 1):
            self._watermark[partition] = watermark
        outputs = self._close(partition)
        if kind == "retraction":
            self._withdraw(record["retracts"].rsplit(":outcome:", 1)[0])
            return outputs
        clock = f"{record['ticket_id']}:{record['metric']}:{record['cycle']}"
        self._withdraw(clock)
        if record["status"] != "cancelled":
            dims = (record["service"], record["customer"], record["priority"], record["metric"])
            self._count(partition, clock, dims, parse_ts(record["stopped_at"]),
                        record["status"] == "met", record["elapsed_seconds"])
        return outputs

    def _count(self, partition: int, clock: str, dims: tuple, stopped: int, met: bool,
               seconds: float) -> None:
        watermark = self._watermark.get(partition)
        for kind in WINDOWS:
            start, end = window_bounds(kind, stopped)
            window = (*dims, kind, start)
            members = self._members.get(window)
            if members is None:
                if watermark is not None and end + self.lateness_ms <= watermark:
                    self.late_outcomes += 1  # its window has been reported already
                    continue
                members = self._members[window] = set()
                heapq.heappush(self._open.setdefault(partition, []), (end, window))
            members.add(clock)
            self.entries[_entry_key(window, clock)] = orjson.dumps([partition, end, met, seconds])
        self.clocks[clock.encode()] = orjson.dumps([*dims, stopped])

    def _withdraw(self, clock: str) -> None:
        stored = self.clocks.get(clock.encode())
        if stored is None:
            return
        *dims, stopped = orjson.loads(stored)
        for kind in WINDOWS:
            window = (*dims, kind, window_bounds(kind, stopped)[0])
            members = self._members.get(window)
            if members is not None and clock in members:
                members.discard(clock)
                del self.entries[_entry_key(window, clock)]
        del self.clocks[clock.encode()]

    def _close(self, partition: int) -> list[Output]:
        heap = self._open.get(partition)
        watermark = self._watermark.get(partition)
        outputs: list[Output] = []
        while heap and watermark is not None and heap[0][0] + self.lateness_ms <= watermark:
            end, window = heapq.heappop(heap)
            members = self._members.pop(window, None)
            if not members:
                continue
            bucket = {}
            for clock in members:
                key = _entry_key(window, clock)
                _, _, met, seconds = orjson.loads(self.entries[key])
                bucket[clock] = (met, seconds)
                del self.entries[key]
                if window[4] == "month":  # the last window the clock counts in
                    self.clocks.pop(clock.encode(), None)
            met_count = sum(1 for entry in bucket.values() if entry[0])
            credit = self.credit_for(window[0], window[1], ratio(met_count, len(bucket)))
            record = summarise(window, end, bucket, credit)  # type: ignore[arg-type]
            if self.observer is not None:
                self.observer.observe(record)  # type: ignore[attr-defined]
            outputs.append(Output(self.topics.compliance, f"{window[0]}|{window[1]}".encode(),
                                  orjson.dumps(record)))
        return outputs


def add_compliance_agent(app, settings, engine, observer=None) -> ComplianceProcessor:  # type: ignore[no-untyped-def]
    """Add the compliance agent and its two tables to `app`."""
    from agents.clocks import send_outputs
    from agents.tables import raw_table, raw_topic

    topics = TopicCatalogue(settings.topic_prefix, settings.partitions)
    entries = raw_table(app, "slamon-compliance-entries", settings.partitions)
    clocks = raw_table(app, "slamon-compliance-clocks", settings.partitions)

    def credit_for(service: str, customer: str, value: float) -> float:
        return engine.policies.terms(service, customer).credit_for(value)

    processor = ComplianceProcessor(entries, clocks, topics, credit_for,
                                    round(settings.lateness * 1000), observer)
    source = raw_topic(app, topics.compliance_input, partitions=settings.partitions)
    output = raw_topic(app, topics.compliance, partitions=settings.partitions)
    stale = [True]

    async def run(stream) -> None:  # type: ignore[no-untyped-def]
        await output.maybe_declare()
        async for event in stream.events():
            if stale[0]:
                processor.rebuild(entries.items())
                stale[0] = False
            try:
                outputs = processor.handle(event.message.partition, event.message.value or b"")
            except Exception:  # a bug must cost one outcome, never the worker
                logger.exception("compliance input at %s:%s could not be counted",
                                 event.message.partition, event.message.offset)
                outputs = []
            await entries.flush_changelog()
            await clocks.flush_changelog()
            await send_outputs(app, outputs)

    app.agent(source, name="slamon.compliance")(run)

    @app.on_partitions_assigned.connect
    async def _assigned(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        stale[0] = True

    return processor
