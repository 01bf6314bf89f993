"""The chaos kit's judge: what the monitor put on its topics against `slamon replay`, by id.

`slamon replay` (the same engine, offline, event time only) of exactly the events that
reached the events topic, sorted by `ts`, with `--as-of` = the end of the run, is the
truth. Compared by record id:

- `lost`: a breach, warning, outcome or retraction replay produces that is on no topic;
- `duplicated`: extra copies of one id (at-least-once allows them; counted, not failed);
- `unknown_id`: an id on a topic that replay does not produce (compliance included);
- `false_breach`: a breach replay does not produce at all: the monitor fired while the
  event that prevents it was on the topic (inputs are stamped on sending and acknowledged
  at once; see chaostraffic);
- `reissued`: a breach replay produces, sent again under another id (`...:breach:1`);
- `false_retraction`: a retraction of a breach that replay produces and never retracts;
- `good_rejected`: a dead letter for an event replay accepts.

Tickets whose follow-up events were acknowledged late (`Traffic.late_tickets`) are excused
from unknown and false counts and counted as `late_input`: the monitor could not know.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from tests.integration.chaoskit import CODE_ROOT, Seen
from tests.integration.chaostraffic import Sent

__all__ = ["Counts", "compare", "dlq_coverage", "replay"]

CORE_KINDS = ("breach", "warning", "outcome", "retraction")
_REVISION = re.compile(r":\d+$")


def replay(events: Iterable[dict], policies: Path, as_of_ms: int, lateness: float = 60.0,
           ) -> list[dict]:
    """`slamon replay` (a subprocess from CODE_ROOT) of `events` sorted by ts, as of `as_of_ms`."""
    ordered = sorted(events, key=lambda event: event["ts"])
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as source:
        for event in ordered:
            source.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "replay", "--policies", str(policies),
         "--events", source.name, "--as-of", str(as_of_ms), "--lateness", str(lateness)],
        cwd=CODE_ROOT, capture_output=True, timeout=300, check=False)
    Path(source.name).unlink()
    assert done.returncode == 0, f"slamon replay failed:\n{done.stderr.decode(errors='replace')}"
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


@dataclass
class Counts:
    """What the comparison found; `examples` holds a few ids of each problem."""

    lost: int = 0
    duplicated: int = 0
    unknown_id: int = 0
    false_breach: int = 0
    reissued: int = 0
    false_retraction: int = 0
    good_rejected: int = 0
    late_input: int = 0
    outputs: int = 0  # records with an id on the output topics
    expected: int = 0  # breach/warning/outcome/retraction ids replay produces
    examples: dict[str, list[str]] = field(default_factory=dict)

    def line(self) -> str:
        return (f"lost={self.lost} duplicated={self.duplicated} unknown_id={self.unknown_id} "
                f"false_breach={self.false_breach} reissued={self.reissued} "
                f"false_retraction={self.false_retraction} "
                f"good_rejected={self.good_rejected} late_input={self.late_input} "
                f"(outputs={self.outputs}, expected={self.expected})")

    def problems(self) -> list[str]:
        """Each count that must be zero and is not, with examples."""
        found = []
        for name in ("lost", "unknown_id", "false_breach", "reissued", "false_retraction",
                     "good_rejected"):
            value = getattr(self, name)
            if value:
                found.append(f"{name}={value} e.g. {self.examples.get(name, [])[:5]}")
        return found

    def as_dict(self) -> dict:
        data = asdict(self)
        data["examples"] = {k: v[:5] for k, v in self.examples.items()}
        return data


def _ticket_of(record_id: str) -> str:
    return record_id.split(":", 1)[0]


def compare(seen: Iterable[Seen], dlq_topic: str, sent: list[Sent], replayed: list[dict],
            late_tickets: set[str] = frozenset()) -> Counts:  # type: ignore[assignment]
    """Count what the monitor's topics (`seen`) hold against `replayed` (see the module doc)."""
    seen = list(seen)
    live = Counter(s.id for s in seen if s.topic != dlq_topic and s.id is not None)
    live_kind = {s.id: s.kind for s in seen if s.topic != dlq_topic and s.id is not None}
    truth = {r["id"]: r for r in replayed if isinstance(r.get("id"), str)}
    expected = {i for i, r in truth.items() if r["kind"] in CORE_KINDS}
    counts = Counts(outputs=sum(live.values()), expected=len(expected),
                    late_input=len(late_tickets))
    examples = counts.examples

    def note(name: str, value: str) -> None:
        examples.setdefault(name, []).append(value)

    for record_id in sorted(expected - set(live)):
        counts.lost += 1
        note("lost", record_id)
    counts.duplicated = sum(n - 1 for n in live.values() if n > 1)
    for record_id, n in live.items():
        if n > 1:
            note("duplicated", record_id)
    for record_id in sorted(set(live) - set(truth)):
        if _ticket_of(record_id) in late_tickets:
            continue
        counts.unknown_id += 1
        note("unknown_id", record_id)
        kind = live_kind[record_id]
        if kind == "breach":
            if _REVISION.sub("", record_id) in truth:
                counts.reissued += 1
                note("reissued", record_id)
            else:
                counts.false_breach += 1
                note("false_breach", record_id)
        elif kind == "retraction" and ":breach" in record_id:
            withdrawn = record_id.removesuffix(":retracted")
            if withdrawn in truth:  # a true breach withdrawn (a false one's is not counted)
                counts.false_retraction += 1
                note("false_retraction", record_id)
    _count_good_rejected(seen, dlq_topic, sent, replayed, counts)
    return counts


def _count_good_rejected(seen: list[Seen], dlq_topic: str, sent: list[Sent],
                         replayed: list[dict], counts: Counts) -> None:
    rejected_by_replay = {r.get("event_id") for r in replayed if r.get("kind") == "rejected"}
    good = {s.event["event_id"] for s in sent if s.good and s.event is not None}
    for letter in (s for s in seen if s.topic == dlq_topic):
        event_id = _dead_event_id(letter)
        if event_id in good and event_id not in rejected_by_replay:
            counts.good_rejected += 1
            reason = letter.headers.get("slamon-reason", b"?").decode(errors="replace")
            counts.examples.setdefault("good_rejected", []).append(f"{event_id} ({reason})")


def _by_source(sent: list[Sent]) -> dict[bytes, Sent]:
    return {f"{s.partition}:{s.offset}".encode(): s for s in sent if s.offset is not None}


def _dead_event_id(letter: Seen) -> str | None:
    """The event id a dead letter stands for: its value's `event_id`, when it has one."""
    record = letter.record
    if record is not None and isinstance(record.get("event_id"), str):
        return str(record["event_id"])
    return None


def dlq_coverage(seen: Iterable[Seen], dlq_topic: str, sent: list[Sent],
                 ) -> tuple[Counter[str], Counter[str], int]:
    """For the fuzz (bad) messages: (missing from the DLQ by category, reasons found, found).

    A dead letter is matched to its message by the `slamon-source` header
    (`<topic>:<partition>:<offset>`) and must carry a `slamon-reason`.
    """
    by_source = _by_source(sent)
    reasons: Counter[str] = Counter()
    covered: set[int] = set()
    for letter in seen:
        if letter.topic != dlq_topic:
            continue
        source = letter.headers.get("slamon-source", b"")
        where = source.rsplit(b":", 2)
        message = by_source.get(b":".join(where[-2:])) if len(where) == 3 else None
        if message is None or message.good:
            continue
        reason = letter.headers.get("slamon-reason", b"").decode(errors="replace")
        if reason:
            covered.add(id(message))
            reasons[reason] += 1
    missing = Counter(s.category for s in sent if not s.good and id(s) not in covered)
    return missing, reasons, len(covered)
