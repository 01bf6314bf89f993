"""Rewrite the golden files: `.venv/bin/python -m tests.golden.regenerate [CASE...]`.

Replays every case (or the named ones) through `slamon replay` and writes its
`expected.jsonl`; prints one line per case saying whether it changed. Run it after a
behaviour change you mean, then read `git diff tests/golden` before committing: the diff
is the change in slamon's output. `--check` writes nothing and exits 1 when a file would
change (what the test asserts).
"""

from __future__ import annotations

import argparse
import sys

from tests.golden.cases import Case, all_cases, replay_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden.regenerate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE", help="case folder names (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a golden file would change")
    args = parser.parse_args(argv)
    known = {case.name: case for case in all_cases()}
    unknown = [name for name in args.cases if name not in known]
    if unknown:
        parser.error(f"no such case: {', '.join(unknown)} (known: {', '.join(known)})")
    selected = [known[name] for name in args.cases] if args.cases else list(known.values())
    return max((_one(case, args.check) for case in selected), default=0)


def _one(case: Case, check: bool) -> int:
    result = replay_case(case)
    if result.status != 0:
        print(f"{case.name}: slamon replay exited {result.status}:\n{result.stderr}",
              file=sys.stderr)
        return 2
    before = case.expected.read_bytes() if case.expected.exists() else None
    lines = result.records.count(b"\n")
    if before == result.records:
        print(f"{case.name}: {lines} records, unchanged")
        return 0
    if check:
        print(f"{case.name}: {lines} records, would change", file=sys.stderr)
        return 1
    case.expected.write_bytes(result.records)
    print(f"{case.name}: {lines} records, {'written' if before is None else 'CHANGED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
