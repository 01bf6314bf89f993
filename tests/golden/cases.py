"""Golden replay cases: `tests/golden/<case>/` in, the records of `slamon replay` out.

A case is a folder with

- `events.jsonl`: the input, one event per line (bad lines included on purpose);
- `policies.yaml`, or an `args` file whose options name another policy file
  (`--policies config/policies.yaml`);
- `args` (optional): more `slamon replay` options, shell words, `#` comments, e.g.
  `--as-of 2026-11-03T00:00:00Z`; a relative path in it is taken from the repository root;
- `expected.jsonl`: what the replay writes, byte for byte, made by `regenerate`.

`replay_case` runs the real command line (`agents.cli.main`) in this process, so the
test and the regenerate command cannot drift apart.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agents.cli import main

__all__ = ["HERE", "ROOT", "Case", "all_cases", "replay_case"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass(frozen=True, slots=True)
class Case:
    """One golden case folder."""

    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def events(self) -> Path:
        return self.folder / "events.jsonl"

    @property
    def expected(self) -> Path:
        return self.folder / "expected.jsonl"

    def options(self) -> list[str]:
        """The `slamon replay` options of the case, without --events and --output."""
        args_file = self.folder / "args"
        words = shlex.split(args_file.read_text(encoding="utf-8"), comments=True) \
            if args_file.is_file() else []
        if "--policies" not in words:
            words = ["--policies", str(self.folder / "policies.yaml"), *words]
        return words


@dataclass(frozen=True, slots=True)
class Result:
    """What one replay of a case gave: exit status, the records' bytes, stderr."""

    status: int
    records: bytes
    stderr: str


def all_cases() -> list[Case]:
    """Every case folder under tests/golden/, by name."""
    return [Case(path.parent) for path in sorted(HERE.glob("*/events.jsonl"))]


def replay_case(case: Case) -> Result:
    """`slamon replay` of the case, from the repository root, through `agents.cli.main`."""
    with tempfile.TemporaryDirectory(prefix=f"golden-{case.name}-") as work:
        output = Path(work) / "records.jsonl"
        argv = ["replay", *case.options(), "--events", str(case.events), "--output", str(output)]
        stderr = io.StringIO()
        with contextlib.chdir(ROOT), contextlib.redirect_stderr(stderr):
            status = main(argv)
        records = output.read_bytes() if output.exists() else b""
    return Result(status, records, stderr.getvalue())
