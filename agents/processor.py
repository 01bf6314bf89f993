"""The clock processor: what the clock agent does with a batch of messages, without Faust.

A batch is one partition's events (`apply_events`) or the deadlines of one partition due
by an instant (`fire_due`). Both work on a `Batch`: the tickets it touches are decoded
once and kept in it, and nothing outside the batch changes until `commit`. The agent
sends the batch's outputs and waits until Kafka has them; then it sends the table writes
(`prepare`) to the changelog and waits again; then it writes them to the local store and
`commit`s (deadline index, open-clock counts, metrics). An output is "sent" before the
state that records it exists anywhere, and the local store is never ahead of the
changelog, so a crash at any point makes the redelivered batch send the same outputs
again (same ids), never lose them. A batch abandoned before `commit` leaves no trace.

Bad input becomes a dead-letter output with the original bytes and the reason; a failure
inside the engine costs that one event (`internal_error`). Nothing here raises on input.

Committed ticket states stay decoded in a bounded cache, so a hot ticket is not decoded
from bytes on every batch; a batch that is abandoned, or a ticket whose event failed,
drops its tickets from it, and so does a rebalance (`forget`).

Table values are `StoredTicket`s, `[partition, next_due, open clocks, state]` as JSON, so
the deadline index and the open-clock counts can be rebuilt after a rebalance without
decoding every clock.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Final, NamedTuple, Protocol

import orjson

from agents.deadlines import DeadlineIndex
from sla.clock import STATE_NAMES
from sla.engine import Engine
from sla.errors import InvalidEvent, RejectReason
from sla.events import Event, parse_event
from sla.records import Record
from sla.ticket import TicketState
from streams.codec import decode_event
from streams.outputs import (
    Output,
    compliance_input,
    dead_letter,
    feeds_compliance,
    record_output,
    rekeyed,
)
from streams.topics import TopicCatalogue

__all__ = ["Batch", "ClockObserver", "ClockProcessor", "StoredTicket", "TicketStore",
           "wall_ms"]

logger: Final = logging.getLogger(__name__)

OpenClocks = list[tuple[str, str]]  # (metric, running|paused) of each open clock
STATE_CACHE_SIZE: Final = 200_000  # decoded ticket states kept (a few KiB each)
# StoredTicket(*fields) as `_tuple(StoredTicket, fields)`: without the NamedTuple's `__new__`,
# which runs in the interpreter.
_tuple: Final = tuple.__new__


def wall_ms() -> int:
    return int(time.time() * 1000)


class ClockObserver(Protocol):
    """What the processor reports to (agents.metrics.MonitorMetrics)."""

    def observe(self, rec: Record) -> None: ...
    def observe_event(self, event_type: str, at: float | None = None, count: int = 1,
                      ) -> None: ...
    def observe_reject(self, reason: str, count: int = 1) -> None: ...
    def set_open_clocks(self, metric: str, state: str, n: int) -> None: ...


class TicketStore(Protocol):
    """One partition's ticket states, read and written in batches (agents.tables.RawTable)."""

    def read(self, partition: int, key: bytes) -> bytes | None: ...
    def write(self, partition: int, changes: Mapping[bytes, bytes | None]) -> None: ...


class MappingStore:
    """A plain mapping as the store: unit tests and tools, where partitions share one dict."""

    def __init__(self, data: MutableMapping[bytes, bytes]) -> None:
        self.data = data

    def read(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get(key)

    def write(self, partition: int, changes: Mapping[bytes, bytes | None]) -> None:
        for key, value in changes.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


class StoredTicket(NamedTuple):
    """A ticket's table value: where it lives, when it next needs a look, its open clocks."""

    partition: int
    due: int | None
    open_clocks: OpenClocks
    state: list  # TicketState.to_wire()

    @classmethod
    def from_bytes(cls, value: bytes) -> StoredTicket:
        partition, due, open_clocks, state = orjson.loads(value)
        return cls(partition, due, [tuple(pair) for pair in open_clocks], state)

    def to_bytes(self) -> bytes:
        return orjson.dumps(tuple(self))  # a JSON array; orjson takes no NamedTuple


class Batch:
    """One partition's work in progress: touched tickets, outputs, effects kept for commit."""

    __slots__ = ("changes", "due", "event_types", "fired_upto", "not_after", "opened", "outputs",
                 "partition", "records", "rejects", "states", "stored")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.states: dict[bytes, TicketState] = {}
        self.opened: dict[bytes, OpenClocks] = {}  # open clocks when the ticket was loaded
        self.due: list[tuple[str, int]] = []  # (ticket, due) taken from the index
        self.fired_upto: int | None = None  # deadlines due by then were fired
        self.not_after: int | None = None  # events stamped later are future_ts; None: no limit
        self.changes: dict[bytes, bytes | None] | None = None  # the table writes, once prepared
        self.stored: dict[bytes, StoredTicket | None] = {}  # what they encode (None: deleted)
        self.outputs: list[Output] = []
        self.records: list[Record] = []  # emitted, for the metrics at commit
        self.event_types: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()


class ClockProcessor:
    """Clock state in `table` (ticket_id bytes -> StoredTicket bytes), due times in `index`."""

    def __init__(self, engine: Engine, table: TicketStore | MutableMapping[bytes, bytes],
                 topics: TopicCatalogue, observer: ClockObserver | None = None,
                 clock: Callable[[], int] = wall_ms, max_future_ms: int | None = None) -> None:
        self.engine = engine
        # Events stamped later than the clock plus this are rejected (future_ts); None: never.
        self.max_future_ms = max_future_ms
        # A RawTable is a mapping too, but read through Faust's Table it would search every
        # partition's database (no current event on the batch path): read its partition.
        self.store: TicketStore = (table if hasattr(table, "read")  # type: ignore[assignment]
                                   else MappingStore(table))
        self.topics = topics
        self.index = DeadlineIndex()
        self.observer = observer
        self.clock = clock
        self.rekeyed = 0
        # partition -> largest event time applied: the compliance agent closes windows by it
        self.watermarks: dict[int, int] = {}
        self.open_clocks: dict[tuple[str, str], int] = {}  # (metric, state) -> count
        self.cache: dict[bytes, TicketState] = {}  # committed states, oldest first
        self.cache_size = STATE_CACHE_SIZE

    # -- one message at a time (tests, tools) -----------------------------------------
    def handle_event(self, partition: int, key: bytes | None, value: bytes | None,
                     offset: int = -1) -> list[Output]:
        batch = self._new_batch(partition)
        self.apply_event(batch, key, value, offset, self.clock())
        self.store.write(partition, self.commit(batch))
        return batch.outputs

    def handle_tick(self, partition: int) -> list[Output]:
        """Fire everything of `partition` that is due by now."""
        batch = self.fire_due(partition, self.clock())
        self.store.write(partition, self.commit(batch))
        return batch.outputs

    # -- batches -----------------------------------------------------------------------
    def apply_events(self, partition: int,
                     messages: Iterable[tuple[bytes | None, bytes | None, int]],
                     now: int | None = None) -> Batch:
        """Apply (key, value, offset) messages of one partition, in order, to a new batch.

        `now` is the instant held events are judged by: the wall clock when the partition is
        live, its event time while it catches up on a backlog (as replay would).
        """
        batch = self._new_batch(partition)
        for key, value, offset in messages:
            self.apply_event(batch, key, value, offset, now)
        return batch

    def _new_batch(self, partition: int) -> Batch:
        batch = Batch(partition)
        if self.max_future_ms is not None:  # one clock read per batch, not per event
            batch.not_after = self.clock() + self.max_future_ms
        return batch

    def apply_event(self, batch: Batch, key: bytes | None, value: bytes | None, offset: int,
                    now: int | None) -> None:
        partition = batch.partition
        raw = value or b""
        try:
            event = parse_event(decode_event(raw), self.engine.known_types, ref=offset,
                                not_after=batch.not_after)
        except InvalidEvent as error:
            self._dead_letter(batch, key, raw, error.code, error.message, offset)
            return
        ticket_key = event.ticket_id.encode()
        if key != ticket_key:
            # A producer keyed it wrong: send it back keyed by ticket, so it lands on the
            # partition that owns the ticket's clocks; it is applied when it arrives there.
            self.rekeyed += 1
            batch.outputs.append(rekeyed(self.topics, ticket_key, raw, key))
            return
        batch.event_types[event.type] += 1
        if event.ts > self.watermarks.get(partition, event.ts - 1):
            self.watermarks[partition] = event.ts
        at = now if now is not None else max(self.watermarks[partition], event.ts)
        try:
            state = self._load(batch, ticket_key, event.ticket_id)
            assert state is not None
            records = self.engine.apply(state, event, at)
        except Exception as error:  # a bug must cost one event, never the worker
            logger.exception("event %s of ticket %s at %s:%s could not be applied",
                             event.event_id, event.ticket_id, partition, offset)
            batch.states.pop(ticket_key, None)  # reloaded from the table if seen again
            self.cache.pop(ticket_key, None)
            self._dead_letter(batch, key, raw, "internal_error",
                              f"{type(error).__name__}: {error}", offset)
            return
        self._outputs(batch, records, event, raw)

    def fire_due(self, partition: int, upto: int, batch: Batch | None = None) -> Batch:
        """Fire the deadlines of `partition` due by `upto` (into `batch`, or a new one)."""
        batch = batch if batch is not None else Batch(partition)
        batch.fired_upto = max(upto, batch.fired_upto or upto)
        now = self.clock()
        for ticket_id, due in self.index.take_due(partition, upto):
            batch.due.append((ticket_id, due))
            ticket_key = ticket_id.encode()
            try:
                state = self._load(batch, ticket_key, ticket_id, create=False)
                if state is None:
                    continue
                records = self.engine.advance(state, min(upto, now))
            except Exception:  # one ticket's bug must not stop the others' deadlines
                logger.exception("deadlines of ticket %s could not be fired", ticket_id)
                batch.states.pop(ticket_key, None)
                self.cache.pop(ticket_key, None)
                continue
            self._outputs(batch, records, None, b"")
        return batch

    def abandon(self, batch: Batch) -> None:
        """Put back what `fire_due` took from the index (the batch will be done again)."""
        for ticket_id, due in batch.due:
            self.index.schedule(batch.partition, ticket_id, due)
        for ticket_key in batch.states:
            self.cache.pop(ticket_key, None)  # the batch may have changed them in place

    def forget(self) -> None:
        """Drop the decoded states (partitions moved: the table is the truth again)."""
        self.cache.clear()

    def prepare(self, batch: Batch) -> dict[bytes, bytes | None]:
        """The table writes of `batch` (None deletes), computed once; nothing else changes."""
        if batch.changes is None:
            partition = batch.partition
            changes: dict[bytes, bytes | None] = {}
            for ticket_key, state in batch.states.items():
                if self.engine.is_empty(state):
                    changes[ticket_key] = batch.stored[ticket_key] = None
                    continue
                fields = (partition, self.engine.next_due(state), _open_clocks(state),
                          state.to_wire())
                batch.stored[ticket_key] = _tuple(StoredTicket, fields)
                changes[ticket_key] = orjson.dumps(fields)  # as StoredTicket.to_bytes encodes
            batch.changes = changes
        return batch.changes

    def commit(self, batch: Batch) -> dict[bytes, bytes | None]:
        """`prepare`'s writes; the index, the open-clock counts and the metrics take them in.

        Call once the writes are on Kafka and in the store: what is committed is final.
        """
        changes = self.prepare(batch)
        partition = batch.partition
        changed_counts: set[tuple[str, str]] = set()
        for ticket_key, state in batch.states.items():
            stored = batch.stored[ticket_key]
            before = batch.opened[ticket_key]
            after = stored.open_clocks if stored is not None else _open_clocks(state)
            if after != before:
                _count(self.open_clocks, before, -1)
                _count(self.open_clocks, after, 1)
                changed_counts.update(before)
                changed_counts.update(after)
            if stored is None:
                self.index.schedule(partition, state.ticket_id, None)
                self.cache.pop(ticket_key, None)
                continue
            self.index.schedule(partition, state.ticket_id, stored.due)
            self._remember(ticket_key, state)
        observer = self.observer
        if observer is not None:
            for event_type, count in batch.event_types.items():
                observer.observe_event(event_type, count=count)
            for reason, count in batch.rejects.items():
                observer.observe_reject(reason, count=count)
            for record in batch.records:
                observer.observe(record)
            self._report_open(changed_counts)
        return changes

    def rebuild_index(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        """Refill the deadline index from the table (after partitions were assigned)."""
        self.index.clear()
        self.open_clocks.clear()
        for key, value in items:
            stored = StoredTicket.from_bytes(value)
            self.index.schedule(stored.partition, key.decode(), stored.due)
            _count(self.open_clocks, stored.open_clocks, 1)
        self._report_open(None)
        return len(self.index)

    # -- state ---------------------------------------------------------------
    def _load(self, batch: Batch, ticket_key: bytes, ticket_id: str,
              create: bool = True) -> TicketState | None:
        """The ticket's state in this batch, from the table the first time; new if `create`."""
        state = batch.states.get(ticket_key)
        if state is not None:
            return state
        state = self.cache.get(ticket_key)
        if state is not None:
            batch.states[ticket_key] = state
            batch.opened[ticket_key] = _open_clocks(state)
            return state
        value = self.store.read(batch.partition, ticket_key)
        if value is None:
            if not create:
                return None
            state = TicketState(ticket_id)
        else:
            state = TicketState.from_wire(StoredTicket.from_bytes(value).state)
        batch.states[ticket_key] = state
        batch.opened[ticket_key] = _open_clocks(state)
        return state

    def _remember(self, ticket_key: bytes, state: TicketState) -> None:
        cache = self.cache
        cache.pop(ticket_key, None)  # re-inserted: the most recent last
        cache[ticket_key] = state
        if len(cache) > self.cache_size:
            del cache[next(iter(cache))]

    def _report_open(self, changed: set[tuple[str, str]] | None) -> None:
        if self.observer is None:
            return
        for metric, state in (changed if changed is not None else list(self.open_clocks)):
            self.observer.set_open_clocks(metric, state, self.open_clocks.get((metric, state), 0))

    # -- outputs -------------------------------------------------------------
    def _outputs(self, batch: Batch, records: Sequence[Record], event: Event | None,
                 raw: bytes) -> None:
        topics = self.topics
        for record in records:
            if record["kind"] == "rejected":
                original = event is not None and record.get("event_id") == event.event_id
                value = raw if original else orjson.dumps(record)
                self._dead_letter(batch, record["ticket_id"].encode(), value, record["reason"],
                                  record["message"], record.get("ref"))
                continue
            batch.records.append(record)
            output = record_output(topics, record)
            batch.outputs.append(output)
            if feeds_compliance(record):
                batch.outputs.append(compliance_input(
                    topics, record, self.watermarks.get(batch.partition), output.value))

    def _dead_letter(self, batch: Batch, key: bytes | None, value: bytes, code: RejectReason,
                     message: str, offset: int | None) -> None:
        batch.rejects[code] += 1
        logger.debug("rejected %s at %s:%s: %s", code, batch.partition, offset, message)
        batch.outputs.append(dead_letter(self.topics, key, value, code, message,
                                         batch.partition, offset))


def _count(counts: dict[tuple[str, str], int], pairs: OpenClocks, step: int) -> None:
    """Add `step` to the count of each pair (Counter's update and subtract run interpreted)."""
    for pair in pairs:
        counts[pair] = counts.get(pair, 0) + step


def _open_clocks(state: TicketState) -> OpenClocks:
    """(metric, running|paused) of each open clock of the ticket."""
    return [(clock.metric, STATE_NAMES[clock.status]) for clock in state.clocks.values()
            if clock.active]
