"""One shard of a replay split by ticket: the same records, each with its place in the whole.

A replay's records for a ticket depend on that ticket's events and on the watermark, never
on another ticket's state; only compliance windows and the order of the output mix tickets.
So `slamon replay --jobs N` hands each ticket's events to one of N shards, tells every shard
the watermark after each line, and merges what the shards give in the order one `Replay`
would have written it (`agents.replayjobs`, which also counts compliance).

A shard must fire each deadline at the same point of the input as one replay does, or a
ticket would see its deadline fire after an event that came before it. One replay fires,
at each line that moves the watermark forward, every deadline due before the new watermark:
a shard, which sees only its own lines, catches up on all the lines it did not see before
it applies its next one (`sync`), and gives each record the key that says where one replay
would have written it:

- `(line, APPLIED, n)`: the n-th record of applying the event on `line`;
- `(line, FIRED, instant, pushed, n)`: the n-th record of the deadline at `instant` that one
  replay fired on `line`; `pushed` says when that deadline was scheduled, which orders the
  deadlines due at one instant as one replay's heap does.

One replay's heap pops deadlines by instant, then by the order they were pushed. A push
happens after an event is applied, `(line, APPLIED)`, or after a deadline fires, `(line,
FIRED, instant, pushed)` of the deadline that fired: those tuples order every push of the
whole replay as it happened, whichever shard made it. Within a shard, its heap pops in that
same order, so each shard's records come out sorted by key and a merge of sorted lists
restores one replay's order.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right

from sla.engine import Engine
from sla.events import Event
from sla.replay import _SEQ_SPAN, Replay
from sla.ticket import NEVER, TicketState

__all__ = ["ReplayShard", "FIRED", "APPLIED", "KeyedRecord"]

# On one line, one replay writes the deadlines it fired, then the windows it closed (the
# merger's, in between), then the event's records.
FIRED, APPLIED = 0, 2
KeyedRecord = tuple[tuple, dict]


class ReplayShard(Replay):
    """The tickets of one shard. Feed it, in input order, the watermark after every line
    (`watermarks`) and its own events (`feed_event`); `sync` at the end of each batch of lines,
    `finish_shard` at the end of input. Compliance is the merger's: records are not counted
    here."""

    def __init__(self, engine: Engine, not_after: int | None = None) -> None:
        super().__init__(engine, not_after)
        # The watermark after each line from line `_first` on (line 0: before the first
        # line). Lines before the last synced one are dropped: no firing looks them up.
        self._after: list[int] = [NEVER]
        self._first = 0
        self._synced = 0  # the last line whose firing this shard has caught up with
        self._pushed: dict[int, tuple] = {}  # heap key -> when it was pushed (see the module)
        self._push: tuple = (0, APPLIED)  # where `_schedule` pushes now

    def watermarks(self, first_line: int, after: list[int]) -> None:
        """The watermark after each line from `first_line` on (every line, the shard's or not)."""
        expected = self._first + len(self._after)
        if first_line != expected:
            raise ValueError(f"watermarks from line {first_line}; expected line {expected}")
        if self._synced > self._first:  # memory stays that of a batch, not of the input
            del self._after[:self._synced - self._first]
            self._first = self._synced
        self._after.extend(after)

    def feed_event(self, event: Event, line: int) -> list[KeyedRecord]:
        """Apply the event on `line` (parsed by the reader, which rejects what is not valid);
        its keyed records and those of the deadlines one replay fired before it."""
        keyed = self.sync(line)
        ticket_id = event.ticket_id
        state = self._tickets.get(ticket_id)
        if state is None:
            state = self._tickets[ticket_id] = TicketState(ticket_id)
        produced = self.engine.apply(state, event, self._after[line - self._first])
        if produced:
            records: list[dict] = []
            self._collect(produced, records)
            keyed += [((line, APPLIED, n), record) for n, record in enumerate(records)]
        if self.engine.is_empty(state):
            del self._tickets[ticket_id]
        else:
            self._push = (line, APPLIED)
            self._schedule(state)
        return keyed

    def sync(self, line: int) -> list[KeyedRecord]:
        """Fire what one replay fired on the lines up to `line`; their keyed records."""
        after, first, due = self._after, self._first, self._due
        keyed: list[KeyedRecord] = []
        watermark, synced = after[line - first], after[self._synced - first]
        # The usual line: nothing due before the watermark, or the watermark did not move.
        if due and due[0] < watermark * _SEQ_SPAN and watermark > synced:
            self._fire_keyed(watermark - 1, keyed, synced)
        self._synced = line
        return keyed

    def finish_shard(self, end: int) -> list[KeyedRecord]:
        """End of input, once synced to the last line: fire everything due up to `end`."""
        keyed: list[KeyedRecord] = []
        self._fire_keyed(end, keyed, self._after[self._synced - self._first])
        return keyed

    # -- internals -----------------------------------------------------------
    def _collect(self, produced: list[dict], records: list[dict]) -> None:
        """`Replay._collect` without counting compliance, which is the merger's."""
        for record in produced:
            if record["kind"] == "rejected":
                record["line"] = record.pop("ref")
                self.rejected += 1
            records.append(record)

    def _schedule(self, state: TicketState) -> None:
        seq = self._seq
        super()._schedule(state)
        if self._seq != seq:  # pushed: remember when, under the key `Replay._schedule` made
            self._pushed[self._scheduled[state.ticket_id] * _SEQ_SPAN + self._seq] = self._push

    def _fire_keyed(self, until: int, keyed: list[KeyedRecord], synced: int) -> None:
        """`Replay._fire_until`, with each record keyed by the line one replay fired it on;
        `synced`: the watermark after the last line synced before."""
        due, engine, scheduled, tickets = self._due, self.engine, self._scheduled, self._tickets
        due_ticket, pushed, pop = self._due_ticket, self._pushed, heapq.heappop
        end = (until + 1) * _SEQ_SPAN
        while due and due[0] < end:
            key = pop(due)
            instant, ticket_id, push = key // _SEQ_SPAN, due_ticket.pop(key), pushed.pop(key)
            if scheduled.get(ticket_id) != instant:
                continue
            del scheduled[ticket_id]
            line = self._fired_on(instant, push, synced)
            state = tickets[ticket_id]
            produced = engine.advance(state, instant)
            if produced:
                records: list[dict] = []
                self._collect(produced, records)
                keyed += [((line, FIRED, instant, push, n), record)
                          for n, record in enumerate(records)]
            if engine.is_empty(state):
                del tickets[ticket_id]
            else:
                self._push = (line, FIRED, instant, push)
                self._schedule(state)

    def _fired_on(self, instant: int, push: tuple, synced: int) -> int:
        """The line on which one replay fired a deadline at `instant` pushed at `push`, in a
        firing that catches up from the last line synced, after which the watermark was
        `synced`.

        One replay fires a deadline on the first line after its push whose watermark
        exceeds the instant. A deadline still waiting after the last sync was due at or
        after the watermark then (`synced`), or was pushed on the synced line itself, before
        the watermark: either way its line is the first whose watermark exceeds both the
        instant and `synced`. A deadline pushed while firing on a line of this catch-up, due
        before that line's watermark, fires in the same firing. After the last line: the end
        of input (`finish`).
        """
        after, first, line = self._after, self._first, push[0]
        if line == first + len(after):  # pushed while firing at the end of input
            return line
        if push[1] == FIRED and line > self._synced and instant < after[line - first]:
            return line
        return first + bisect_right(after, instant if instant > synced else synced)
