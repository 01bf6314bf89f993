"""The clock processor: what the clock agent does with one message, without Faust.

`handle_event` validates a service event, applies it to its ticket's state
(kept in a table as bytes) and fires what is due by the wall clock;
`handle_tick` fires the deadlines of one partition that are due. Both return
the messages to send. Bad input becomes a dead-letter message with the
original bytes and the reason; it never raises.

Table values are `[partition, next_due, open clocks, state]` as JSON, so the
deadline index and the open-clock counts can be rebuilt after a rebalance
without decoding every clock.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import orjson

from agents.deadlines import DeadlineIndex
from sla.clock import STATE_NAMES
from sla.engine import Engine
from sla.errors import InvalidEvent, RejectReason
from sla.events import Event, parse_event
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

__all__ = ["ClockProcessor", "wall_ms"]

logger = logging.getLogger(__name__)


def wall_ms() -> int:
    return int(time.time() * 1000)


class ClockProcessor:
    """Clock state in `table` (ticket_id bytes -> JSON bytes), due times in `index`."""

    def __init__(self, engine: Engine, table: MutableMapping[bytes, bytes],
                 topics: TopicCatalogue, observer: Any = None,
                 clock: Callable[[], int] = wall_ms) -> None:
        self.engine = engine
        self.table = table
        self.topics = topics
        self.index = DeadlineIndex()
        self.observer = observer  # agents.metrics.MonitorMetrics or None
        self.clock = clock
        self.rekeyed = 0
        # partition -> largest event time applied: the compliance agent closes windows by it
        self.watermarks: dict[int, int] = {}
        self.open_clocks: Counter[tuple[str, str]] = Counter()  # (metric, state) -> count

    # -- messages ------------------------------------------------------------
    def handle_event(self, partition: int, key: bytes | None, value: bytes | None,
                     offset: int = -1) -> list[Output]:
        raw = value or b""
        try:
            event = parse_event(decode_event(raw), self.engine.known_types, ref=offset)
        except InvalidEvent as error:
            return [self._dead_letter(key, raw, error.code, error.message, partition, offset)]
        ticket_key = event.ticket_id.encode()
        if key != ticket_key:
            # A producer keyed it wrong: send it back keyed by ticket, so it lands on the
            # partition that owns the ticket's clocks; it is applied when it arrives there.
            self.rekeyed += 1
            return [rekeyed(self.topics, ticket_key, raw, key)]
        if self.observer is not None:
            self.observer.observe_event(event.type)
        if event.ts > self.watermarks.get(partition, event.ts - 1):
            self.watermarks[partition] = event.ts
        try:
            return self._apply(partition, ticket_key, event, raw)
        except Exception as error:  # a bug must cost one event, never the worker
            logger.exception("event %s of ticket %s at %s:%s could not be applied",
                             event.event_id, event.ticket_id, partition, offset)
            return [self._dead_letter(key, raw, "internal_error",
                                      f"{type(error).__name__}: {error}", partition, offset)]

    def _apply(self, partition: int, ticket_key: bytes, event: Event, raw: bytes,
               ) -> list[Output]:
        now = self.clock()
        state = self._load(ticket_key, event.ticket_id)
        before = _open_clocks(state)
        records = self.engine.apply(state, event, now)
        records += self.engine.advance(state, now)
        self._store(partition, ticket_key, state, before)
        return self._outputs(records, event, raw, partition)

    def handle_tick(self, partition: int) -> list[Output]:
        """Fire everything of `partition` that is due by now."""
        now = self.clock()
        outputs: list[Output] = []
        for ticket_id in self.index.pop_due(partition, now):
            ticket_key = ticket_id.encode()
            value = self.table.get(ticket_key)
            if value is None:
                continue
            try:
                state = TicketState.from_wire(orjson.loads(value)[3])
                before = _open_clocks(state)
                records = self.engine.advance(state, now)
                self._store(partition, ticket_key, state, before)
            except Exception:  # one ticket's bug must not stop the others' deadlines
                logger.exception("deadlines of ticket %s could not be fired", ticket_id)
                continue
            outputs += self._outputs(records, None, b"", partition)
        return outputs

    def rebuild_index(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        """Refill the deadline index from the table (after partitions were assigned)."""
        self.index.clear()
        self.open_clocks.clear()
        for key, value in items:
            partition, due, open_clocks, _ = orjson.loads(value)
            self.index.schedule(partition, key.decode(), due)
            self.open_clocks.update(tuple(pair) for pair in open_clocks)
        self._report_open(None)
        return len(self.index)

    # -- state ---------------------------------------------------------------
    def _load(self, ticket_key: bytes, ticket_id: str) -> TicketState:
        value = self.table.get(ticket_key)
        if value is None:
            return TicketState(ticket_id)
        return TicketState.from_wire(orjson.loads(value)[3])

    def _store(self, partition: int, ticket_key: bytes, state: TicketState,
               open_before: list[tuple[str, str]]) -> None:
        open_after = _open_clocks(state)
        if open_after != open_before:
            self.open_clocks.subtract(open_before)
            self.open_clocks.update(open_after)
            self._report_open(set(open_before) | set(open_after))
        if self.engine.is_empty(state):
            if ticket_key in self.table:
                del self.table[ticket_key]
            self.index.schedule(partition, state.ticket_id, None)
            return
        due = self.engine.next_due(state)
        self.table[ticket_key] = orjson.dumps([partition, due, open_after, state.to_wire()])
        self.index.schedule(partition, state.ticket_id, due)

    def _report_open(self, changed: set[tuple[str, str]] | None) -> None:
        if self.observer is None:
            return
        for metric, state in (changed if changed is not None else list(self.open_clocks)):
            self.observer.set_open_clocks(metric, state, self.open_clocks[(metric, state)])

    # -- outputs -------------------------------------------------------------
    def _outputs(self, records: list[dict], event: Event | None, raw: bytes,
                 partition: int) -> list[Output]:
        outputs = []
        observer = self.observer
        topics = self.topics
        for record in records:
            kind = record["kind"]
            if kind == "rejected":
                original = event is not None and record.get("event_id") == event.event_id
                value = raw if original else orjson.dumps(record)
                outputs.append(self._dead_letter(record["ticket_id"].encode(), value,
                                                 record["reason"], record["message"],
                                                 partition, record.get("ref")))
                continue
            if observer is not None:
                observer.observe(record)
            outputs.append(record_output(topics, record))
            if feeds_compliance(record):
                outputs.append(compliance_input(topics, record, self.watermarks.get(partition)))
        return outputs

    def _dead_letter(self, key: bytes | None, value: bytes, code: RejectReason, message: str,
                     partition: int, offset: int | None) -> Output:
        if self.observer is not None:
            self.observer.observe_reject(code)
        logger.debug("rejected %s at %s:%s: %s", code, partition, offset, message)
        return dead_letter(self.topics, key, value, code, message, partition, offset)


def _open_clocks(state: TicketState) -> list[tuple[str, str]]:
    """(metric, running|paused) of each open clock of the ticket."""
    return [(clock.metric, STATE_NAMES[clock.status]) for clock in state.clocks.values()
            if clock.active]
