"""`slamon check-config FILE...`: validate policy files and report every problem.

Prints `FILE: OK (version 7, 2 calendars, 2 customers)` per valid file on
stdout; for an invalid file, every problem (`file:line: path: reason`) on
stderr. Exit status: 0 all valid, 1 some file invalid, 2 some file unreadable.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["HELP", "add_arguments", "run"]

HELP = "check SLA policy files and print every problem with its file and line"

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="policy file(s) (YAML)")


def run(args: argparse.Namespace) -> int:
    return max(check_file(path) for path in args.files)


def check_file(path: str) -> int:
    """Check one policy file, print the verdict, and return its exit status."""
    from agents.policyfile import load_policies
    from sla.errors import PolicyError

    try:
        policies = load_policies(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"{path}: cannot read: {reason}", file=sys.stderr)
        return EXIT_UNREADABLE
    except UnicodeDecodeError as exc:
        print(f"{path}: cannot read: not UTF-8 text ({exc.reason})", file=sys.stderr)
        return EXIT_UNREADABLE
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: invalid ({_count(len(exc.problems), 'problem')})", file=sys.stderr)
        return EXIT_INVALID
    calendars = len(policies.calendars) - 1  # the built-in 24x7 is not the file's
    summary = (
        f"version {policies.version}, {_count(calendars, 'calendar')}, "
        f"{_count(len(policies.customers), 'customer')}"
    )
    print(f"{path}: OK ({summary})")
    return EXIT_OK


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
