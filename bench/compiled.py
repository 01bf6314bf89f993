"""Benchmark: the mypyc-compiled engine against the pure-Python one, on the same events.

    SLAMON_COMPILE=1 .venv/bin/pip wheel --no-deps -w /tmp/cwheel .
    python3 -m venv /tmp/cvenv && /tmp/cvenv/bin/pip install /tmp/cwheel/slamon-*.whl
    .venv/bin/python bench/compiled.py --compiled /tmp/cvenv/bin/python

Two interpreters, each with slamon installed: `--pure` (default: this one, the dev venv)
and `--compiled` (a venv with the SLAMON_COMPILE=1 wheel; README, "Compiled engine").
Each is refused unless its `sla.engine` is what it claims (a .py file or an extension
module). Runs alternate between them, `--rounds` times each, and the best run counts:

- engine: decode + `Replay.feed` + `finish` in a child process, CPU seconds of the loop
  (`time.process_time`, cyclic collector paused as `slamon replay` pauses it);
- command: `slamon replay` (`python -m agents.cli replay`) writing to a file, the child's
  CPU seconds (getrusage) and wall time, start-up and policy loading included; the two
  outputs must be byte-identical or the benchmark fails.

Every child runs in an empty temporary directory, so the working tree's sla/ cannot shadow
the installed one. Prints JSON, then one summary line on stderr, with the load average
before and after (other work on the machine inflates wall time more than CPU time).
The events default to bench/replay.py's 200,000-event file (`bench/replay.py --events 200000`).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EVENTS = REPO / "bench" / "out" / "events-200000-seed7-v1.jsonl"

# Run by each interpreter: where its sla.engine comes from, then the in-process replay.
ENGINE_RUN = """
import gc, json, sys, time
from pathlib import Path
import orjson
import sla.engine
from agents.policyfile import load_policies
from sla.engine import Engine
from sla.replay import Replay
events, policies = Path(sys.argv[1]), Path(sys.argv[2])
replay = Replay(Engine(load_policies(policies)))
loads, feed = orjson.loads, replay.feed
lines = events.read_bytes().splitlines()
records = 0
gc.disable()
started = time.process_time()
for number, raw in enumerate(lines, 1):
    records += len(feed(loads(raw), number))
records += len(replay.finish())
cpu = time.process_time() - started
print(json.dumps({"engine_file": sla.engine.__file__, "events": len(lines),
                  "records": records, "cpu_seconds": cpu}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compiled", required=True, help="python of a SLAMON_COMPILE=1 venv")
    parser.add_argument("--pure", default=sys.executable, help="python of a pure-Python venv")
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS)
    parser.add_argument("--policies", type=Path, default=REPO / "config" / "policies.yaml")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.events.is_file():
        parser.error(f"no events file {args.events}: make it with "
                     ".venv/bin/python bench/replay.py --events 200000 --no-engine")
    load_before = os.getloadavg()
    pythons = {"pure": args.pure, "compiled": args.compiled}
    engine: dict[str, list[dict]] = {name: [] for name in pythons}
    command: dict[str, list[dict]] = {name: [] for name in pythons}
    with tempfile.TemporaryDirectory(prefix="slamon-bench-compiled-") as scratch:
        work = Path(scratch)
        for _ in range(args.rounds):
            for name, python in pythons.items():
                engine[name].append(run_engine(python, args.events, args.policies, work))
                command[name].append(run_command(python, args.events, args.policies,
                                                 work / f"{name}.jsonl", work))
        identical = filecmp.cmp(work / "pure.jsonl", work / "compiled.jsonl", shallow=False)
    for name, python in pythons.items():
        engine_file = engine[name][0]["engine_file"]
        if engine_file.endswith(".py") != (name == "pure"):
            raise SystemExit(f"{python}: sla.engine is {engine_file}, not the {name} engine")
    figures = {
        "events_file": str(args.events),
        "events": engine["pure"][0]["events"],
        "engine_in_process": best_of(engine),
        "slamon_replay": best_of(command),
        "output_identical": identical,
        "pythons": pythons,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
    }
    print(json.dumps(figures, indent=2))
    print(summary_line(figures), file=sys.stderr)
    return 0 if identical else 1


def run_engine(python: str, events: Path, policies: Path, cwd: Path) -> dict:
    done = subprocess.run([python, "-c", ENGINE_RUN, str(events), str(policies)], cwd=cwd,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{python}: the in-process replay failed:\n{done.stderr[-2000:]}")
    result: dict = json.loads(done.stdout)
    return result


def run_command(python: str, events: Path, policies: Path, output: Path, cwd: Path) -> dict:
    argv = [python, "-m", "agents.cli", "replay", "--policies", str(policies),
            "--events", str(events), "--output", str(output)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"cpu_seconds": cpu, "wall_seconds": wall}


def best_of(runs: dict[str, list[dict]]) -> dict:
    """Per interpreter the run with the least CPU, its events per CPU second, the speed-up."""
    best = {name: min(found, key=lambda run: run["cpu_seconds"]) for name, found in runs.items()}
    out: dict = {}
    for name, run in best.items():
        out[name] = {key: round(value, 3) for key, value in run.items()
                     if key in ("cpu_seconds", "wall_seconds")}
        out[name]["all_cpu_seconds"] = [round(r["cpu_seconds"], 3) for r in runs[name]]
    out["cpu_speedup"] = round(best["pure"]["cpu_seconds"] / best["compiled"]["cpu_seconds"], 2)
    return out


def summary_line(figures: dict) -> str:
    n = figures["events"]
    parts = []
    for what in ("engine_in_process", "slamon_replay"):
        found = figures[what]
        pure, compiled = found["pure"]["cpu_seconds"], found["compiled"]["cpu_seconds"]
        parts.append(f"{what}: {n / pure:,.0f} -> {n / compiled:,.0f} events per CPU second "
                     f"({found['cpu_speedup']}x)")
    same = "identical" if figures["output_identical"] else "DIFFERENT"
    load = figures["machine"]["load_average_after"][0]
    return f"compiled vs pure, {n:,} events: " + "; ".join(parts) + \
        f"; output {same}; load {load}"


if __name__ == "__main__":
    sys.exit(main())
