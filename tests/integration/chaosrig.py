"""The chaos kit's rig: one deployment under test and the result of a scenario.

A `Rig` holds a policy file, the workers of one deployment (same app id and topic prefix,
each with its own data dir and web port), the traffic and the outside reader; `finish`
ends the traffic, waits until nothing more is due, reads everything and compares it with
`slamon replay` (chaoscompare). A `Result` carries the counts, what the scenario measured
and `problems`: every miss of issue 9's targets, in words.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tests.integration.chaoscompare import Counts, compare, replay
from tests.integration.chaoskit import ChaosWorker, OutsideReader, Seen, chaos_env, free_port
from tests.integration.chaostraffic import Sent, Traffic, due_ages, policy_text

__all__ = ["LIMITS", "OUTPUTS", "RESUME_LIMIT", "RESUME_WAIT", "Result", "Rig", "timeline"]

RESUME_LIMIT = 10.0  # issue 9: processing resumes within 10 s of a kill -9
# The limit a run checks: the target above in bench/chaos.py; the test suite checks a guard
# (test_chaos.py), since restart time on a shared 2-core CI box is noise, not behaviour.
LIMITS = {"resume": RESUME_LIMIT}
RESUME_WAIT = 75.0  # how long a scenario waits to measure a slower resume
OUTPUTS = ("breaches", "warnings", "outcomes", "compliance", "events.dlq")


@dataclass
class Result:
    """One scenario's outcome: the comparison's counts, what it measured, every problem."""

    name: str
    counts: Counts | None = None
    measured: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        counts = self.counts.line() if self.counts is not None else "(no comparison)"
        measured = " ".join(f"{k}={v}" for k, v in self.measured.items())
        verdict = "ok" if not self.problems else "PROBLEMS: " + "; ".join(self.problems)
        return f"chaos {self.name}: {counts}\n  measured: {measured}\n  {verdict}"

    def as_dict(self) -> dict:
        return {"name": self.name, "counts": self.counts and self.counts.as_dict(),
                "measured": self.measured, "problems": self.problems}


class Rig:
    """One deployment under test: policies, workers (same app id and prefix), traffic, reader."""

    def __init__(self, bootstrap: str, work: Path, name: str, partitions: int = 2,
                 rate: float = 10.0, wrong_key_share: float = 0.0, policy: str | None = None,
                 **env: str) -> None:
        unique = uuid.uuid4().hex[:8]
        self.bootstrap, self.work, self.name = bootstrap, work, name
        self.app_id, self.prefix = f"chaos-{name}-{unique}", f"chaos.{name}.{unique}."
        self.partitions = partitions
        policy = policy or policy_text(version=1)  # the workers' first policy file
        self.policies = work / "policies.yaml"
        self.policies.write_text(policy)
        self.truth_policies = work / "policies-v1.yaml"  # what replay judges by
        self.truth_policies.write_text(policy)
        self.env = env | {"SLAMON_PARTITIONS": str(partitions)}
        self.workers: list[ChaosWorker] = []
        self.traffic = Traffic(bootstrap, self.prefix + "events", partitions, rate=rate,
                               tag=name[:3] + unique[:4], wrong_key_share=wrong_key_share)
        self.reader: OutsideReader | None = None
        self.replayed: list[dict] = []  # replay's records, once `finish` ran
        self.result = Result(name)

    @property
    def dlq(self) -> str:
        return self.prefix + "events.dlq"

    def worker(self) -> ChaosWorker:
        index = len(self.workers)
        env = chaos_env(self.bootstrap, self.app_id, self.prefix, self.policies,
                        self.work / f"data-{index}", free_port(), **self.env)
        worker = ChaosWorker(env, self.work / f"worker-{index}.log", name=f"worker-{index}")
        self.workers.append(worker)
        return worker

    def read(self) -> OutsideReader:
        """The outside reader of every output topic (they exist once a worker was ready)."""
        if self.reader is None:
            self.reader = OutsideReader(self.bootstrap, [self.prefix + t for t in OUTPUTS])
        return self.reader

    def resume_time(self, since: float, label: str, wait: float = RESUME_WAIT) -> float | None:
        """Probe every partition; seconds from `since` until the worker had sent each
        probe's outcome (its Kafka timestamp, set when the worker's producer sent it);
        None when not all arrived within `wait`."""
        reader = self.read()
        probes = self.traffic.probe(label)
        keys = [("outcome", "response", ticket) for ticket in probes]
        reader.until(lambda _: all(k in reader.first for k in keys), wait)
        if not all(k in reader.first for k in keys):
            return None
        return round(max(reader.first[k][1] or reader.first[k][0] for k in keys) - since, 2)

    def check_resume(self, resume: float | None, what: str) -> None:
        limit = LIMITS["resume"]
        if resume is None or resume > limit:
            shown = f"> {RESUME_WAIT:.0f}" if resume is None else f"{resume:.1f}"
            self.result.problems.append(f"processing resumed {shown} s after {what} "
                                        f"(limit {limit:.0f} s)")

    def finish(self, quiet_after: float = 0.0) -> Result:
        """End the traffic, wait until nothing more is due (of the traffic, and before
        `quiet_after`, a time.time() for input sent otherwise), read everything, compare."""
        self.traffic.stop()
        time.sleep(max(0.0, max(self.traffic.quiet_after, quiet_after) + 1.0 - time.time()))
        reader = self.read()
        reader.settle(quiet=3.0, timeout=90.0)
        as_of = int(time.time() * 1000)
        replayed = replay(self.traffic.good_events(), self.truth_policies, as_of)
        counts = compare(reader.seen, self.dlq, self.traffic.sent, replayed,
                         self.traffic.late_tickets())
        self._keep(replayed, as_of)
        self.replayed = replayed
        self.result.counts = counts
        self.result.problems[:0] = counts.problems()
        puzzling = [i for name in ("unknown_id", "lost") for i in counts.examples.get(name, [])]
        if puzzling:  # what a CI log needs to tell late input from a monitor's mistake
            self.result.problems.append(timeline(puzzling[0].split(":", 1)[0],
                                                 self.traffic.sent, reader.seen))
        failed = [s for s in self.traffic.sent if s.error]
        if failed:
            self.result.problems.append(f"{len(failed)} input messages were not delivered "
                                        f"(harness): {failed[0].error}")
        return self.result

    def _keep(self, replayed: list[dict], as_of: int) -> None:
        """Write what was sent, seen and replayed under `work`, to look into a failure."""
        dumps = orjson.dumps
        with open(self.work / "sent.jsonl", "wb") as out:
            for s in self.traffic.sent:
                out.write(dumps({"category": s.category, "good": s.good, "sent_at": s.sent_at,
                                 "acked_at": s.acked_at, "partition": s.partition,
                                 "offset": s.offset, "error": s.error, "event": s.event,
                                 "bytes": len(s.value)}) + b"\n")
        with open(self.work / "seen.jsonl", "wb") as out:
            for seen in self.read().seen:
                out.write(dumps({"topic": seen.topic, "partition": seen.partition,
                                 "offset": seen.offset, "arrived": seen.arrived,
                                 "headers": {k: v.decode(errors="replace")[:200]
                                             for k, v in seen.headers.items()},
                                 "record": seen.record,
                                 "bytes": len(seen.value or b"")}) + b"\n")
        with open(self.work / "replay.jsonl", "wb") as out:
            out.write(dumps({"as_of": as_of}) + b"\n")
            for record in replayed:
                out.write(dumps(record) + b"\n")

    def close(self) -> None:
        for worker in self.workers:
            worker.terminate(timeout=30)
        if self.reader is not None:
            self.reader.close()
        self.traffic.close()


def timeline(ticket: str, sent: list[Sent], seen: list[Seen]) -> str:
    """One ticket's story in seconds after its opening: each event sent (its `ts`, how long
    its acknowledgement took, how far the next due instant of SHORT_POLICY's clocks was)
    and each record the monitor sent about it (its Kafka timestamp)."""
    events = [s for s in sent if s.event is not None and s.event.get("ticket_id") == ticket]
    if not events:
        return f"timeline of {ticket}: no event of it was sent"
    opened = events[0].event["ts"] / 1000  # type: ignore[index]
    steps: list[str] = []
    so_far: list[tuple[float, str]] = []
    for s in events:
        assert s.event is not None
        age = s.event["ts"] / 1000 - opened
        ahead = [due - age for due in due_ages(so_far) if due >= age] if so_far else []
        ack = "never acked" if s.acked_at is None else f"ack {s.acked_at - opened - age:.3f}"
        margin = f", next due +{min(ahead):.3f}" if ahead else ""
        steps.append(f"{s.event['type']} {age:+.3f} ({ack}{margin})")
        so_far.append((age, s.event["type"]))
    records = sorted((r.created or r.arrived, r.id) for r in seen
                     if r.id is not None and r.id.startswith(ticket + ":"))
    shown = [f"{record_id} {when - opened:+.3f}" for when, record_id in records]
    return (f"timeline of {ticket}: sent " + ", ".join(steps)
            + "; the monitor sent " + (", ".join(shown) or "nothing"))
