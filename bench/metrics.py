"""Benchmark: CPU per output record of the worker's metrics, one by one against per batch.

    .venv/bin/python bench/metrics.py
    .venv/bin/python bench/metrics.py --events bench/out/events-200000-seed7-v1.jsonl

Runs `slamon replay` on an events file (by default the 20,000-event one `bench/replay.py
--events 20000` generates under bench/out/) and keeps the records a clock worker would
observe at commit (breaches, warnings, outcomes, retractions, surveys; the compliance
records are observed by the compliance agent, one gauge each). Then, in one run, on a fresh
`MonitorMetrics` with the policy's duration buckets each time:

- per_record: `observe(record)` on each record (what the worker did before batching);
- batch_N: `observe_batch` on consecutive slices of N records (what ClockProcessor.commit
  does with a batch's records).

Each path first sees every record once under another id, so its metric children exist (as
on a worker that has been running) and the timed pass is the steady state; the paths take
turns --repeat times and each keeps its best CPU time (process_time). The paths'
expositions are checked to be the same (exemplar timestamps aside). Prints JSON on stdout
and one summary line on stderr; figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from agents.app import policy_targets
from agents.metrics import MonitorMetrics
from agents.policyfile import load_policies

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EVENTS = REPO / "bench" / "out" / "events-20000-seed7-v1.jsonl"
CLOCK_KINDS = ("breach", "warning", "outcome", "retraction", "survey")

Record = dict[str, Any]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", default=str(DEFAULT_EVENTS), help="events JSON-lines file")
    parser.add_argument("--policies", default=str(REPO / "config" / "policies.yaml"))
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10, 100, 1000],
                        help="batch sizes (records per observe_batch)")
    parser.add_argument("--repeat", type=int, default=15, help="timed passes per path (best)")
    args = parser.parse_args(argv)
    events = Path(args.events)
    if not events.exists():
        print(f"bench/metrics.py: {events} does not exist; make it with "
              "`.venv/bin/python bench/replay.py --events 20000 --no-engine`", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    records = replay_records(events, args.policies)
    targets = policy_targets(load_policies(args.policies))
    paths: dict[str, Callable[[MonitorMetrics, Sequence[Record]], None]] = {
        "per_record": one_by_one}
    for size in args.batch:
        paths[f"batch_{size}"] = per_batch(size)
    figures: dict[str, Any] = {
        "events_file": str(events),
        "records": len(records),
        "kinds": dict(Counter(rec["kind"] for rec in records)),
        "repeat": args.repeat,
    }
    best = dict.fromkeys(paths, float("inf"))
    expositions = {}
    warm = [{**rec, "id": f"{rec.get('id')}#warm"} for rec in records]
    for _ in range(args.repeat):  # the paths take turns, so a busy moment hits them alike
        for name, path in paths.items():
            cpu, expositions[name] = measure(path, warm, records, targets)
            best[name] = min(best[name], cpu)
    for name, cpu in best.items():
        figures[name] = {"cpu_s": round(cpu, 4),
                         "cpu_us_per_record": round(cpu / len(records) * 1e6, 3)}
    base = figures["per_record"]["cpu_us_per_record"]
    for name in paths:
        figures[name]["speedup_vs_per_record"] = round(base / figures[name]["cpu_us_per_record"],
                                                       2)
    figures["same_exposition"] = all(e == expositions["per_record"] for e in expositions.values())
    figures["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(figures, indent=2))
    print(summary_line(figures, list(paths)), file=sys.stderr)
    return 0 if figures["same_exposition"] else 1


def replay_records(events: Path, policies: str) -> list[Record]:
    """The records `slamon replay` emits for the file, those a clock worker observes."""
    out = subprocess.run([sys.executable, "-m", "agents.cli", "replay", "--policies", policies,
                          "--events", str(events)], capture_output=True, check=True, cwd=REPO)
    records = [orjson.loads(line) for line in out.stdout.splitlines() if line]
    return [rec for rec in records if rec.get("kind") in CLOCK_KINDS]


def one_by_one(metrics: MonitorMetrics, records: Sequence[Record]) -> None:
    for rec in records:
        metrics.observe(rec)


def per_batch(size: int) -> Callable[[MonitorMetrics, Sequence[Record]], None]:
    def run(metrics: MonitorMetrics, records: Sequence[Record]) -> None:
        for start in range(0, len(records), size):
            metrics.observe_batch(records[start:start + size])
    return run


def measure(path: Callable[[MonitorMetrics, Sequence[Record]], None], warm: list[Record],
            records: list[Record], targets: dict[str, list[float]]) -> tuple[float, list[tuple]]:
    """CPU seconds of one timed pass over `records` on fresh metrics that saw `warm` first,
    and the exposition after it."""
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry, tuple(targets), targets)
    path(metrics, warm)
    gc.collect()
    started = time.process_time()
    path(metrics, records)
    cpu = time.process_time() - started
    return cpu, exposition_samples(registry)


def exposition_samples(registry: CollectorRegistry) -> list[tuple]:
    """Samples in order with exemplar labels and values (no timestamps or creation times)."""
    return [(s.name, s.labels, s.value,
             None if s.exemplar is None else (s.exemplar.labels, s.exemplar.value))
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")]


def summary_line(figures: dict[str, Any], names: list[str]) -> str:
    parts = [f"{name} {figures[name]['cpu_us_per_record']:.2f} us/record"
             + ("" if name == "per_record" else f" (x{figures[name]['speedup_vs_per_record']})")
             for name in names]
    same = "same exposition" if figures["same_exposition"] else "EXPOSITIONS DIFFER"
    return f"metrics: {figures['records']} records; " + ", ".join(parts) + f"; {same}"


if __name__ == "__main__":
    sys.exit(main())
