"""Benchmark: instructions per event of the replay paths, counted by cachegrind.

    .venv/bin/python bench/instructions.py                               # 50,000 events
    .venv/bin/python bench/instructions.py --python /tmp/cvenv/bin/python  # a compiled wheel's

The machines these run on change speed by 10-30% from one minute to the next, so a change
worth 2-5% cannot be seen in times, however many runs alternate. Under valgrind's
cachegrind a run executes the same instructions every time (hash seed fixed): a change
shows in its instruction count, to within a few instructions. Instructions are not time
(cache misses, branch mispredictions, system calls are not in them), so confirm a gain found
here with bench/replay.py or bench/live.py before quoting it as speed.

Each workload runs in a fresh interpreter (--python's) under cachegrind, on the first
--events lines of bench/replay.py's file:

- startup: the imports and the reading of the lines, nothing else; subtracted from the
  others, whose figures are then per event of their own work;
- baseline: `orjson.loads` of every line;
- replay: one process's replay, as `slamon replay` runs it (output encoded, not written);
- sharded: `slamon replay --jobs 2`'s reader and two shards in one process, the work and
  the answers pickled both ways as through the pipes (no processes, no pipes: their system
  time is not counted).

Each run's output is hashed, outside the count: the replay and the sharded run must agree.
Prints JSON on stdout and one summary line on stderr; nothing asserted. Needs valgrind
(Debian: valgrind).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replay import prepare_file

REPO = Path(__file__).resolve().parent.parent

# Each workload reads LINES (a file of the lines to work on), builds what it needs from
# POLICIES, and writes its output, if any, to OUTPUT in one call: hashed here, outside the
# count (SHA-256 in the workload cost ~9,000 instructions per event of the replay's).
_PRELUDE = """
import functools, gc, io, pickle, sys
from collections import deque
import orjson
from agents.cli.replay import _replay_stream
from agents.policyfile import load_policies
from agents.replayjobs import ShardedReplay, ShardWorker
from sla.engine import Engine
from sla.replay import Replay
gc.disable()  # as `slamon replay` runs
policies = load_policies(sys.argv[2])
lines = open(sys.argv[1], "rb").readlines()
"""

WORKLOADS = {
    "startup": "",
    "baseline": """
loads = orjson.loads
for line in lines:
    loads(line)
""",
    "replay": """
out = io.BytesIO()
_replay_stream(Replay(Engine(policies), None), io.BytesIO(b"".join(lines)), out, None)
open(sys.argv[3], "wb").write(out.getvalue())
""",
    "sharded": """
class PickledShard:
    def __init__(self):
        self.worker, self.answers = ShardWorker(Engine(policies), None), deque()
    def submit(self, work):
        work = pickle.loads(pickle.dumps(work, protocol=5))
        self.answers.append(pickle.dumps(self.worker.handle(work), protocol=5))
    def answer(self):
        return pickle.loads(self.answers.popleft())
out = io.BytesIO()
ShardedReplay(Engine(policies), [PickledShard(), PickledShard()], None).run(lines, out.write)
open(sys.argv[3], "wb").write(out.getvalue())
""",
}

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="lines of the file to use")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter to measure (another venv's: a compiled wheel)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"workloads, of {', '.join(WORKLOADS)} (startup always runs)")
    parser.add_argument("--policies", default=str(REPO / "config" / "policies.yaml"))
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "out"))
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    chosen = ["startup", *[name for name in args.only.split(",") if name and name != "startup"]]
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        parser.error(f"--only: unknown workloads {sorted(unknown)}; choose from {list(WORKLOADS)}")

    # The whole file of bench/replay.py (made once, cached), its first --events lines here.
    source, _ = prepare_file(argparse.Namespace(
        events=1_000_000, seed=7, out_dir=args.out_dir, regenerate=False,
        policies=args.policies))
    with tempfile.TemporaryDirectory(prefix="slamon-instructions-") as scratch:
        lines = Path(scratch) / "events.jsonl"
        with source.open("rb") as full, lines.open("wb") as part:
            for count, line in enumerate(full):
                if count == args.events:
                    break
                part.write(line)
        runs = {name: run(name, args.python, lines, args.policies, scratch) for name in chosen}

    startup = runs["startup"]["instructions"]
    figures: dict = {"events": args.events, "python": args.python, "startup": runs["startup"]}
    for name in chosen[1:]:
        own = runs[name]["instructions"] - startup
        figures[name] = {**runs[name], "per_event": round(own / args.events)}
    base = figures.get("baseline", {}).get("per_event")
    for name in ("replay", "sharded"):
        if name in figures and base:
            figures[name]["per_baseline"] = round(figures[name]["per_event"] / base, 2)
    hashes = {runs[name]["output_sha256"] for name in ("replay", "sharded") if name in runs}
    figures["same_output"] = len(hashes) == 1 if len(hashes) else None
    print(json.dumps(figures, indent=2))
    print(summary_line(figures), file=sys.stderr)
    return 0


def run(name: str, python: str, lines: Path, policies: str, scratch: str) -> dict:
    """One workload under cachegrind: its instructions, output hash and seconds taken."""
    output = Path(scratch) / f"{name}.out"
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
               f"--cachegrind-out-file={os.devnull}", python, "-c",
               _PRELUDE + WORKLOADS[name], str(lines), policies, str(output)]
    # Run from elsewhere than the repository, so that another venv imports its own modules
    # (a compiled wheel's), not the repository's source.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True,
                          check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr[-2000:]}")
    print(f"  {name}: {int(found.group(1).replace(',', '')):,} instructions", file=sys.stderr)
    return {"instructions": int(found.group(1).replace(",", "")),
            "output_sha256": (hashlib.sha256(output.read_bytes()).hexdigest()
                              if output.exists() else None),
            "seconds": round(time.monotonic() - started, 1)}


def summary_line(figures: dict) -> str:
    parts = [f"instructions per event on {figures['events']:,} events"]
    for name in ("baseline", "replay", "sharded"):
        if name in figures:
            ratio = figures[name].get("per_baseline")
            parts.append(f"{name} {figures[name]['per_event']:,}"
                         + (f" ({ratio}x baseline)" if ratio else ""))
    if figures["same_output"] is not None:
        parts.append("same output" if figures["same_output"] else "OUTPUTS DIFFER")
    return "instructions: " + ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
