"""The live compliance agent: outcomes in, a `compliance` record per window when it closes.

Outcomes (and retractions of outcomes) reach it on `<prefix>compliance.input`
keyed by service|customer, so every clock of a customer's service is counted
on one partition. Two tables hold the state, written in-stream:

- windows: window key -> {"p": partition, "end": ms, "clocks": {clock: [met, seconds]}}
- clocks: clock key -> [service, customer, priority, metric, stopped_ms], so a revision
  or a retraction withdraws the clock from the windows it was counted in.

A window closes when the watermark passes its end plus the lateness; its record
goes to `<prefix>compliance`. The watermark is the event time of the clock agent
(the largest `ts` it had applied when it sent the outcome, carried in the
message): windows close before the outcome that moved time on is counted, as
in replay. With several clock partitions, an outcome that arrives after its
window closed (skew beyond the lateness) is not counted (`late_outcomes`).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, MutableMapping

import orjson

from agents.processor import Output
from sla.compliance import WINDOWS, ratio, summarise, window_bounds
from sla.events import parse_ts
from streams.topics import TopicCatalogue

__all__ = ["ComplianceProcessor"]

logger = logging.getLogger(__name__)

CreditLookup = Callable[[str, str, float], float]


def _window_key(key: tuple) -> bytes:
    return orjson.dumps(list(key))


class ComplianceProcessor:
    def __init__(self, windows: MutableMapping[bytes, bytes], clocks: MutableMapping[bytes, bytes],
                 topics: TopicCatalogue, credit_for: CreditLookup, lateness_ms: int,
                 observer: object = None) -> None:
        self.windows = windows
        self.clocks = clocks
        self.topics = topics
        self.credit_for = credit_for
        self.lateness_ms = lateness_ms
        self.observer = observer
        self._open: dict[int, list[tuple[int, bytes]]] = {}  # partition -> heap (end, window)
        self._watermark: dict[int, int] = {}
        self.late_outcomes = 0

    def rebuild(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Refill the open-window heaps from the windows table (after an assignment)."""
        self._open.clear()
        for key, value in items:
            window = orjson.loads(value)
            heapq.heappush(self._open.setdefault(window["p"], []), (window["end"], key))

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
            self._withdraw(record["retracts"].rsplit(":outcome:", 1)[0].encode())
            return outputs
        clock = f"{record['ticket_id']}:{record['metric']}:{record['cycle']}".encode()
        self._withdraw(clock)
        if record["status"] != "cancelled":
            dims = (record["service"], record["customer"], record["priority"], record["metric"])
            self._count(partition, clock, dims, parse_ts(record["stopped_at"]),
                        record["status"] == "met", record["elapsed_seconds"])
        return outputs

    def _count(self, partition: int, clock: bytes, dims: tuple, stopped: int, met: bool,
               seconds: float) -> None:
        watermark = self._watermark.get(partition)
        for window in WINDOWS:
            start, end = window_bounds(window, stopped)
            key = _window_key((*dims, window, start))
            stored = self.windows.get(key)
            if stored is None:
                if watermark is not None and end + self.lateness_ms <= watermark:
                    self.late_outcomes += 1  # its window has been reported already
                    continue
                bucket = {"p": partition, "end": end, "clocks": {}}
                heapq.heappush(self._open.setdefault(partition, []), (end, key))
            else:
                bucket = orjson.loads(stored)
            bucket["clocks"][clock.decode()] = [met, seconds]
            self.windows[key] = orjson.dumps(bucket)
        self.clocks[clock] = orjson.dumps([*dims, stopped])

    def _withdraw(self, clock: bytes) -> None:
        stored = self.clocks.get(clock)
        if stored is None:
            return
        *dims, stopped = orjson.loads(stored)
        for window in WINDOWS:
            key = _window_key((*dims, window, window_bounds(window, stopped)[0]))
            value = self.windows.get(key)
            if value is not None:
                bucket = orjson.loads(value)
                bucket["clocks"].pop(clock.decode(), None)
                self.windows[key] = orjson.dumps(bucket)
        del self.clocks[clock]

    def _close(self, partition: int) -> list[Output]:
        heap = self._open.get(partition)
        watermark = self._watermark.get(partition)
        outputs: list[Output] = []
        while heap and watermark is not None and heap[0][0] + self.lateness_ms <= watermark:
            end, key = heapq.heappop(heap)
            stored = self.windows.get(key)
            if stored is None:
                continue
            bucket = orjson.loads(stored)
            del self.windows[key]
            window_key = tuple(orjson.loads(key))
            clocks = bucket["clocks"]
            if window_key[4] == "month":
                for clock in clocks:
                    self.clocks.pop(clock.encode(), None)
            if not clocks:
                continue
            met = sum(1 for entry in clocks.values() if entry[0])
            credit = self.credit_for(window_key[0], window_key[1], ratio(met, len(clocks)))
            record = summarise(window_key, end, clocks, credit)  # type: ignore[arg-type]
            if self.observer is not None:
                self.observer.observe(record)  # type: ignore[attr-defined]
            outputs.append(Output(self.topics.compliance,
                                  f"{window_key[0]}|{window_key[1]}".encode(),
                                  orjson.dumps(record)))
        return outputs


def add_compliance_agent(app, settings, engine, observer=None) -> ComplianceProcessor:  # type: ignore[no-untyped-def]
    """Add the compliance agent and its two tables to `app`."""
    from agents.clocks import RAW, raw_table

    topics = TopicCatalogue(settings.topic_prefix, settings.partitions)
    windows = raw_table(app, "slamon-compliance-windows", settings.partitions)
    clocks = raw_table(app, "slamon-compliance-clocks", settings.partitions)

    def credit_for(service: str, customer: str, value: float) -> float:
        return engine.policies.terms(service, customer).credit_for(value)

    processor = ComplianceProcessor(windows, clocks, topics, credit_for,
                                    round(settings.lateness * 1000), observer)
    source = app.topic(topics.compliance_input, partitions=settings.partitions, internal=True,
                       **RAW)
    output = app.topic(topics.compliance, partitions=settings.partitions, internal=True, **RAW)
    stale = [True]

    async def run(stream) -> None:  # type: ignore[no-untyped-def]
        await output.maybe_declare()
        async for event in stream.events():
            if stale[0]:
                processor.rebuild(windows.items())
                stale[0] = False
            for out in processor.handle(event.message.partition, event.message.value or b""):
                await output.send(key=out.key, value=out.value)

    app.agent(source, name="slamon.compliance")(run)

    @app.on_partitions_assigned.connect
    async def _assigned(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        stale[0] = True

    return processor
