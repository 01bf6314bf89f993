"""The live compliance processor with dicts for tables: windows close by watermark, revisions
replace, retractions withdraw, the same summary as replay."""

from __future__ import annotations

import asyncio

import orjson
from faust.types import TP

from agents.compliance import ComplianceProcessor, ComplianceService
from sla.events import parse_ts
from streams.topics import TopicCatalogue


def outcome(ticket: str, stopped_at: str, status: str = "met", seconds: float = 60.0,
            revision: int = 0, metric: str = "response", watermark: str | None = None) -> bytes:
    return orjson.dumps({
        "watermark": parse_ts(watermark or stopped_at),
        "id": f"{ticket}:{metric}:0:outcome:{revision}", "kind": "outcome", "ticket_id": ticket,
        "metric": metric, "cycle": 0, "service": "email", "customer": "acme", "priority": "P1",
        "status": status, "elapsed_seconds": seconds, "stopped_at": stopped_at,
        "revision": revision})


def make(lateness_ms: int = 0):
    table: dict = {}
    credits = lambda service, customer, ratio: 0.1 if ratio < 0.9 else 0.0  # noqa: E731
    return ComplianceProcessor(table, TopicCatalogue(), credits, lateness_ms), table


def records(outputs):
    return [orjson.loads(o.value) for o in outputs]


def test_an_hour_window_closes_when_the_watermark_passes_its_end():
    processor, _ = make()
    assert processor.handle(0, outcome("T1", "2026-12-01T10:05:00Z")) == []
    assert processor.handle(0, outcome("T2", "2026-12-01T10:30:00Z", "breached", 900)) == []
    [hour] = records(processor.handle(0, outcome("T3", "2026-12-01T11:00:00Z")))
    assert (hour["window"], hour["window_start"], hour["met"], hour["breached"]) == (
        "hour", "2026-12-01T10:00:00Z", 1, 1)
    assert hour["compliance_ratio"] == 0.5 and hour["credit"] == 0.1
    assert (hour["p50_seconds"], hour["p99_seconds"]) == (60.0, 900)


def test_a_revision_replaces_the_earlier_outcome_of_the_clock():
    processor, _ = make()
    processor.handle(0, outcome("T1", "2026-12-01T10:05:00Z", "met"))
    processor.handle(0, outcome("T1", "2026-12-01T10:45:00Z", "breached", 3000, revision=1))
    [hour] = records(processor.handle(0, outcome("T9", "2026-12-01T11:00:00Z")))
    assert (hour["met"], hour["breached"], hour["total"]) == (0, 1, 1)


def test_a_retracted_outcome_is_withdrawn_and_cancelled_ones_do_not_count():
    processor, _ = make()
    processor.handle(0, outcome("T1", "2026-12-01T10:05:00Z"))
    processor.handle(0, outcome("T2", "2026-12-01T10:06:00Z", "cancelled"))
    processor.handle(0, outcome("T3", "2026-12-01T10:07:00Z"))
    processor.handle(0, orjson.dumps({"kind": "retraction", "retracts": "T1:response:0:outcome:0",
                                      "retracts_kind": "outcome", "watermark": None}))
    [hour] = records(processor.handle(0, outcome("T9", "2026-12-01T11:00:00Z")))
    assert hour["total"] == 1


def test_lateness_keeps_a_window_open_and_windows_are_rebuilt_from_the_table():
    processor, table = make(lateness_ms=120_000)
    processor.handle(0, outcome("T1", "2026-12-01T10:05:00Z"))
    assert processor.handle(0, outcome("T2", "2026-12-01T11:01:00Z")) == []
    fresh = ComplianceProcessor(table, TopicCatalogue(), lambda *a: 0.0, 120_000)
    fresh.rebuild(table.items())
    fresh.handle(0, outcome("T3", "2026-12-01T10:59:00Z"))  # late, inside the lateness
    [hour] = records(fresh.handle(0, outcome("T4", "2026-12-01T11:02:00Z")))
    assert hour["total"] == 2


async def test_compliance_batches_take_turns() -> None:
    """The batch consumer hands partitions over side by side, but the compliance windows in
    memory are one for all partitions: partition 1's batch starts once partition 0's
    (waiting for Kafka's acks) is done, and each batch counts into its own overlays."""
    steps: list[tuple[str, int]] = []

    class Overlay(dict):
        def __init__(self, partition: int) -> None:
            super().__init__()
            self.partition = partition

        async def commit(self, sender: object) -> None:
            await asyncio.sleep(0.01)  # the changelog's acks
            steps.append(("committed", self.partition))

    class Table:
        def overlay(self, partition: int) -> Overlay:
            return Overlay(partition)

        def items(self) -> list:
            return []

    class Processor:
        def __init__(self) -> None:
            self.store = type("Store", (), {"table": None})()

        def rebuild(self, items: object) -> None:
            pass

        def handle(self, partition: int, value: bytes) -> list:
            assert self.store.table.partition == partition
            steps.append(("counted", partition))
            return []

    class Sender:
        async def send(self, outputs: list) -> list:
            return []

    app = type("App", (), {"slamon_sender": Sender()})()
    service = ComplianceService(app, Processor(), Table(), None, 2)
    service.declared = True
    records = [type("Rec", (), {"value": b"{}", "offset": 0})()]
    await asyncio.gather(service.handle(TP("c", 0), records), service.handle(TP("c", 1), records))
    assert steps == [("counted", 0), ("committed", 0), ("counted", 1), ("committed", 1)]
