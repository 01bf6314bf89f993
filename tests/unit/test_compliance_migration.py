"""The earlier layout's two compliance tables move into the one table: the rules go on
over the moved rows as if nothing had happened (agents.complianceprocessor.legacy_rows,
agents.compliance.ComplianceService.move_legacy_rows)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, MutableMapping
from typing import NamedTuple

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.compliance import ComplianceService
from agents.complianceprocessor import TableStore, legacy_rows
from sla.compliance import (
    Compliance,
    Counted,
    DictStore,
    WindowEntry,
    WindowKey,
    WindowStore,
)
from sla.events import format_ts, parse_ts

T0 = parse_ts("2026-12-01T10:00:00Z")
HOUR = 3_600_000


# -- the earlier layout, as it was written (agents/complianceprocessor.py before the move) ----
class _StoredEntry(NamedTuple):
    """The value of an entries-table row, as stored: [partition, end, met, seconds], or for
    a survey [partition, end, positive, score, verdict]."""

    partition: int
    end: int
    met: bool  # a survey's: positive?
    seconds: float  # a survey's: score on 0..1
    verdict: str | None = None  # a survey's only: met, breached or ""

    @property
    def entry(self) -> WindowEntry:
        if self.verdict is None:
            return (self.met, self.seconds)
        return (self.met, self.seconds, self.verdict)


class _OpenWindow:
    """An open window: the partition whose watermark closes it, its end, its clocks."""

    __slots__ = ("partition", "end", "clocks")

    def __init__(self, partition: int, end: int) -> None:
        self.partition = partition
        self.end = end
        self.clocks: set[str] = set()


def _entry_key(window: WindowKey, clock: str) -> bytes:
    return orjson.dumps([*window, clock])


class LegacyTableStore(WindowStore):
    """`sla.compliance.WindowStore` over two tables of bytes (entries, clocks).

    Every change is one table write; the clocks of each open window are also kept in
    memory, so counting never reads the entries table; `load` refills them from it.
    """

    def __init__(self, entries: MutableMapping[bytes, bytes],
                 clocks: MutableMapping[bytes, bytes]) -> None:
        self.entries = entries
        self.clocks = clocks
        self._open: dict[WindowKey, _OpenWindow] = {}

    def load(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Refill the open windows from the rows of the entries table."""
        self._open.clear()
        for key, value in items:
            service, customer, priority, metric, kind, start, clock = orjson.loads(key)
            window: WindowKey = (service, customer, priority, metric, kind, start)
            opened = self._open.get(window)
            if opened is None:
                stored = _StoredEntry(*orjson.loads(value))
                opened = self._open[window] = _OpenWindow(stored.partition, stored.end)
            opened.clocks.add(clock)

    def open(self, window: WindowKey, end: int, lane: int) -> None:
        self._open[window] = _OpenWindow(lane, end)

    def put(self, window: WindowKey, clock: str, entry: WindowEntry) -> bool:
        opened = self._open.get(window)
        if opened is None:
            return False
        opened.clocks.add(clock)
        self.entries[_entry_key(window, clock)] = orjson.dumps(
            [opened.partition, opened.end, *entry])
        return True

    def delete(self, window: WindowKey, clock: str) -> None:
        opened = self._open.get(window)
        if opened is not None and clock in opened.clocks:
            opened.clocks.discard(clock)
            del self.entries[_entry_key(window, clock)]

    def close(self, window: WindowKey) -> Mapping[str, WindowEntry]:
        opened = self._open.pop(window, None)
        if opened is None:
            return {}
        closed: dict[str, WindowEntry] = {}
        for clock in opened.clocks:
            stored = _StoredEntry(*orjson.loads(self.entries.pop(_entry_key(window, clock))))
            closed[clock] = stored.entry
        return closed

    def windows(self) -> Iterable[tuple[WindowKey, int, int]]:
        return [(window, opened.end, opened.partition) for window, opened in self._open.items()]

    def counted(self, clock: str) -> Counted | None:
        stored = self.clocks.get(clock.encode())
        if stored is None:
            return None
        service, customer, priority, metric, stopped_ms = orjson.loads(stored)
        return (service, customer, priority, metric), stopped_ms

    def set_counted(self, clock: str, counted: Counted) -> None:
        dims, stopped_ms = counted
        self.clocks[clock.encode()] = orjson.dumps([*dims, stopped_ms])

    def forget(self, clock: str) -> None:
        self.clocks.pop(clock.encode(), None)

    def closed_until(self, lane: int, horizon: int) -> None:
        pass  # the earlier layout kept no horizon




# -- the script ------------------------------------------------------------------------------
def customer_of(ticket: int) -> str:
    return "acme" if ticket % 2 else "globex"


def partition_of(service: str, customer: str) -> int:
    """The compliance input's partition of a customer: the lane its windows close on."""
    return 1 if customer == "acme" else 0


def outcome(ticket: int, minute: int, status: str, seconds: float, revision: int) -> dict:
    return {
        "id": f"T{ticket}:response:0:outcome:{revision}", "kind": "outcome",
        "ticket_id": f"T{ticket}", "metric": "response", "cycle": 0, "service": "email",
        "customer": customer_of(ticket), "priority": "P1", "status": status,
        "elapsed_seconds": seconds, "stopped_at": format_ts(T0 + minute * 60_000),
        "revision": revision,
    }


def survey(number: int, ticket: int, minute: int, positive: bool) -> dict:
    return {
        "id": f"S{number}:survey", "kind": "survey", "ticket_id": f"T{ticket}",
        "service": "email", "customer": customer_of(ticket), "priority": "P1",
        "at": format_ts(T0 + minute * 60_000), "positive": positive,
        "score_ratio": 1.0 if positive else 0.25,
        "clocks": {"response": "met" if positive else "breached", "resolution": ""},
    }


steps = st.lists(st.one_of(
    st.tuples(st.just("outcome"), st.integers(1, 6), st.integers(-90, 3000),
              st.sampled_from(["met", "breached", "cancelled"]), st.integers(0, 3)),
    st.tuples(st.just("retract"), st.integers(1, 6)),
    st.tuples(st.just("survey"), st.integers(1, 6), st.integers(-90, 3000), st.booleans()),
    st.tuples(st.just("watermark"), st.integers(0, 1), st.integers(0, 3000)),
), max_size=40)


def play(script: list, stores: list[Compliance], revisions: dict[int, int]) -> list:
    """Each step on every store; what each watermark closed, per store."""
    closed: list = []
    for number, step in enumerate(script):
        if step[0] == "outcome":
            _, ticket, minute, status, seconds = step
            revisions[ticket] = revisions.get(ticket, -1) + 1
            record = outcome(ticket, minute, status, seconds * 450.0, revisions[ticket])
        elif step[0] == "retract" and step[1] in revisions:
            ticket = step[1]
            record = {"kind": "retraction", "retracts_kind": "outcome",
                      "retracts": f"T{ticket}:response:0:outcome:{revisions[ticket]}"}
        elif step[0] == "survey":
            _, ticket, minute, positive = step
            record = survey(number, ticket, minute, positive)
        elif step[0] == "watermark":
            _, lane, minute = step
            closed.append([rules.close_until(T0 + minute * 60_000, lane=lane)
                           for rules in stores])
            continue
        else:
            continue
        lane = partition_of("email", record.get("customer") or customer_of(step[1]))
        for rules in stores:
            rules.observe(record, lane)
    return closed


@settings(max_examples=150, deadline=None)
@given(steps, steps)
def test_the_rules_go_on_over_the_moved_rows_as_over_the_earlier_tables(before, after):
    credit = lambda service, customer, ratio: 0.1 if ratio < 0.9 else 0.0  # noqa: E731
    reference = Compliance(DictStore(), credit, 120_000)
    old = LegacyTableStore({}, {})
    live = Compliance(old, credit, 120_000)
    revisions: dict[int, int] = {}
    for in_memory, moved in play(before, [reference, live], revisions):
        assert in_memory == moved
    # In key order, as RocksDB lists them: a day's row before its hour's.
    table = {key: value for _, key, value in legacy_rows(
        sorted(old.entries.items()), sorted(old.clocks.items()), partition_of)}
    new = TableStore(table)
    new.load(table.items())
    live.store = new
    live.reopen()
    # The same windows, less those whose clocks were all withdrawn (they close with no record).
    assert sorted(new.windows()) == sorted(
        (window, opened.end, opened.partition) for window, opened in old._open.items()
        if opened.clocks)
    for in_memory, moved in play(after, [reference, live], revisions):
        assert in_memory == moved
    for lane in (0, 1):
        assert (reference.close_until(T0 + 100 * 24 * HOUR, final=True, lane=lane)
                == live.close_until(T0 + 100 * 24 * HOUR, final=True, lane=lane))
    assert [key for key in table if not key.startswith(b"h:")] == []


def test_each_moved_row_lives_on_its_customers_partition():
    old = LegacyTableStore({}, {})
    rules = Compliance(old, lambda *_: 0.0, 0)
    rules.observe(outcome(1, 5, "met", 60.0, 0), 1)
    rules.observe(outcome(2, 5, "met", 60.0, 0), 0)
    rules.observe(survey(7, 2, 6, True), 0)
    rows = list(legacy_rows(old.entries.items(), old.clocks.items(), partition_of))
    assert sorted((partition, key) for partition, key, _ in rows) == [
        (0, b"c:T2:response:0"), (0, b"h:0"),
        (0, b's:["S7:survey","resolution"]'), (0, b's:["S7:survey","response"]'),
        (1, b"c:T1:response:0"), (1, b"h:1")]


class FakeOverlay(dict):
    """A partition of a table during a batch: reads through, writes on commit."""

    def __init__(self, table: FakeTable, partition: int) -> None:
        super().__init__()
        self.table, self.partition = table, partition

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.table.rows[self.partition]

    def pop(self, key, default=None):  # type: ignore[override]
        value = self.table.rows[self.partition].get(key)
        self[key] = None
        return default if value is None else value

    async def commit(self, sender: object) -> None:
        rows = self.table.rows[self.partition]
        for key, value in self.items():
            if value is None:
                rows.pop(key, None)
            else:
                rows[key] = value
        self.table.commits.append(self.partition)


class FakeTable:
    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[int, dict[bytes, bytes]] = {0: {}, 1: {}}
        self.commits: list[int] = []

    def overlay(self, partition: int) -> FakeOverlay:
        return FakeOverlay(self, partition)

    def items(self) -> list[tuple[bytes, bytes]]:
        return [item for rows in self.rows.values() for item in rows.items()]


def test_the_service_moves_the_rows_once_and_empties_the_earlier_tables():
    old = LegacyTableStore({}, {})
    rules = Compliance(old, lambda *_: 0.0, 0)
    for ticket in range(1, 5):
        rules.observe(outcome(ticket, ticket, "met", 60.0, 0), ticket % 2)
    entries, clocks, table = FakeTable("e"), FakeTable("c"), FakeTable("t")
    for key, value in old.entries.items():
        entries.rows[orjson.loads(value)[0]][key] = value
    for key, value in old.clocks.items():
        clocks.rows[partition_of(*orjson.loads(value)[:2])][key] = value
    table.rows[1][b"c:T1:response:0"] = b"kept"  # moved by an interrupted run already
    sender = type("Sender", (), {"partition": lambda self, key: partition_of(
        *key.decode().split("|"))})()
    app = type("App", (), {"slamon_sender": sender})()
    service = ComplianceService(app, None, table, None, 2, (entries, clocks))  # type: ignore
    assert asyncio.run(service.move_legacy_rows()) == 4 * 3 + 4
    assert entries.items() == [] and clocks.items() == []
    assert table.rows[1][b"c:T1:response:0"] == b"kept"
    assert sorted(table.rows[0]) == [b"c:T2:response:0", b"c:T4:response:0", b"h:0"]
    assert sorted(table.rows[1]) == [b"c:T1:response:0", b"c:T3:response:0", b"h:1"]
    assert asyncio.run(service.move_legacy_rows()) == 0  # nothing left to move
