"""Benchmark: events per second of `slamon review` against `slamon replay` in the same run.

    .venv/bin/python bench/review.py                  # 1,000,000 events (file cached)
    .venv/bin/python bench/review.py --events 200000

The events file is bench/replay.py's (the same generator and cache under bench/out/). The
old policies are config/policies.yaml; the new ones are a copy with tighter P1 and P2
response targets, a holiday added to office-berlin and one credit tier changed (written to
bench/out/), so that the review has breaches to add and remove. Then, one after the other:

- `slamon replay` of the file under the old policies, output to /dev/null;
- `slamon review --old ... --new ... --format json`, output to /dev/null.

Both are timed as whole commands (start-up and policy loading included). The issue's
target: a review (two replays) costs no more than twice a replay. Prints the figures as
JSON on stdout (also written to bench/out/review-last.json) and one summary line on
stderr; speed is reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from replay import REPO, measure_replay, prepare_file  # bench/replay.py, beside this file

TARGET_RATIO = 2.0  # review seconds / replay seconds, at most

# Edits that make the new policy file: (text in config/policies.yaml, its replacement).
CHANGES = (
    ("P1: {response: 15m, resolution: 4h}", "P1: {response: 10m, resolution: 4h}"),
    ("P2: {response: 1h, resolution: 8h}", "P2: {response: 45m, resolution: 8h}"),
    ('      - "2026-12-24"\n', '      - "2026-11-20"\n      - "2026-12-24"\n'),
    ("{below: 0.95, credit: 0.10}", "{below: 0.97, credit: 0.10}"),
    ("version: 7", "version: 8"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policies", default=str(REPO / "config" / "policies.yaml"))
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "out"))
    parser.add_argument("--regenerate", action="store_true", help="ignore a cached file")
    args = parser.parse_args(argv)

    path, profile = prepare_file(args)
    new_policies = write_new_policies(Path(args.policies), Path(args.out_dir))
    replay = measure_replay(path, args.policies)
    review = measure_review(path, args.policies, str(new_policies))
    ratio = review["seconds"] / replay["seconds"]
    figures = {
        "file": str(path),
        "events": profile["events"],
        "bytes": path.stat().st_size,
        "old_policies": args.policies,
        "new_policies": str(new_policies),
        "slamon_replay": replay,
        "slamon_review": review,
        "review_to_replay_time": round(ratio, 3),
        "target": {"review_to_replay_time_at_most": TARGET_RATIO},
        "meets_target": ratio <= TARGET_RATIO,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }
    text = json.dumps(figures, indent=2)
    print(text)
    (Path(args.out_dir) / "review-last.json").write_text(text + "\n")
    print(summary_line(figures), file=sys.stderr)
    return 0 if replay["exit_status"] == 0 and review["exit_status"] in (0, 1) else 1


def write_new_policies(old: Path, out_dir: Path) -> Path:
    """The old policy file with CHANGES applied, under `out_dir`."""
    text = old.read_text()
    for before, after in CHANGES:
        if before not in text:
            raise SystemExit(f"bench/review.py: {old} no longer has {before!r}: update CHANGES")
        text = text.replace(before, after, 1)
    path = out_dir / "policies-review-new.yaml"
    path.write_text(text)
    return path


def measure_review(path: Path, old: str, new: str) -> dict:
    """Wall time of `slamon review` (start-up included), output as JSON to /dev/null."""
    script = Path(sys.executable).with_name("slamon")  # as bench/replay.py runs slamon replay
    head = [str(script)] if script.exists() else [sys.executable, "-m", "agents.cli"]
    command = [*head, "review", "--old", old, "--new", new, "--events", str(path),
               "--format", "json", "--output", os.devnull]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - started
    peak_kib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    lines = sum(1 for _ in path.open("rb"))
    stderr = done.stderr.decode(errors="replace").strip().splitlines()
    return {"seconds": round(seconds, 3), "events_per_s": round(lines / seconds),
            "command": " ".join(command), "exit_status": done.returncode,
            "peak_rss_mib": round(peak_kib / 1024, 1), "summary": stderr[-1] if stderr else ""}


def summary_line(figures: dict) -> str:
    replay, review = figures["slamon_replay"], figures["slamon_review"]
    verdict = "met" if figures["meets_target"] else "NOT met"
    return (f"slamon review: {figures['events']:,} events in {review['seconds']:.2f} s = "
            f"{review['events_per_s']:,} events/s; slamon replay {replay['seconds']:.2f} s = "
            f"{replay['events_per_s']:,} events/s; review/replay time "
            f"{figures['review_to_replay_time']:.2f} (target <= {TARGET_RATIO}): {verdict}")


if __name__ == "__main__":
    sys.exit(main())
