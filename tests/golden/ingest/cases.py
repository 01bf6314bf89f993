"""Ingest golden cases: a desk's recorded-shape ticket life, translated, then replayed.

    tests/golden/ingest/<desk>/
      payloads.jsonl   deliveries as the vendor documents them (bodies, or envelopes with
                       the headers that carry delivery ids and event names); a redelivery,
                       an event about something else and one untranslatable payload each
      sources.yaml     the case's source, named after the desk
      events.jsonl     what `slamon translate` writes: made by `regenerate`, never by hand
      expected.jsonl   what `slamon replay` makes of those events (surveys included: they
                       count in the compliance windows), with tests/golden/ingest/policies.yaml

Both steps run the real command line (`agents.cli.main`) in this process.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agents.cli import main

__all__ = ["HERE", "ROOT", "DESKS", "Case", "translate_case", "replay_events"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
POLICIES = HERE / "policies.yaml"
AS_OF = "2026-03-04T00:00:00Z"
DESKS = ("jira", "zendesk", "servicenow", "freshservice", "zammad", "github", "gitlab", "generic")


@dataclass(frozen=True, slots=True)
class Case:
    desk: str

    @property
    def folder(self) -> Path:
        return HERE / self.desk

    @property
    def events(self) -> Path:
        return self.folder / "events.jsonl"

    @property
    def expected(self) -> Path:
        return self.folder / "expected.jsonl"


def _run(argv: list[str]) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stderr(stderr):
        status = main(argv)
    return status, stderr.getvalue()


def translate_case(case: Case) -> tuple[bytes, str]:
    """(events, stderr) of `slamon translate` over the case's payloads."""
    with tempfile.TemporaryDirectory(prefix=f"ingest-{case.desk}-") as work:
        output = Path(work) / "events.jsonl"
        status, stderr = _run(["translate", "--sources", str(case.folder / "sources.yaml"),
                               "--source", case.desk, str(case.folder / "payloads.jsonl"),
                               "--output", str(output)])
        assert status == 0, stderr
        return output.read_bytes(), stderr


def replay_events(events: bytes) -> bytes:
    """The records `slamon replay` makes of `events`."""
    with tempfile.TemporaryDirectory(prefix="ingest-replay-") as work:
        source, output = Path(work) / "events.jsonl", Path(work) / "records.jsonl"
        source.write_bytes(events)
        status, stderr = _run(["replay", "--policies", str(POLICIES), "--events", str(source),
                               "--as-of", AS_OF, "--output", str(output)])
        assert status == 0, stderr
        return output.read_bytes()
