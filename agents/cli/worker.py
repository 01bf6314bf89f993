"""`slamon worker`: run the monitor (the Faust app from `agents.app`) against Kafka.

Settings come from `--config` (default config/slamon.yaml) and `SLAMON_*` variables.
The worker runs until SIGINT or SIGTERM, then shuts down cleanly (offsets committed,
tables flushed). SIGHUP reloads the policy file, from the moment the command starts: one
that arrives before the worker is built is remembered and served once it is (it would
otherwise end the process). Faust is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from agents.settings import add_config_argument, settings_from_args

if TYPE_CHECKING:
    import asyncio

HELP = "run the monitor: consume service events from Kafka and keep SLA clocks"

# Garbage collection thresholds: Python's defaults for the young generations; a full
# collection once per 10,000 collections of the middle one instead of 10. A worker keeps
# every recently used ticket's decoded state (up to 200,000 of them, agents/processor.py),
# which a full collection traverses for ~0.2 s each time; with the defaults that came ~24
# times per 100,000 events, 23-29% of the worker's CPU (measured with gc.callbacks in
# bench/live.py's worker), and found ~50 cyclic objects each. Once per 10,000 is about every
# 4 million events: the cyclic garbage waiting for it stays in the tens of thousands of
# objects, and the pause it costs comes rarely.
GC_THRESHOLDS = (700, 10, 10_000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--loglevel",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="log level (default: the setting log_level / SLAMON_LOG_LEVEL)",
    )


class HangupRelay:
    """SIGHUP's handler from the command's first line: counts hangups until `connect`
    names what to do with them, then does it for each (and once for those counted)."""

    def __init__(self) -> None:
        self.pending = 0
        self.target: Callable[[], None] | None = None
        signal.signal(signal.SIGHUP, self._on_hangup)

    def _on_hangup(self, signum: int, frame: FrameType | None) -> None:
        if self.target is None:
            self.pending += 1
        else:
            self.target()

    def connect(self, target: Callable[[], None]) -> None:
        self.target = target  # from here on the handler calls it; `pending` no longer moves
        if self.pending:
            self.pending = 0
            target()


def run(args: argparse.Namespace) -> int:
    hangups = HangupRelay()  # as early as possible: the default action of SIGHUP is to exit
    settings = settings_from_args(args)

    from agents.app import create_app, create_worker
    from agents.kafkaclients import KafkaAccessError, check_access
    from agents.topiccheck import startup_problems
    from sla.errors import PolicyError

    try:  # local files first: building the app reads the policies, and needs no broker
        app = create_app(settings)
    except PolicyError as exc:
        print(f"slamon worker: invalid policies in {settings.policies}:", file=sys.stderr)
        print("\n".join(f"  {problem}" for problem in exc.problems), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"slamon worker: cannot read policies: {exc}", file=sys.stderr)
        return 2

    try:
        check_access(settings)
    except KafkaAccessError as exc:
        if exc.refused:  # wrong credentials, certificate or protocol: retrying cannot help
            print(f"slamon worker: refusing to start: {exc}", file=sys.stderr)
            return 2
        print(f"slamon worker: {exc}; starting anyway, the worker waits for it",
              file=sys.stderr)
    problems = startup_problems(settings)
    if problems:
        print("slamon worker: " + "\n  ".join(["refusing to start:", *problems]), file=sys.stderr)
        return 2
    # The clock agent waits for the stored policy versions: read them while Faust starts.
    app.slamon.history.start_reading()  # type: ignore[attr-defined]
    worker = create_worker(app, args.loglevel or settings.log_level)
    hangups.connect(_reload_on(worker.loop, app.slamon.watcher.reload))  # type: ignore[attr-defined]
    # What exists now (modules, the app) lives as long as the process: leave it out of every
    # later garbage collection. Full ones still come: rarely by GC_THRESHOLDS, and once per
    # table at a rebalance that revokes partitions (agents/tables.py, RocksDBStore); these
    # ~80k objects took ~0.2 s of each on a busy machine.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0


def _reload_on(loop: asyncio.AbstractEventLoop, reload: Callable[[], object],
               ) -> Callable[[], None]:
    """Run `reload` on the worker's event loop (a signal handler must not do the work)."""

    def schedule() -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the worker is stopping
            loop.call_soon_threadsafe(reload)

    return schedule
