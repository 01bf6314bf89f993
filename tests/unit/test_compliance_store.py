"""The compliance window rules over their two stores: the in-memory one replay uses and the
table-backed one the live agent uses keep the same contract, so the rules give the same
records over either (and the live processor the same records as replay)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.complianceprocessor import ComplianceProcessor, TableStore
from agents.devkit.traffic import ticket_events
from agents.policyfile import load_policies
from sla.compliance import Compliance, DictStore, WindowStore, windows_of
from sla.engine import Engine
from sla.events import format_ts, parse_ts
from sla.replay import Replay
from streams.topics import TopicCatalogue

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
T0 = parse_ts("2026-12-01T10:00:00Z")
WINDOW = ("email", "acme", "P1", "response", "hour", T0)
OTHER = ("email", "acme", "P1", "response", "hour", T0 + HOUR)


def table_store() -> TableStore:
    return TableStore({})


STORES = {"dict": DictStore, "table": table_store}


@pytest.fixture(params=sorted(STORES))
def store(request) -> WindowStore:
    return STORES[request.param]()


def test_put_needs_an_open_window_and_close_hands_back_its_entries(store):
    assert store.put(WINDOW, "T1:response:0", (True, 60.0)) is False
    assert dict(store.close(WINDOW)) == {}
    store.open(WINDOW, T0 + HOUR, 3)
    assert store.put(WINDOW, "T1:response:0", (True, 60.0)) is True
    assert store.put(WINDOW, "T2:response:0", (False, 900.0)) is True
    assert store.put(WINDOW, "T1:response:0", (False, 120.0)) is True  # replaces
    assert list(store.windows()) == [(WINDOW, T0 + HOUR, 3)]
    assert dict(store.close(WINDOW)) == {"T1:response:0": (False, 120.0),
                                         "T2:response:0": (False, 900.0)}
    assert list(store.windows()) == []
    assert store.put(WINDOW, "T3:response:0", (True, 1.0)) is False


def test_delete_withdraws_a_clock_and_ignores_what_is_not_there(store):
    store.open(WINDOW, T0 + HOUR, 0)
    store.put(WINDOW, "T1:response:0", (True, 60.0))
    store.put(WINDOW, "T2:response:0", (True, 30.0))
    store.delete(WINDOW, "T1:response:0")
    store.delete(WINDOW, "T1:response:0")  # already withdrawn
    store.delete(WINDOW, "T9:response:0")  # never counted
    store.delete(OTHER, "T2:response:0")  # window not open
    assert dict(store.close(WINDOW)) == {"T2:response:0": (True, 30.0)}


def test_the_counted_outcome_of_a_clock_is_remembered_replaced_and_forgotten(store):
    dims = ("email", "acme", "P1", "response")
    assert store.counted("T1:response:0") is None
    store.set_counted("T1:response:0", (dims, T0))
    store.set_counted("T1:response:0", (dims, T0 + 5))
    assert store.counted("T1:response:0") == (dims, T0 + 5)
    store.forget("T1:response:0")
    store.forget("T1:response:0")  # nothing left: no error
    assert store.counted("T1:response:0") is None


def count(store: TableStore, clock: str, stopped_ms: int, entry: tuple, lane: int) -> None:
    """What `Compliance.observe` does with an outcome: open its windows, put, set counted."""
    dims = ("email", "acme", "P1", "response")
    for kind, start, end in windows_of(stopped_ms):
        window = (*dims, kind, start)
        if not store.put(window, clock, entry):
            store.open(window, end, lane)
            store.put(window, clock, entry)
    store.set_counted(clock, (dims, stopped_ms))


def test_a_table_store_refilled_from_its_table_holds_the_same_open_windows():
    first = table_store()
    count(first, "T1:response:0", T0 + 60_000, (True, 60.0), 2)
    count(first, "T2:response:0", T0 + HOUR + 60_000, (False, 900.0), 2)
    first.closed_until(2, T0 + HOUR)  # T1's hour closed (the rules closed it in memory)
    first.close(WINDOW)
    assert len(first.table) == 3  # a row per clock, and the horizon: not one per window
    again = TableStore(first.table)
    again.load(first.table.items())
    assert sorted(again.windows()) == sorted(first.windows())
    assert WINDOW not in {window for window, _, _ in again.windows()}
    assert dict(again.close(OTHER)) == {"T2:response:0": (False, 900.0)}
    day = (*WINDOW[:4], "day", T0 - T0 % (24 * HOUR))
    assert dict(again.close(day)) == {"T1:response:0": (True, 60.0),
                                      "T2:response:0": (False, 900.0)}
    assert again.counted("T2:response:0") == (WINDOW[:4], T0 + HOUR + 60_000)


def test_a_clock_counted_in_no_open_window_keeps_its_outcome_and_opens_nothing():
    store = table_store()
    store.closed_until(0, T0 + 40 * 24 * HOUR)  # its month closed too
    count(store, "T1:response:0", T0 + 60_000, (True, 60.0), 0)
    again = TableStore(store.table)
    again.load(store.table.items())
    assert list(again.windows()) == []
    assert again.counted("T1:response:0") == (WINDOW[:4], T0 + 60_000)


def test_a_survey_is_one_row_per_metric_until_its_month_closes():
    store = table_store()
    dims = ("email", "acme", "P1")
    entry = (True, 0.8, "met")
    windows = [((*dims, metric, kind, start), end) for metric in ("response", "resolution")
               for kind, start, end in windows_of(T0 + 60_000)]
    for window, end in windows:
        store.open(window, end, 1)
        assert store.put(window, "S1:survey", entry)
    assert len(store.table) == 2
    again = TableStore(store.table)
    again.load(store.table.items())
    assert sorted(again.windows()) == sorted(store.windows())
    for window, _ in windows:
        assert dict(again.close(window)) == {"S1:survey": entry}
    assert not again.table  # each metric's month closed: its row went


# -- the rules over either store -------------------------------------------------------------
def outcome(ticket: int, minute: int, status: str, seconds: float, revision: int) -> dict:
    return {
        "id": f"T{ticket}:response:0:outcome:{revision}", "kind": "outcome",
        "ticket_id": f"T{ticket}", "metric": "response", "cycle": 0, "service": "email",
        "customer": "acme" if ticket % 2 else "globex", "priority": "P1", "status": status,
        "elapsed_seconds": seconds, "stopped_at": format_ts(T0 + minute * 60_000),
        "revision": revision,
    }


def lane_of(ticket: int) -> int:
    """The input partition of the ticket's customer (as keyed by service|customer)."""
    return ticket % 2


def retraction(ticket: int, revision: int) -> dict:
    return {"kind": "retraction", "retracts": f"T{ticket}:response:0:outcome:{revision}",
            "retracts_kind": "outcome"}


steps = st.lists(st.one_of(
    st.tuples(st.just("outcome"), st.integers(1, 6), st.integers(-90, 400),
              st.sampled_from(["met", "breached", "cancelled"]), st.integers(0, 3)),
    st.tuples(st.just("retract"), st.integers(1, 6)),
    st.tuples(st.just("watermark"), st.integers(0, 1), st.integers(0, 500)),
    st.tuples(st.just("restart"),),
), max_size=60)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_the_rules_give_the_same_records_over_a_dict_store_and_a_restarted_table_store(script):
    credit = lambda service, customer, ratio: 0.1 if ratio < 0.9 else 0.0  # noqa: E731
    in_memory = Compliance(DictStore(), credit, 120_000)
    tables = table_store()
    live = Compliance(tables, credit, 120_000)
    revisions: dict[int, int] = {}
    for step in script:
        if step[0] == "outcome":
            _, ticket, minute, status, seconds = step
            revisions[ticket] = revisions.get(ticket, -1) + 1
            record = outcome(ticket, minute, status, seconds * 450.0, revisions[ticket])
            in_memory.observe(record, lane_of(ticket))
            live.observe(record, lane_of(ticket))
        elif step[0] == "retract" and step[1] in revisions:
            ticket = step[1]
            in_memory.observe(retraction(ticket, revisions[ticket]), lane_of(ticket))
            live.observe(retraction(ticket, revisions[ticket]), lane_of(ticket))
        elif step[0] == "watermark":
            _, lane, minute = step
            watermark = T0 + minute * 60_000
            assert (in_memory.close_until(watermark, lane=lane)
                    == live.close_until(watermark, lane=lane))
        elif step[0] == "restart":  # partitions reassigned: memory is rebuilt from the table
            tables.load(list(tables.table.items()))
            live.reopen()
    for lane in (0, 1):
        assert (in_memory.close_until(T0 + 100 * 24 * HOUR, final=True, lane=lane)
                == live.close_until(T0 + 100 * 24 * HOUR, final=True, lane=lane))
    assert in_memory.late_outcomes == live.late_outcomes
    assert [key for key in tables.table if not key.startswith(b"h:")] == []


def test_the_live_processor_sends_the_compliance_records_replay_writes():
    """Outcomes as the clock agent sends them (with its watermark) into the live processor,
    restarted on its tables half-way: the records it sends are the ones replay writes, in
    order (replay's last ones, closed by the end of input, it would send with the next
    message)."""
    policies = load_policies(ROOT / "config" / "policies.yaml")
    replay = Replay(Engine(policies))
    lateness = replay.engine.lateness_ms
    credit = lambda service, customer, ratio: (  # noqa: E731
        policies.terms(service, customer).credit_for(ratio))
    table: dict[bytes, bytes] = {}
    live = ComplianceProcessor(table, TopicCatalogue(), credit, lateness)
    sent: list[bytes] = []
    expected: list[dict] = []
    events = ticket_events(4000, parse_ts("2026-10-19T06:00:00Z"), tickets_per_hour=300.0)
    for line, event in enumerate(events, 1):
        if line == 2000:
            live = ComplianceProcessor(table, TopicCatalogue(), credit, lateness)
            live.rebuild(list(table.items()))
        for record in replay.feed(event, line):
            expected.append(record)
            if record["kind"] in ("outcome", "retraction"):
                message = orjson.dumps({"watermark": replay.watermark, **record})
                sent += [output.value for output in live.handle(0, message)]
    expected += replay.finish()
    written = [orjson.dumps(record) for record in expected if record["kind"] == "compliance"]
    assert len(sent) > 20
    assert sent == written[:len(sent)]
