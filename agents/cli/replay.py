"""`slamon replay`: the engine over a file of events, offline and deterministic.

Reads JSON lines (a file or `-` for stdin) as a stream, writes output records
as JSON lines on stdout in the order they happen, and a summary on stderr
(with live progress when stderr is a terminal).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import IO, BinaryIO

HELP = "replay a file of events offline and print breach/warning/outcome/compliance records"

PROGRESS_EVERY = 1 << 15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", required=True, help="policy file (YAML)")
    parser.add_argument("--events", required=True, help="events as JSON lines; - for stdin")
    parser.add_argument("--as-of", help="end of input time (RFC 3339 or epoch ms), inclusive")
    parser.add_argument("--lateness", type=float, default=60.0,
                        help="seconds of event time to hold events of unopened tickets "
                             "and keep windows open (default 60)")
    parser.add_argument("--max-future", type=float, default=300.0, metavar="SECONDS",
                        help="with --as-of, reject events stamped more than this after it "
                             "(future_ts), as a worker does by its clock (default 300); "
                             "without --as-of replay has no clock and takes any time")
    parser.add_argument("--output", default="-", help="where to write records (default stdout)")
    parser.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                        help="replay in N processes, the tickets split between them; the "
                             "output is the same (default 1; 0: one per CPU)")


def _jobs(text: str) -> int:
    import os

    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if jobs < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (one per CPU) or more, not {jobs}")
    if jobs == 0:
        jobs = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1)
    return jobs


def run(args: argparse.Namespace) -> int:
    from agents.policyfile import load_policies
    from sla.engine import Engine
    from sla.errors import InvalidEvent, PolicyError
    from sla.events import parse_ts
    from sla.replay import Replay

    try:
        policies = load_policies(args.policies)
    except PolicyError as error:
        print("\n".join(error.problems), file=sys.stderr)
        return 2
    except OSError as error:
        print(f"slamon replay: cannot read policies: {error}", file=sys.stderr)
        return 2
    as_of = None
    if args.as_of is not None:
        try:
            as_of = parse_ts(int(args.as_of) if args.as_of.isdigit() else args.as_of, "--as-of")
        except InvalidEvent as error:
            print(f"slamon replay: {error}", file=sys.stderr)
            return 2
    not_after = None if as_of is None else as_of + round(args.max_future * 1000)
    make_engine = functools.partial(Engine, policies, lateness_ms=round(args.lateness * 1000))
    replay = Replay(make_engine(), not_after)
    try:
        source = sys.stdin.buffer if args.events == "-" else open(args.events, "rb")  # noqa: SIM115
    except OSError as error:
        print(f"slamon replay: cannot read events: {error}", file=sys.stderr)
        return 2
    try:
        sink = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
    except OSError as error:
        print(f"slamon replay: cannot write records: {error}", file=sys.stderr)
        source.close()
        return 2
    try:
        with _without_cyclic_gc():
            if args.jobs > 1:
                from agents.replayprocs import ShardFailed

                try:
                    counts, replay = _replay_in_jobs(args.jobs, make_engine, not_after, source,
                                                     sink, as_of)
                except ShardFailed as error:
                    print(f"slamon replay: {error}", file=sys.stderr)
                    return 1
            else:
                counts = _replay_stream(replay, source, sink, as_of)
            summary = _summary(replay, counts)
            del replay  # freed while the collector is paused: see _without_cyclic_gc
    finally:
        for stream in (source, sink):  # our own files only: stdin and stdout stay open
            if stream not in (sys.stdin.buffer, sys.stdout.buffer):
                stream.close()
        sys.stdout.flush()
    print(summary, file=sys.stderr)
    return 0


def _replay_stream(replay, source: BinaryIO, sink: BinaryIO, as_of: int | None) -> Counter:
    import orjson

    from streams.codec import MAX_EVENT_BYTES, decode_line

    counts: Counter = Counter()
    progress = _Progress(source) if sys.stderr.isatty() else None
    loads, not_json = orjson.loads, orjson.JSONDecodeError
    dumps, write, newline = orjson.dumps, sink.write, orjson.OPT_APPEND_NEWLINE
    feed = replay.feed
    line = 0
    for raw in source:
        line += 1
        if raw.isspace():  # a blank line (a line read from a file is never empty)
            continue
        try:  # streams.codec.decode_event, written out for the usual line
            obj = loads(raw) if len(raw) <= MAX_EVENT_BYTES else decode_line(raw)
        except not_json:
            obj = decode_line(raw)
        for record in feed(obj, line):
            counts[record["kind"]] += 1
            write(dumps(record, option=newline))
        if progress is not None and line % PROGRESS_EVERY == 0:
            progress.show(line, replay.open_tickets)
    for record in replay.finish(as_of):
        counts[record["kind"]] += 1
        write(dumps(record, option=newline))
    if progress is not None:
        progress.done()
    return counts


def _replay_in_jobs(jobs: int, make_engine, not_after: int | None, source: BinaryIO,
                    sink: BinaryIO, as_of: int | None):
    """`--jobs N`: the same records from N shard processes (`agents.replayjobs`)."""
    from agents.replayjobs import ShardedReplay
    from agents.replayprocs import process_shards

    shards = process_shards(jobs, make_engine, not_after)
    done = False
    try:
        sharded = ShardedReplay(make_engine(), shards, not_after)
        progress = _Progress(source) if sys.stderr.isatty() else None
        show = None if progress is None else (
            lambda line: progress.show(line, sharded.open_tickets))
        counts = sharded.run(source, sink.write, as_of, show)
        if progress is not None:
            progress.done()
        done = True
    finally:
        for shard in shards:
            shard.close() if done else shard.abort()
    return counts, sharded.replay


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while replaying.

    A replay keeps every open ticket's state (small lists, tuples and dicts) alive and
    makes next to no cyclic garbage (about a hundred objects in 300,000 events, bad
    lines included): the collector would only re-scan survivors, which took about 9%
    of a 1,000,000-event replay even with raised thresholds. Reference counting still
    frees everything else at once.

    The replay's state is dropped before the collector resumes: every object made while
    it was paused is still in its youngest generation, so the first collection after
    would traverse all of that state once more (about 5% of a replay).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Progress:
    """A one-line progress report on stderr: lines, rate, share of the file read."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.started = time.monotonic()
        try:
            import os
            self.size = os.fstat(source.fileno()).st_size
        except (OSError, ValueError):
            self.size = 0

    def show(self, line: int, open_tickets: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        share = ""
        if self.size:
            with contextlib.suppress(OSError):
                share = f" {100 * self.source.tell() / self.size:5.1f}%"
        sys.stderr.write(f"\r{line:>12,} lines{share} {line / elapsed:>10,.0f} lines/s "
                         f"{open_tickets:>9,} tickets")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")


def _summary(replay, counts: Counter) -> str:
    parts = ", ".join(f"{counts[k]} {k}" for k in
                      ("breach", "warning", "outcome", "retraction", "compliance", "rejected"))
    if counts["survey"]:
        parts += f", {counts['survey']} survey"
    late = replay.compliance.late_outcomes
    extra = f"; {late} outcomes after their window closed (not counted)" if late else ""
    return f"slamon replay: {replay.events} events -> {parts}{extra}"
