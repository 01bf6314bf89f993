"""`slamon worker`: run the monitor (the Faust app from `agents.app`) against Kafka.

Settings come from `--config` (default config/slamon.yaml) and `SLAMON_*` variables.
The worker runs until SIGINT or SIGTERM, then shuts down cleanly (offsets committed,
tables flushed). Faust is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys

from agents.settings import add_config_argument, settings_from_args

HELP = "run the monitor: consume service events from Kafka and keep SLA clocks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--loglevel",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="log level (default: the setting log_level / SLAMON_LOG_LEVEL)",
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    import faust

    from agents.app import create_app
    from agents.topiccheck import startup_problems
    from sla.errors import PolicyError

    problems = startup_problems(settings)
    if problems:
        print("slamon worker: " + "\n  ".join(["refusing to start:", *problems]), file=sys.stderr)
        return 2

    try:
        app = create_app(settings)
    except PolicyError as exc:
        print(f"slamon worker: invalid policies in {settings.policies}:", file=sys.stderr)
        print("\n".join(f"  {problem}" for problem in exc.problems), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"slamon worker: cannot read policies: {exc}", file=sys.stderr)
        return 2
    worker = faust.Worker(app, loglevel=args.loglevel or settings.log_level)
    # Faust's terminal spinner sets the root logger to DEBUG at level warning and above, so
    # every library debug call builds a record: a service has no use for it.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0
