"""`slamon review`: the same history replayed under two policy files, what changes for whom.

It is the review an agreement promises when a service or an objective changes, done on
real history before the change goes live. Each line of `--events` is decoded once (by
`streams.codec.decode_event`, as `slamon replay` decodes it) and fed to two
`sla.replay.Replay`s, one per policy file, so both replays are exactly `slamon replay`'s;
their records go to two `sla.review.Tally`s, `sla.review.compare` sets them side by side
and `sla.policy_diff` lists the terms that changed. `agents.reports.review_output` writes
the result as a table, JSON, CSV or an HTML page.

Exit status: 0; 1 when the new terms lower some customer's compliance (a row: service,
priority, metric) below its objective, so the command can gate a change in CI; 2 for bad
input, each problem naming its file and line (an invalid policy file, a history line that
is not an event).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import IO, TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from sla.policy import Policies
    from sla.review import Period, Tally

HELP = "replay history under two policy files and report what changes for whom"

PROGRESS_EVERY = 1 << 14
# Reasons that say a line of the history is not an event at all, whatever the policies:
# the review refuses such a file (unless --skip-bad-lines) rather than review part of it.
BAD_LINE_REASONS = frozenset({"not_json", "too_large", "missing_field", "bad_type",
                              "bad_timestamp"})
SHOWN_PROBLEMS = 20
OPEN_WINDOWS_END = 2**62  # a watermark past every window: closes all that are still open


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--old", required=True, help="the policy file in force (YAML)")
    parser.add_argument("--new", required=True, help="the proposed policy file (YAML)")
    parser.add_argument("--events", required=True, help="history as JSON lines; - for stdin")
    parser.add_argument("--from", dest="start", metavar="TS",
                        help="review period start (RFC 3339 or epoch ms): outcomes and breaches "
                             "before it are not compared; earlier events still set up clocks")
    parser.add_argument("--to", dest="end", metavar="TS",
                        help="review period end, inclusive: later events are not replayed and "
                             "deadlines fire up to it (like replay's --as-of)")
    parser.add_argument("--format", choices=("table", "json", "csv", "html"), default="table")
    parser.add_argument("--output", default="-", help="where to write the review (default stdout)")
    parser.add_argument("--lateness", type=float, default=60.0,
                        help="seconds of event time to hold events of unopened tickets and keep "
                             "windows open, as in slamon replay (default 60)")
    parser.add_argument("--skip-bad-lines", action="store_true",
                        help="review the rest of a history that has lines that are not events "
                             "(they are listed on stderr) instead of refusing it")


def run(args: argparse.Namespace) -> int:
    from agents.policyfile import read_policy_file
    from sla.errors import PolicyError

    loaded = []
    for flag, path in (("--old", args.old), ("--new", args.new)):
        try:
            loaded.append(read_policy_file(path))
        except PolicyError as error:
            _problems(f"{flag} {path} is not a valid policy file", error.problems)
            return 2
        except OSError as error:
            _problems(f"cannot read {flag} {path}", [str(error)])
            return 2
    (old, _), (new, _) = loaded
    period = _period(args)
    if period is None:
        return 2
    try:
        source = sys.stdin.buffer if args.events == "-" else open(args.events, "rb")  # noqa: SIM115
    except OSError as error:
        _problems("cannot read --events", [str(error)])
        return 2
    name = "<stdin>" if args.events == "-" else args.events
    try:
        outcome = _replay_both(old, new, period, source, name, round(args.lateness * 1000))
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if outcome.problems:
        _problems(f"{len(outcome.problems)} lines of {name} are not events", outcome.problems)
        if not args.skip_bad_lines:
            return 2
    from agents.reports.review_output import Provenance, render
    from sla.policy_diff import diff_policies
    from sla.review import compare, objective_of

    review = compare(outcome.old, outcome.new, diff_policies(old.spec, new.spec),
                     lambda customer, service: objective_of(new.credits(customer, service)))
    provenance = Provenance(old.source, old.version, new.source, new.version, name,
                            outcome.lines, outcome.after_period)
    text = render(review, provenance, args.format)
    try:
        if args.output == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            with open(args.output, "w", encoding="utf-8") as sink:
                sink.write(text)
    except OSError as error:
        _problems("cannot write the review", [str(error)])
        return 2
    failing = review.failures
    verdict = ("passes" if not failing else
               f"FAILS: {len(failing)} rows lowered below their objective")
    print(f"slamon review: {outcome.lines:,} lines, {outcome.seconds:.1f} s; "
          f"{len(review.terms)} terms changed, "
          f"{sum(len(r.added) for r in review.rows)} breaches added, "
          f"{sum(len(r.removed) for r in review.rows)} removed; {verdict}", file=sys.stderr)
    return 0 if not failing else 1


def _problems(heading: str, problems: list[str]) -> None:
    shown = problems[:SHOWN_PROBLEMS]
    more = len(problems) - len(shown)
    lines = [f"slamon review: {heading}:", *(f"  {p}" for p in shown)]
    if more > 0:
        lines.append(f"  ... and {more} more")
    print("\n".join(lines), file=sys.stderr)


def _period(args: argparse.Namespace) -> Period | None:
    from sla.errors import InvalidEvent
    from sla.events import parse_ts
    from sla.review import Period

    bounds: list[int | None] = []
    for flag, text in (("--from", args.start), ("--to", args.end)):
        if text is None:
            bounds.append(None)
            continue
        try:
            bounds.append(parse_ts(int(text) if text.isdigit() else text, flag))
        except InvalidEvent as error:
            _problems("bad review period", [str(error)])
            return None
    start, end = bounds
    if start is not None and end is not None and end < start:
        _problems("bad review period", [f"--to {args.end} is before --from {args.start}"])
        return None
    return Period(start, end)


class _Outcome:
    """What reading the history gave: a tally per policy file, lines, problems, time."""

    def __init__(self, old: Tally, new: Tally) -> None:
        self.old, self.new = old, new
        self.lines = 0
        self.after_period = 0  # events stamped after --to: not replayed
        self.problems: list[str] = []
        self.seconds = 0.0


def _replay_both(old_policies: Policies, new_policies: Policies, period: Period,
                 source: BinaryIO, name: str, lateness_ms: int) -> _Outcome:
    """Decode each line once and feed it to both replays; tally their records."""
    from agents.cli.replay import _without_cyclic_gc
    from sla.engine import Engine
    from sla.errors import InvalidEvent
    from sla.events import parse_ts
    from sla.replay import DecodeError, Replay
    from sla.review import Tally
    from streams.codec import decode_event

    started = time.monotonic()
    replays = (Replay(Engine(old_policies, lateness_ms=lateness_ms)),
               Replay(Engine(new_policies, lateness_ms=lateness_ms)))
    outcome = _Outcome(Tally(period), Tally(period))
    tallies = (outcome.old, outcome.new)
    problems, end = outcome.problems, period.end
    progress = _Progress(source) if sys.stderr.isatty() else None
    line = 0
    with _without_cyclic_gc():
        for raw in source:
            line += 1
            if not raw.strip():
                continue
            try:
                obj = decode_event(raw)
            except InvalidEvent as error:
                obj = DecodeError(error.code, error.message)
            if end is not None and isinstance(obj, dict):
                with contextlib.suppress(InvalidEvent, KeyError):
                    if parse_ts(obj["ts"]) > end:
                        outcome.after_period += 1
                        continue
            for side, (replay, tally) in enumerate(zip(replays, tallies, strict=True)):
                for record in replay.feed(obj, line):
                    tally.observe(record)
                    if side == 0 and record["kind"] == "rejected" and \
                            record["reason"] in BAD_LINE_REASONS:
                        problems.append(f"{name}:{line}: {record['reason']}: "
                                        f"{record['message']}")
            if progress is not None and line % PROGRESS_EVERY == 0:
                progress.show(line)
        for replay, tally in zip(replays, tallies, strict=True):
            for record in replay.finish(end):
                tally.observe(record)
            # Windows still open at the end (the last hour, day and month) count as they
            # stand: a review compares what the history holds, not only closed periods.
            for record in replay.compliance.close_until(OPEN_WINDOWS_END, final=True):
                tally.observe(record)
    if progress is not None:
        progress.show(line, finished=True)
        sys.stderr.write("\n")
    outcome.lines = line
    outcome.seconds = time.monotonic() - started
    return outcome


class _Progress:
    """A progress bar on stderr (a terminal): share of the file read, lines, rate."""

    WIDTH = 30

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.started = time.monotonic()
        try:
            self.size = os.fstat(source.fileno()).st_size
        except (OSError, ValueError):
            self.size = 0

    def show(self, line: int, finished: bool = False) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        share = 1.0 if finished else 0.0
        if self.size and not finished:
            with contextlib.suppress(OSError, ValueError):
                share = min(1.0, self.source.tell() / self.size)
        filled = round(share * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled) if self.size or finished else \
            "?" * self.WIDTH
        sys.stderr.write(f"\rreviewing [{bar}] {100 * share:5.1f}% {line:>12,} lines "
                         f"{line / elapsed:>9,.0f} lines/s (two replays)")
        sys.stderr.flush()
