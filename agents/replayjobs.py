"""`slamon replay --jobs N`: one replay split by ticket over N processes, merged in order.

The reader (this process) decodes and checks each line, keeps the watermark, and hands each
valid event to the shard that owns its ticket (`sla.replay_shard`), in batches of lines.
Every shard gets the watermark after every line of the batch. Each shard returns its records
keyed by where one replay would have written them; the reader merges the shards' sorted
lists with its own rejections, counts compliance as it goes (windows span tickets), and
writes. The output is byte for byte that of `--jobs 1`.

Batches are pipelined: while the shards work on one batch the reader decodes the next and
merges the one before. The shards run in processes (`agents.replayprocs`), or in this one
(`LocalShard`: the tests, which need no processes to check the merge).
"""

from __future__ import annotations

import itertools
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any, Protocol

import orjson

from sla.engine import Engine
from sla.events import Event
from sla.replay import Replay
from sla.replay_shard import APPLIED, ReplayShard
from sla.ticket import NEVER
from streams.codec import decode_line

__all__ = ["ShardedReplay", "ShardWorker", "LocalShard", "Shard", "Answer"]

BATCH_LINES = 4096
IN_FLIGHT = 2  # batches handed to the shards before the reader waits for the oldest
# Records that compliance counts (`Replay._collect`).
_COUNTED = frozenset({"outcome", "retraction", "survey"})

_as_event = tuple.__new__  # Event(*fields) without the NamedTuple's Python-level __new__

# A shard's answer to a batch: its records as (key, kind, JSON line), sorted by key, and
# how many tickets it holds.
Keyed = tuple[tuple, str, bytes]
Answer = tuple[list[Keyed], int]


class Shard(Protocol):
    """Where one shard runs: `submit` hands it work, `answer` returns the oldest answer;
    `close` after the whole replay, `abort` when the reader stops early."""

    def submit(self, work: tuple) -> None: ...

    def answer(self) -> Answer: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class ShardWorker:
    """A shard's side: batches of events in, keyed JSON lines out."""

    def __init__(self, engine: Engine, not_after: int | None) -> None:
        self.shard = ReplayShard(engine, not_after)

    def handle(self, work: tuple) -> Answer:
        shard = self.shard
        if work[0] == "finish":
            keyed = shard.finish_shard(work[1])
        else:
            _, first_line, after, events = work
            shard.watermarks(first_line, after.tolist())
            keyed = []
            feed = shard.feed_event
            for line, fields in events:
                keyed += feed(_as_event(Event, fields), line)
            keyed += shard.sync(first_line + len(after) - 1)
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        return ([(key, record["kind"], dumps(record, option=newline)) for key, record in keyed],
                shard.open_tickets)


class LocalShard:
    """A shard in this process: for tests, and the proof that the merge needs no processes."""

    def __init__(self, engine: Engine, not_after: int | None) -> None:
        self.worker = ShardWorker(engine, not_after)
        self.answers: deque[Answer] = deque()

    def submit(self, work: tuple) -> None:
        self.answers.append(self.worker.handle(work))

    def answer(self) -> Answer:
        return self.answers.popleft()

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class ShardedReplay:
    """The reader and merger of a replay split over `shards` (see the module)."""

    def __init__(self, engine: Engine, shards: list[Shard], not_after: int | None = None,
                 batch_lines: int = BATCH_LINES) -> None:
        # The reader's own replay: its watermark, rejections and compliance (no tickets).
        self.replay = Replay(engine, not_after)
        self.shards = shards
        self.batch_lines = batch_lines
        self.open_tickets = 0
        self._pending: deque[tuple[int, list[int], list[Keyed]]] = deque()
        self._watermark = NEVER  # after the last line merged

    def run(self, lines: Iterable[bytes], write: Callable[[bytes], Any],
            as_of: int | None = None, progress: Callable[[int], None] | None = None) -> Counter:
        """Replay `lines`; write each output line with `write`; the records of each kind."""
        counts: Counter = Counter()
        line = 0
        batch: list[bytes] = []
        for raw in lines:
            batch.append(raw)
            if len(batch) == self.batch_lines:
                self._submit(line + 1, batch)
                line += len(batch)
                batch = []
                if len(self._pending) > IN_FLIGHT:
                    self._merge_oldest(write, counts)
                if progress is not None:
                    progress(line)
        if batch:
            self._submit(line + 1, batch)
        while self._pending:
            self._merge_oldest(write, counts)
        self._finish(as_of, write, counts)
        return counts

    def _submit(self, first_line: int, batch: list[bytes]) -> None:
        replay, n = self.replay, len(self.shards)
        watermark, check = replay.watermark, replay.check
        after: list[int] = []
        owned: list[list[tuple[int, tuple]]] = [[] for _ in range(n)]
        rejected: list[Keyed] = []
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        for line, raw in enumerate(batch, first_line):
            if raw.isspace():  # a blank line: no event, as `slamon replay` skips it
                after.append(watermark)
                continue
            replay.events += 1
            event = check(decode_line(raw), line)
            if isinstance(event, dict):  # the line's `rejected` record
                after.append(watermark)
                rejected.append(((line, APPLIED, 0), "rejected", dumps(event, option=newline)))
                continue
            if event.ts > watermark:
                watermark = event.ts
            after.append(watermark)
            # Its fields as a plain tuple (a slice): cheaper to pickle than the Event, and
            # far cheaper than decoding and checking the line again.
            owned[hash(event.ticket_id) % n].append((line, event[:]))
        replay.watermark = watermark
        # As machine integers: pickled as one block, where a list's epoch milliseconds (past
        # 2**31) are pickled one by one through their bytes.
        marks = array("q", after)
        for shard, lines in zip(self.shards, owned, strict=True):
            shard.submit(("batch", first_line, marks, lines))
        self._pending.append((first_line, after, rejected))

    def _merge_oldest(self, write: Callable[[bytes], Any], counts: Counter) -> None:
        first_line, after, rejected = self._pending.popleft()
        answers = [shard.answer() for shard in self.shards]
        self.open_tickets = sum(tickets for _, tickets in answers)
        # The lines that moved the watermark: one replay closes windows on each (after the
        # deadlines the line fired, before the line's own records).
        moved: list[tuple[int, int]] = []
        previous = self._watermark
        for line, watermark in enumerate(after, first_line):
            if watermark > previous:
                moved.append((line, watermark))
                previous = watermark
        self._watermark = previous
        self._write_merged([records for records, _ in answers] + [rejected], moved, write,
                           counts)

    def _finish(self, as_of: int | None, write: Callable[[bytes], Any], counts: Counter) -> None:
        replay = self.replay
        end = replay.watermark if as_of is None else max(as_of, replay.watermark)
        for shard in self.shards:
            shard.submit(("finish", end))
        self._write_merged([shard.answer()[0] for shard in self.shards], [], write, counts)
        replay.watermark = end
        self._write_all(replay.compliance.close_until(end, final=True), write, counts)

    def _write_merged(self, lists: list[list[Keyed]], moved: list[tuple[int, int]],
                      write: Callable[[bytes], Any], counts: Counter) -> None:
        """Write the shards' sorted lists merged, counting compliance as one replay does,
        and closing its windows on each (line, watermark) of `moved`: after the deadlines
        the line fired, before the line's own records."""
        compliance, loads = self.replay.compliance, orjson.loads
        closes = iter(moved)
        next_close = next(closes, None)
        for key, kind, payload in _merged(lists):
            while next_close is not None and (
                    next_close[0] < key[0] or next_close[0] == key[0] and key[1] == APPLIED):
                self._write_all(compliance.close_until(next_close[1]), write, counts)
                next_close = next(closes, None)
            if kind in _COUNTED:
                compliance.observe(loads(payload))
            counts[kind] += 1
            write(payload)
        while next_close is not None:
            self._write_all(compliance.close_until(next_close[1]), write, counts)
            next_close = next(closes, None)

    @staticmethod
    def _write_all(records: list[dict], write: Callable[[bytes], Any], counts: Counter) -> None:
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        for record in records:
            counts[record["kind"]] += 1
            write(dumps(record, option=newline))


def _merged(lists: list[list[Keyed]]) -> list[Keyed]:
    """Sorted lists merged by key (keys are unique: a key names one record). Sorting their
    concatenation merges the runs in C, where `heapq.merge` would step through Python for
    each record."""
    lists = [records for records in lists if records]
    if len(lists) == 1:
        return lists[0]
    return sorted(itertools.chain.from_iterable(lists), key=itemgetter(0))
