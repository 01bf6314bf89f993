"""Benchmark: events per second of `slamon replay`, against `orjson.loads` of the same lines.

    .venv/bin/python bench/replay.py                 # 1,000,000 events (file cached)
    .venv/bin/python bench/replay.py --events 200000 --no-engine

Generates (once; cached under bench/out/, which git ignores) a JSON-lines file of
synthetic ticket lifecycles from `agents.devkit.traffic` over config/policies.yaml:
customers and services that fall under the office-berlin, support-nyc and 24x7
calendars, across both 2026 DST changes and the datacentre-move exclusion, with
pauses, reopens, priority changes, cancels, and a small share of events
delivered late (after a few later events) so that the engine's recompute path
runs too. Then, in one run, it measures on that file:

- baseline: `orjson.loads` of every line, in this process (best of three);
- replay: `slamon replay` as a subprocess, its output read through a pipe and hashed (wall
  time, the command's CPU time and peak RSS from wait4);
- replay with `--jobs N` for each N of `--jobs` (default 2): the same command split over N
  shard processes (CPU time counts every process; peak RSS is the largest one's), its output
  checked to be byte for byte that of the plain replay;
- engine (unless --no-engine): the same decode + `Replay.feed` in this process,
  without encoding the output, to show what the command line adds around it;
- reader bound (with --reader-bound): the reading process of `--jobs 2` alone, as if its
  shards answered at once: their answers are recorded in a first pass, then the reader runs
  again on them, pickling what it sends and unpickling what it gets as it would through the
  pipes. Its events/s is what no number of cores can pass, since the reader is one process.

Prints the figures as JSON on stdout and one summary line on stderr. Speed is
reported, never asserted: the targets (>= 100,000 events/s and >= 1/10 of the
baseline) are printed beside the figures. On a shared machine wall time follows the
load: the replay's CPU time (events per CPU second) and the load average before and
after the run are reported beside it.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from agents.devkit.traffic import ticket_events
from agents.policyfile import load_policies
from sla.events import parse_ts

REPO = Path(__file__).resolve().parent.parent

TARGET_EVENTS_PER_S = 100_000
TARGET_RATIO = 0.1
# Bump when the generated file would change, so that a stale cache is not reused.
GENERATOR_VERSION = 1
START = "2026-10-19T00:00:00Z"  # a Monday before both DST changes and the datacentre move
TICKETS_PER_HOUR = 300.0
LATE_SHARE = 0.01  # share of events delivered after 1..MAX_LATE_BY later events
MAX_LATE_BY = 20  # ~2.4 s of event time per event at this rate: well inside the 60 s lateness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policies", default=str(REPO / "config" / "policies.yaml"))
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "out"))
    parser.add_argument("--regenerate", action="store_true", help="ignore a cached file")
    parser.add_argument("--no-engine", action="store_true", help="skip the in-process engine run")
    parser.add_argument("--reader-bound", action="store_true",
                        help="measure the reader of --jobs 2 alone (shards' answers recorded)")
    parser.add_argument("--jobs", default="2",
                        help="comma-separated --jobs values to measure besides 1 (default 2; "
                             "'' for none)")
    args = parser.parse_args(argv)
    jobs = [int(n) for n in args.jobs.split(",") if n.strip()]

    load_before = os.getloadavg()
    path, profile = prepare_file(args)
    baseline = measure_baseline(path)
    replay = measure_replay(path, args.policies)
    split = {str(n): measure_replay(path, args.policies, n, expect=replay["output_sha256"])
             for n in jobs}
    figures: dict = {
        "file": str(path),
        "events": profile["events"],
        "bytes": path.stat().st_size,
        "input": profile,
        "baseline_orjson_loads": baseline,
        "slamon_replay": replay,
        "slamon_replay_jobs": split,
    }
    if not args.no_engine:
        figures["engine_in_process"] = measure_engine(path, args.policies)
    if args.reader_bound:
        figures["reader_bound"] = measure_reader_bound(path, args.policies)
    for measured in [figures.get("slamon_replay"), figures.get("engine_in_process"),
                     *split.values()]:
        if measured:
            rate = measured["events_per_s"]
            measured["ratio_to_baseline"] = round(rate / baseline["events_per_s"], 4)
    figures["targets"] = {"events_per_s": TARGET_EVENTS_PER_S, "ratio_to_baseline": TARGET_RATIO}
    figures["meets_targets"] = (replay["events_per_s"] >= TARGET_EVENTS_PER_S
                                and replay["ratio_to_baseline"] >= TARGET_RATIO)
    figures["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    text = json.dumps(figures, indent=2)
    print(text)
    (Path(args.out_dir) / "replay-last.json").write_text(text + "\n")
    print(summary_line(figures), file=sys.stderr)
    failed = [run for run in [replay, *split.values()]
              if run["exit_status"] != 0 or run.get("same_output") is False]
    return 1 if failed else 0


# -- the input file ------------------------------------------------------------------------------

def prepare_file(args: argparse.Namespace) -> tuple[Path, dict]:
    """The cached events file and its profile (counts by type and calendar), made if missing."""
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"events-{args.events}-seed{args.seed}-v{GENERATOR_VERSION}.jsonl"
    profile_path = path.with_suffix(".profile.json")
    if path.exists() and profile_path.exists() and not args.regenerate:
        return path, json.loads(profile_path.read_text())
    policies = load_policies(args.policies)
    profile = _Profile(policies)
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    with partial.open("wb") as sink:
        for event in deliver_late(generate(args.events, args.seed), random.Random(args.seed)):
            profile.count(event)
            sink.write(orjson.dumps(event) + b"\n")
    partial.replace(path)
    result = profile.result()
    result["generated_in_s"] = round(time.perf_counter() - started, 2)
    profile_path.write_text(json.dumps(result, indent=2) + "\n")
    return path, result


def generate(count: int, seed: int) -> Iterator[dict]:
    """Synthetic lifecycles from agents.devkit.traffic, in event-time order."""
    return ticket_events(count, parse_ts(START), tickets_per_hour=TICKETS_PER_HOUR, seed=seed)


def deliver_late(events: Iterable[dict], rng: random.Random) -> Iterator[dict]:
    """Hold back LATE_SHARE of the events for 1..MAX_LATE_BY later ones (arrival != ts order)."""
    held: list[tuple[int, dict]] = []  # (release after this many more events, event)
    for event in events:
        if rng.random() < LATE_SHARE:
            held.append((rng.randint(1, MAX_LATE_BY), event))
            continue
        yield event
        still: list[tuple[int, dict]] = []
        for left, late in held:
            if left <= 1:
                yield late
            else:
                still.append((left - 1, late))
        held = still
    for _, late in held:
        yield late


class _Profile:
    """What the file holds: events by type, tickets by calendar, late deliveries."""

    def __init__(self, policies) -> None:
        self.policies = policies
        self.types: Counter = Counter()
        self.calendars: Counter = Counter()
        self.events = 0
        self.late = 0
        self._latest = ""

    def count(self, event: dict) -> None:
        self.events += 1
        self.types[event["type"]] += 1
        if event["ts"] < self._latest:  # RFC 3339 UTC text of one format sorts by time
            self.late += 1
        else:
            self._latest = event["ts"]
        if event["type"] == "opened":
            terms = self.policies.terms(event["service"], event["customer"])
            self.calendars[terms.calendar_name] += 1

    def result(self) -> dict:
        return {"events": self.events, "late_deliveries": self.late, "start": START,
                "by_type": dict(self.types.most_common()),
                "tickets_by_calendar": dict(self.calendars.most_common())}


# -- the measurements ----------------------------------------------------------------------------

def measure_baseline(path: Path, repeat: int = 3) -> dict:
    """orjson.loads of every line, read from the (cached) file: the floor any replay pays."""
    best = float("inf")
    lines = 0
    loads = orjson.loads
    for _ in range(repeat):
        started = time.perf_counter()
        lines = 0
        with path.open("rb") as source:
            for raw in source:
                loads(raw)
                lines += 1
        best = min(best, time.perf_counter() - started)
    return _rate(lines, best) | {"runs": repeat, "of": "best"}


def replay_command(path: Path, policies: str, jobs: int = 1) -> list[str]:
    """`slamon replay` as installed next to this interpreter, or through the module; its
    records on stdout."""
    script = Path(sys.executable).with_name("slamon")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "agents.cli"]
    return [*head, "replay", "--policies", policies, "--events", str(path), "--jobs", str(jobs)]


def measure_replay(path: Path, policies: str, jobs: int = 1, expect: str | None = None) -> dict:
    """Wall time of the whole command (start-up and policy loading included), and a digest of
    what it wrote (hashed as it comes, in this process: its CPU is not the command's)."""
    command = replay_command(path, policies, jobs)
    digest = hashlib.sha256()
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as done:
        assert done.stdout is not None and done.stderr is not None
        while chunk := done.stdout.read(1 << 20):
            digest.update(chunk)
        errors = done.stderr.read()
        # Reaped here for this run's own usage: the command's CPU with its shard processes'
        # (which it waits for), and the peak RSS of the largest of them.
        _, status, usage = os.wait4(done.pid, 0)
        done.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    peak_kib = usage.ru_maxrss  # KiB on Linux
    lines = sum(1 for _ in path.open("rb"))
    stderr = errors.decode(errors="replace").strip().splitlines()
    sha256 = digest.hexdigest()
    return _rate(lines, seconds) | {
        "jobs": jobs,
        "output_sha256": sha256,
        **({} if expect is None else {"same_output": sha256 == expect}),
        "cpu_seconds": round(cpu, 3),
        "events_per_cpu_s": round(lines / cpu) if cpu else None,
        "command": " ".join(command),
        "exit_status": done.returncode,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "summary": stderr[-1] if stderr else "",
    }


def measure_engine(path: Path, policies: str) -> dict:
    """Decode + Replay.feed + finish in this process, records counted but not encoded.

    With the cyclic collector paused, as `slamon replay` pauses it, so that the difference
    from the command is what the command line adds (encoding, writing, start-up).
    """
    from sla.engine import Engine
    from sla.replay import Replay

    replay = Replay(Engine(load_policies(policies)))
    loads, feed = orjson.loads, replay.feed
    records = 0
    gc.disable()
    started = time.perf_counter()
    try:
        with path.open("rb") as source:
            for line, raw in enumerate(source, 1):
                records += len(feed(loads(raw), line))
        records += len(replay.finish())
        seconds = time.perf_counter() - started
    finally:
        gc.enable()
    return _rate(replay.events, seconds) | {"records": records}


def measure_reader_bound(path: Path, policies: str, jobs: int = 2) -> dict:
    """The reader of `slamon replay --jobs` alone: its events/s when the shards answer at
    once (see the module). Both passes in this process, so that tickets go to the same
    shards (`hash` is salted per process)."""
    import pickle

    from agents.replayjobs import Answer, ShardedReplay, ShardWorker
    from sla.engine import Engine

    loaded = load_policies(policies)
    answers: list[list[bytes]] = [[] for _ in range(jobs)]

    class Recording:
        def __init__(self, index: int) -> None:
            self.worker, self.index = ShardWorker(Engine(loaded), None), index
            self.next = iter(answers[index])  # a list iterator sees what is appended later

        def submit(self, work: tuple) -> None:
            answers[self.index].append(pickle.dumps(self.worker.handle(work), protocol=5))

        def answer(self) -> Answer:
            return pickle.loads(next(self.next))

        def close(self) -> None: ...

        def abort(self) -> None: ...

    class Replaying(Recording):
        def __init__(self, index: int) -> None:
            self.index, self.next = index, iter(answers[index])

        def submit(self, work: tuple) -> None:
            pickle.dumps(work, protocol=5)  # what the sender thread does, in this process

    def run(shards: list) -> tuple[float, float]:
        sink = open(os.devnull, "wb")  # noqa: SIM115
        gc.disable()
        started, cpu = time.perf_counter(), time.process_time()
        try:
            with path.open("rb") as source:
                ShardedReplay(Engine(loaded), shards, None).run(source, sink.write)
            return time.perf_counter() - started, time.process_time() - cpu
        finally:
            gc.enable()
            sink.close()

    run([Recording(i) for i in range(jobs)])
    seconds, cpu = run([Replaying(i) for i in range(jobs)])
    lines = sum(1 for _ in path.open("rb"))
    return _rate(lines, seconds) | {"jobs": jobs, "cpu_seconds": round(cpu, 3),
                                    "answers_mib": round(sum(map(len, sum(answers, []))) / 2**20)}


def _rate(events: int, seconds: float) -> dict:
    return {"seconds": round(seconds, 3), "events_per_s": round(events / seconds)}


def summary_line(figures: dict) -> str:
    replay, base = figures["slamon_replay"], figures["baseline_orjson_loads"]
    verdict = "met" if figures["meets_targets"] else "NOT met"
    load = figures["machine"]["load_average_after"][0]
    return (f"slamon replay: {figures['events']:,} events in {replay['seconds']:.2f} s = "
            f"{replay['events_per_s']:,} events/s ({replay['events_per_cpu_s']:,} per CPU s), "
            f"{replay['ratio_to_baseline']:.3f} of orjson.loads ({base['events_per_s']:,}/s), "
            f"peak RSS {replay['peak_rss_mib']} MiB, load {load}; "
            + "".join(f"--jobs {n}: {run['events_per_s']:,}/s ({run['events_per_cpu_s']:,} per "
                      f"CPU s{'' if run['same_output'] else ', OUTPUT DIFFERS'}); "
                      for n, run in figures["slamon_replay_jobs"].items())
            + (f"reader of --jobs 2 alone: {figures['reader_bound']['events_per_s']:,}/s; "
               if "reader_bound" in figures else "")
            + f"targets >= {TARGET_EVENTS_PER_S:,}/s and >= {TARGET_RATIO} of baseline: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
