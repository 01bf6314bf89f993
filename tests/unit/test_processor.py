"""The clock processor without Faust: a dict for the table, a fixed clock."""

from __future__ import annotations

import orjson
import pytest

import agents.processor
from agents.deadlines import DeadlineIndex
from agents.processor import ClockProcessor, StoredTicket
from sla.engine import Engine
from streams.topics import TopicCatalogue
from tests.unit.enginekit import StubPolicies, ev, ms


class FixedClock:
    def __init__(self, now: str) -> None:
        self.now = ms(now)

    def __call__(self) -> int:
        return self.now


def make(now: str = "00:00"):
    clock = FixedClock(now)
    table: dict[bytes, bytes] = {}
    processor = ClockProcessor(Engine(StubPolicies()), table, TopicCatalogue("sla.", 4),
                               clock=clock)
    return processor, table, clock


def send(processor, event, partition=0, key=None):
    value = orjson.dumps(event)
    key = event["ticket_id"].encode() if key is None else key
    return processor.handle_event(partition, key, value, offset=7)


def test_an_event_updates_the_table_and_schedules_its_deadline():
    processor, table, _ = make("00:00")
    assert send(processor, ev("opened", "00:00")) == []
    partition, due, open_clocks, _ = orjson.loads(table[b"T1"])
    assert (partition, due) == (0, ms("00:07:30"))  # first warning: 0.5 of 15 min
    assert open_clocks == [["response", "running"], ["resolution", "running"]]
    assert processor.index.next_due(0) == ms("00:07:30")


def test_a_tick_fires_what_is_due_by_the_wall_clock():
    processor, _, clock = make("00:00")
    send(processor, ev("opened", "00:00"))
    clock.now = ms("00:15")
    outputs = processor.handle_tick(0)
    kinds = [(o.topic, orjson.loads(o.value)["kind"]) for o in outputs]
    assert kinds == [("sla.warnings", "warning")] * 3 + [("sla.breaches", "breach")]
    breach = orjson.loads(outputs[-1].value)
    assert breach["detected_at"] == "2026-12-01T00:15:00Z"
    assert outputs[-1].key == b"T1"
    assert processor.handle_tick(0) == []  # nothing due twice


def test_outcomes_also_feed_the_compliance_input_keyed_by_customer_service():
    processor, _, _ = make("00:00")
    send(processor, ev("opened", "00:00"))
    outputs = send(processor, ev("responded", "00:05"))
    assert [(o.topic, o.key) for o in outputs] == [
        ("sla.outcomes", b"T1"), ("sla.compliance.input", b"email|acme")]


def test_bad_input_goes_to_the_dead_letter_topic_with_the_original_bytes():
    processor, table, _ = make()
    cases = {
        b"not json": "not_json",
        b'{"ticket_id": "T1"}': "missing_field",
        orjson.dumps(ev("exploded", "00:00")): "unknown_type",
        b'{"x": "' + b"a" * 70_000 + b'"}': "too_large",
        orjson.dumps(dict(ev("opened", "00:00"), ts=True)): "bad_type",
    }
    for raw, reason in cases.items():
        [output] = processor.handle_event(3, b"T1", raw, offset=42)
        headers = dict(output.headers)
        assert (output.topic, output.value, headers["slamon-reason"]) == (
            "sla.events.dlq", raw, reason.encode())
        assert headers["slamon-source"] == b"sla.events:3:42"
    assert table == {}


def test_a_rejected_event_keeps_its_original_bytes_too():
    processor, _, _ = make("00:00")
    send(processor, ev("opened", "00:00"))
    send(processor, ev("closed", "00:01"))
    late = ev("responded", "00:02")
    [output] = send(processor, late)
    assert output.topic == "sla.events.dlq" and orjson.loads(output.value) == late
    assert dict(output.headers)["slamon-reason"] == b"ticket_closed"


def test_a_wrongly_keyed_event_is_sent_back_keyed_by_ticket():
    processor, table, _ = make()
    [output] = send(processor, ev("opened", "00:00"), key=b"wrong")
    assert (output.topic, output.key) == ("sla.events", b"T1")
    assert table == {}


def test_the_deadline_index_is_rebuilt_from_the_table():
    processor, table, _ = make("00:00")
    send(processor, ev("opened", "00:00"), partition=2)
    send(processor, ev("opened", "00:01", ticket="T2"), partition=1)
    fresh, _, _ = make()
    assert fresh.rebuild_index(table.items()) == 2
    assert fresh.index.next_due(2) == ms("00:07:30")
    assert fresh.index.next_due(1) == ms("00:08:30")


def test_deadline_index_replaces_and_drops():
    index = DeadlineIndex()
    index.schedule(0, "a", 10)
    index.schedule(0, "a", 5)
    index.schedule(0, "b", 7)
    index.schedule(1, "c", 1)
    assert index.next_due(0) == 5
    assert index.pop_due(0, 7) == ["a", "b"]
    index.drop_partitions({0})
    assert index.next_due(1) is None and len(index) == 0


def test_open_clocks_are_counted_by_metric_and_state():
    processor, table, _ = make("00:00")
    send(processor, ev("opened", "00:00"))
    send(processor, ev("opened", "00:00", ticket="T2"))
    send(processor, ev("responded", "00:01"))
    send(processor, ev("paused", "00:02"))
    counts = {k: v for k, v in processor.open_clocks.items() if v}
    assert counts == {("response", "running"): 1, ("resolution", "running"): 1,
                      ("resolution", "paused"): 1}
    fresh, _, _ = make()
    fresh.rebuild_index(table.items())
    assert {k: v for k, v in fresh.open_clocks.items() if v} == counts


def test_a_batch_writes_each_ticket_as_its_stored_ticket_encodes():
    processor, _, _ = make("00:00")
    batch = processor.apply_events(0, [(b"T1", orjson.dumps(ev("opened", "00:00")), 1),
                                       (b"T2", orjson.dumps(ev("opened", "00:00", ticket="T2")), 2),
                                       (b"T1", orjson.dumps(ev("paused", "00:01")), 3)])
    changes = processor.prepare(batch)
    assert set(changes) == {b"T1", b"T2"}
    for key, value in changes.items():
        stored = batch.stored[key]
        assert type(stored) is StoredTicket and stored.partition == 0
        assert value == stored.to_bytes() == StoredTicket.from_bytes(value).to_bytes()
    assert batch.stored[b"T1"].open_clocks == [("response", "running"), ("resolution", "paused")]


# The compiled wheel's processor (README, "Compiled engine") holds an Engine and nothing else:
# there a stand-in engine cannot be slipped in (tests/unit/test_packaging.py runs this file
# against it).
COMPILED = not agents.processor.__file__.endswith(".py")


@pytest.mark.skipif(COMPILED, reason="a compiled processor takes only a compiled Engine")
def test_an_engine_failure_costs_one_event_not_the_worker(monkeypatch):
    processor, _, _ = make("00:00")

    engine = processor.engine

    class Broken:  # the engine but for apply (a compiled Engine's methods cannot be patched)
        def __getattr__(self, name):
            return getattr(engine, name)

        def apply(self, *args, **kwargs):
            raise RuntimeError("a bug")

    monkeypatch.setattr(processor, "engine", Broken())
    [output] = send(processor, ev("opened", "00:00"))
    assert output.topic == "sla.events.dlq"
    assert dict(output.headers)["slamon-reason"] == b"internal_error"
    monkeypatch.undo()
    assert send(processor, ev("opened", "00:00", ticket="T2")) == []


def test_a_batch_changes_nothing_until_it_is_committed():
    processor, table, _ = make("00:00")
    batch = processor.apply_events(0, [(b"T1", orjson.dumps(ev("opened", "00:00")), 1)])
    assert table == {} and processor.index.next_due(0) is None
    assert processor.open_clocks == {}
    processor.store.write(0, processor.commit(batch))
    assert StoredTicket.from_bytes(table[b"T1"]).due == ms("00:07:30")
    assert processor.index.next_due(0) == ms("00:07:30")


def test_an_abandoned_batch_is_done_again_with_the_same_outputs():
    processor, table, clock = make("00:00")
    send(processor, ev("opened", "00:00"))
    clock.now = ms("00:16")
    first = processor.fire_due(0, ms("00:16"))
    processor.abandon(first)  # e.g. the broker did not acknowledge the outputs
    again = processor.fire_due(0, ms("00:16"))
    assert [o.value for o in again.outputs] == [o.value for o in first.outputs]
    processor.store.write(0, processor.commit(again))
    assert processor.fire_due(0, ms("00:16")).outputs == []


def test_deadlines_fire_only_up_to_the_tick_instant():
    processor, _, clock = make("00:00")
    send(processor, ev("opened", "00:00"))
    clock.now = ms("00:20")
    batch = processor.fire_due(0, ms("00:08"))  # the tick knows the events up to 00:08
    kinds = [orjson.loads(o.value)["kind"] for o in batch.outputs]
    assert kinds == ["warning"]
    processor.store.write(0, processor.commit(batch))
    assert processor.index.next_due(0) == ms("00:11:15")


def test_a_committed_state_is_reused_and_an_abandoned_one_is_not():
    processor, _, _ = make("00:00")
    send(processor, ev("opened", "00:00"))
    cached = processor.cache[b"T1"]
    batch = processor.apply_events(0, [(b"T1", orjson.dumps(ev("responded", "00:01")), 2)])
    assert batch.states[b"T1"] is cached
    processor.abandon(batch)
    assert b"T1" not in processor.cache
    outputs = send(processor, ev("responded", "00:01"))
    assert [orjson.loads(o.value)["kind"] for o in outputs if o.topic == "sla.outcomes"] == [
        "outcome"]
