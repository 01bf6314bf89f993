"""Rewrite tests/golden/ingest/<desk>/events.jsonl and expected.jsonl from the real commands.

    .venv/bin/python -m tests.golden.ingest.regenerate [DESK ...] [--check]

`--check` writes nothing and exits 1 if any file would change. Review `git diff
tests/golden/ingest` after regenerating: every changed line is a changed output.
"""

from __future__ import annotations

import argparse
import sys

from tests.golden.ingest.cases import DESKS, Case, replay_events, translate_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden.ingest.regenerate")
    parser.add_argument("desks", nargs="*", metavar="DESK", help=f"one of {', '.join(DESKS)}")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.desks) - set(DESKS))
    if unknown:
        parser.error(f"unknown desk(s): {', '.join(unknown)}")
    changed = []
    for desk in args.desks or DESKS:
        case = Case(desk)
        events, _ = translate_case(case)
        records = replay_events(events)
        for path, data in ((case.events, events), (case.expected, records)):
            if not path.exists() or path.read_bytes() != data:
                changed.append(str(path))
                if not args.check:
                    path.write_bytes(data)
    for path in changed:
        print(("would change: " if args.check else "wrote: ") + path)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
