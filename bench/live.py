"""Benchmark of the live monitor on a real broker: throughput, breach detection delay, memory.

    .venv/bin/python bench/live.py                  # every section at its default size
    .venv/bin/python bench/live.py --only live --events 50000 --profile bench/out/worker.prof

Workers run as deployed (`slamon worker`, RocksDB tables, compliance and metrics on, the
partition count of config/slamon.yaml unless --partitions; with --worker-python, another
venv's `slamon`, e.g. the compiled engine's as the Docker image runs it). Sections (`--only`):

- live: worker started and ready first, then a producer sends tickets stamped with the
  wall clock at --live-rate events/s (above the target, so a worker that keeps up is past
  it; `saturated` says whether the producer outran it).
- backlog: worker ready, then a day of past events arrives at once (every deadline of the
  day due), as after an outage.
- pair: the backlog again with two workers in one group (own web ports, data dirs,
  worker_ids); the figure is their sum.
  In each, the rate is read from the offsets the group commits, between 10% and 90% of the
  input (start-up and tail excluded); `cpu` is the worker's own CPU time over that span,
  and `events_per_cpu_s` the rate a whole core would give (the machine may be shared).
  `drained_s` is until the events and the compliance input are all committed, and
  `events_per_cpu_s_drained` the events over the worker's CPU until then (the compliance
  input trails the events: its tail is outside the 10%-90% span). The same
  topic is then read by a raw aiokafka consumer (no parsing, no state) and, for live, by
  Faust agents that only read / also write a table / also send (bench/faust_floor.py).
- delay: --clocks tickets opened at once whose response deadlines fall within --spread
  seconds; p50/p99/max of (breach created by the worker - deadline) and (breach read from
  the topic by the bench - deadline), and the first split in two: the instant of the tick
  that fired it (its detected_at) - deadline, and its creation - that instant.
- memory: a fresh worker opens --memory tickets (each size in turn); RSS / open tickets,
  and (RSS - RSS before any event) / open tickets.
- recovery: the backlog worked through by one worker, which then stops; a worker with an
  empty data directory (a pod rescheduled without its volume) starts in its place and
  rebuilds its tables from their changelogs before it reports ready; then the first
  worker starts again on its own data directory, with nothing to read. `ready_s` and
  `cpu_s` are from a start to the first /readyz 200, for the first and (`kept_`) the
  second (which also waits for the group: the first, a static member, is still in it);
  `reading_s` is the first's recovery, from Faust's log lines, and `records_per_s` the
  changelog records over it; `records_per_cpu_s` over the CPU beyond the second's;
  `readyz_records_left`, what its /readyz said was left to read, polled every 0.1 s.
  Baseline: a raw aiokafka consumer reading the same changelogs.

Prints JSON on stdout and one summary line on stderr, targets beside figures
(>= 20,000 events/s per worker; breach delay p99 < 250 ms). Nothing is asserted.
With --profile, the worker of one section runs under cProfile (main thread only, not the
aiokafka consumer thread; wall-clock times, so on a busy machine they include time the
process waited for a core; the profiled section's figures are slowed by it) and the top
functions by tottime go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from liveinput import Producer, backlog_events, live_events, opened_events
from livekit import Offsets, broker, delete_topics, load_average, produce, quantiles, raw_consume
from liveworker import Worker, WorkerConfig, count_outputs, follow, start_team

from agents.settings import load_settings
from sla.events import format_ts, parse_ts

REPO = Path(__file__).resolve().parent.parent
TARGET_RATE = 20_000  # events/s per worker
TARGET_P99 = 0.250  # s, breach detection delay
SECTIONS = ("live", "backlog", "pair", "delay", "memory", "recovery")
# The tables whose changelogs a worker that lost its disk reads back (agents/clocks.py,
# agents/compliance.py; the two legacy compliance tables stay empty).
TABLES = ("slamon-clocks", "slamon-compliance-counts", "slamon-compliance-entries",
          "slamon-compliance-clocks")

BENCH_POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: [0.5, 0.75, 0.9]
  targets:
    P1: {response: 15m, resolution: 4h}
    P2: {response: 1h, resolution: 8h}
    P3: {response: 4h, resolution: 3d}
    P4: {response: 1d, resolution: 10d}
"""
DELAY_POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: []
  targets:
    P1: {response: %ds, resolution: 8h}
"""


@dataclass
class Run:
    """What the sections share: the broker, a scratch directory, the partition count."""

    bootstrap: str
    work: Path
    partitions: int
    python: str = sys.executable  # the workers'
    prefixes: list[str] = field(default_factory=list)

    def prefix(self) -> str:
        prefix = f"bench.{uuid.uuid4().hex[:6]}."
        self.prefixes.append(prefix)
        return prefix

    def config(self, prefix: str, policies: str) -> WorkerConfig:
        path = self.work / f"{prefix}policies.yaml"
        path.write_text(policies)
        return WorkerConfig(self.bootstrap, prefix, path, self.work, self.partitions,
                            python=self.python)

    def cleanup(self) -> None:
        """Delete the run's topics (on a shared broker); a failure is only reported."""
        groups = [p.rstrip(".").replace(".", "-") for p in self.prefixes]
        try:
            delete_topics(self.bootstrap, [*self.prefixes, *groups])
        except Exception as error:
            print(f"bench: the run's topics were not deleted: {error!r}", file=sys.stderr)


# -- sections -------------------------------------------------------------------------
def throughput(run: Run, offsets: Offsets, mode: str, count: int, workers: int,
               live_rate: float, floor_events: int, profile: Path | None) -> dict:
    prefix = run.prefix()
    config = run.config(prefix, BENCH_POLICIES)
    result: dict = {"mode": mode, "events": count, "workers": workers,
                    "profiled": profile is not None}
    if mode == "live":
        messages, rate = live_events(count, live_rate, run.partitions), live_rate
        result["offered_events_per_s"] = live_rate
    else:
        (messages, result["event_span_hours"]), rate = backlog_events(count, run.partitions), None
    team = start_team(config, offsets, workers, profile)
    try:
        rss_before = [worker.rss_bytes() for worker in team]
        producer = Producer(run.bootstrap, prefix + "events", messages, rate)
        producer.start()
        monitor = follow(offsets, config.group, prefix, count, team, timeout=3600)
        result["produced"] = producer.outcome()
        snapshots = [worker.metrics() for worker in team]
        result["rss_mb"] = [round(w.rss_bytes() / 2**20) for w in team]
        result["rss_mb_before"] = [round(b / 2**20) for b in rss_before]
    finally:
        for worker in team:
            worker.stop()
    monitor["per_worker_events_per_s"] = round(monitor["events_per_s"] / workers)
    if mode == "live":
        # The producer set the pace unless the worker fell behind it.
        monitor["saturated"] = monitor["events_per_s"] < 0.95 * result["produced"]["events_per_s"]
    result["monitor"] = monitor
    result["metrics"] = {  # the worker's own counters (reported once per batch)
        "events": sum(s.events for s in snapshots if s) if all(snapshots) else None,
        "rejected": sum(s.rejected for s in snapshots if s) if all(snapshots) else None,
        "per_worker_events": [s.events if s else None for s in snapshots]}
    result["outputs"] = count_outputs(offsets, prefix)
    raw = asyncio.run(raw_consume(run.bootstrap, prefix + "events", run.partitions, count))
    result["raw_consumer"] = raw
    result["ratio_to_raw"] = round(monitor["per_worker_events_per_s"] / raw["events_per_s"], 4)
    if floor_events:
        floor = faust_floor(run, prefix + "events", min(count, floor_events))
        result["faust_floor"] = floor
        if floor.get("none", -1) > 0:
            result["ratio_to_floor"] = round(monitor["per_worker_events_per_s"] / floor["none"],
                                             3)
    return result


def faust_floor(run: Run, topic: str, count: int) -> dict[str, int]:
    """events/s of a Faust agent that only reads (and writes a table, and sends one output)."""
    rates = {}
    for mode in ("none", "table", "table+send"):
        done = subprocess.run([sys.executable, str(REPO / "bench" / "faust_floor.py"),
                               run.bootstrap, topic, str(count), mode, str(run.partitions)],
                              capture_output=True, text=True, timeout=900, cwd=run.work)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        rates[mode] = json.loads(lines[-1])["events_per_s"] if lines else -1
    return rates


def detection_delay(run: Run, offsets: Offsets, clocks: int, spread: int) -> dict:
    """Breaches of `clocks` response deadlines falling within `spread` s, 60 s from now."""
    from kafka import KafkaConsumer, TopicPartition

    prefix = run.prefix()
    target = spread + 60  # deadlines fall 60 s .. 60 + spread s after the tickets arrive
    config = run.config(prefix, DELAY_POLICIES % target)
    team = start_team(config, offsets, 1)
    try:
        start = int(time.time() * 1000)
        messages = opened_events(clocks, run.partitions, "D", "P1", spread * 1000, start)
        asyncio.run(produce(run.bootstrap, prefix + "events", messages))
        first_deadline = start - spread * 1000 + target * 1000
        consumer = KafkaConsumer(bootstrap_servers=run.bootstrap, enable_auto_commit=False)
        deadline = time.monotonic() + target + spread + 120
        while not consumer.partitions_for_topic(prefix + "breaches"):
            consumer.topics()
            time.sleep(0.5)
        partitions = [TopicPartition(prefix + "breaches", p)
                      for p in consumer.partitions_for_topic(prefix + "breaches")]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        cpu_before, ticks_before = team[0].cpu_seconds(), offsets.end(prefix + "ticks")
        emitted: list[float] = []
        arrived: list[float] = []
        stamped: list[float] = []  # detected_at - deadline: the instant of the tick that fired it
        fired: list[float] = []  # emitted - detected_at: tick round trip, catch-up wait, batch
        while len(arrived) < clocks and time.monotonic() < deadline:
            team[0].check_alive()
            for batch in consumer.poll(timeout_ms=200, max_records=5000).values():
                received = time.time()
                for message in batch:
                    breach = orjson.loads(message.value)
                    due = parse_ts(breach["deadline"]) / 1000
                    detected = parse_ts(breach["detected_at"]) / 1000
                    appended = message.timestamp / 1000  # when the worker added it to a batch
                    emitted.append(appended - due)
                    arrived.append(received - due)
                    stamped.append(detected - due)
                    fired.append(appended - detected)
        consumer.close()
        rss = team[0].rss_bytes()
        cpu = team[0].cpu_seconds() - cpu_before  # mostly the breaches' window: ticks cost
        ticks = offsets.end(prefix + "ticks") - ticks_before
    finally:
        team[0].stop()
    return {"clocks": clocks, "spread_s": spread, "breaches": len(arrived),
            "first_deadline": format_ts(first_deadline), "rss_mb": round(rss / 2**20),
            "worker_cpu_s": round(cpu, 1), "ticks_sent": ticks,
            "emitted_delay_s": quantiles(emitted), "arrival_delay_s": quantiles(arrived),
            "tick_instant_after_deadline_s": quantiles(stamped),
            "emitted_after_tick_instant_s": quantiles(fired)}


def memory(run: Run, offsets: Offsets, size: int) -> dict:
    """RSS of a worker holding `size` open tickets (P3: nothing falls due during the run)."""
    prefix = run.prefix()
    config = run.config(prefix, BENCH_POLICIES)
    team = start_team(config, offsets, 1)
    worker = team[0]
    try:
        time.sleep(2)
        before = worker.rss_bytes()
        messages = opened_events(size, run.partitions, "M", "P3", 60_000,
                                 int(time.time() * 1000))
        producer = Producer(run.bootstrap, prefix + "events", messages, None)
        started = time.perf_counter()
        producer.start()
        del messages
        monitor = follow(offsets, config.group, prefix, size, team, timeout=3600)
        producer.outcome()
        seconds = time.perf_counter() - started
        time.sleep(3)  # let the last batch's writes settle
        rss = worker.rss_bytes()
        snapshot = worker.metrics()
    finally:
        worker.stop()
    return {"open_tickets": size, "open_clocks": snapshot.open_clocks if snapshot else None,
            "rss_mb": round(rss / 2**20), "rss_mb_before": round(before / 2**20),
            "rss_bytes_per_ticket": round(rss / size),
            "added_bytes_per_ticket": round((rss - before) / size),
            "seconds": round(seconds, 1), "events_per_s": monitor["events_per_s"],
            "events_per_cpu_s": monitor["events_per_cpu_s"]}


def recovery(run: Run, offsets: Offsets, count: int) -> dict:
    """A worker without its data directory rebuilding the backlog's tables (module docstring)."""
    prefix = run.prefix()
    config = run.config(prefix, BENCH_POLICIES)
    messages, _ = backlog_events(count, run.partitions)
    team = start_team(config, offsets, 1)
    try:
        producer = Producer(run.bootstrap, prefix + "events", messages, None)
        producer.start()
        del messages
        follow(offsets, config.group, prefix, count, team, timeout=3600)
        producer.outcome()
    finally:
        team[0].stop()
    changelogs = [f"{config.group}-{table}-changelog" for table in TABLES]
    records = {topic: offsets.end(topic) for topic in changelogs}
    # "empty": a data directory of its own, empty; then the first worker again, on its own.
    # Logging at info: Faust's recovery service logs when it starts and ends reading.
    config = dataclasses.replace(config, log_level="info")
    empty = Worker(config, "empty")
    ready, cpu, left = _time_to_ready(empty)
    kept_ready, kept_cpu, _ = _time_to_ready(Worker(config, team[0].name))
    reading = _reading_seconds(empty.log_path)
    total = sum(records.values())
    raw = {"records": 0, "seconds": 0.0}
    for topic, expected in records.items():
        if expected:
            read = asyncio.run(raw_consume(run.bootstrap, topic, run.partitions, expected))
            raw["records"] += read["events"]
            raw["seconds"] += read["seconds"]
    raw["records_per_s"] = round(raw["records"] / raw["seconds"]) if raw["seconds"] else None
    extra_cpu = cpu - kept_cpu
    return {"events": count, "changelog_records": records, "records": total,
            "ready_s": round(ready, 2), "cpu_s": round(cpu, 2), "reading_s": reading,
            "readyz_records_left": left,
            "kept_ready_s": round(kept_ready, 2), "kept_cpu_s": round(kept_cpu, 2),
            "records_per_s": round(total / reading) if reading else None,
            "records_per_cpu_s": round(total / extra_cpu) if extra_cpu > 0 else None,
            "raw_consumer": raw}


def _reading_seconds(log: Path) -> float | None:
    """From Faust's "Restoring state from changelog topics" to "Done reading from changelog
    topics" in a worker's log (info level), summed over the recoveries it logged."""
    started, total = None, 0.0
    for line in log.read_text(errors="replace").splitlines():
        if "Restoring state from changelog topics" in line:
            started = _log_time(line)
        elif "Done reading from changelog topics" in line and started is not None:
            total += _log_time(line) - started
            started = None
    return round(total, 3) if total else None


def _log_time(line: str) -> float:
    """The time of a worker's log line, `[2026-11-30 19:40:41,096] ...`, in seconds."""
    stamp = line[1:line.index("]")]
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:]) / 1000


def _time_to_ready(worker: Worker) -> tuple[float, float, list[int]]:
    """Seconds from `worker`'s start until /readyz answers 200, its CPU seconds then, and
    the changelog records /readyz said were left at each poll that said so."""
    started = time.monotonic()
    left: list[int] = []
    try:
        while True:
            worker.check_alive()
            status, body = worker.get("/readyz")
            if status == 200:
                return time.monotonic() - started, worker.cpu_seconds(), left
            if status == 503 and b"changelog_records_left" in body:
                left.append(orjson.loads(body)["changelog_records_left"])
            if time.monotonic() - started > 3600:
                raise SystemExit(f"worker {worker.name} not ready in an hour:\n{worker.tail(5)}")
            time.sleep(0.1)
    finally:
        worker.stop()


# -- reporting ------------------------------------------------------------------------
def summary(result: dict) -> str:
    parts = []
    for key in ("live", "backlog", "pair"):
        if key not in result:
            continue
        t = result[key]
        m = t["monitor"]
        text = (f"{key}: {m['per_worker_events_per_s']:,} events/s per worker"
                + (f" ({m['events_per_s']:,} sum of {t['workers']})" if t["workers"] > 1 else "")
                + f" [target >= {TARGET_RATE:,}], {m['events_per_cpu_s'] or 0:,}/cpu-s"
                + f", raw aiokafka {t['raw_consumer']['events_per_s']:,}/s"
                + f" (ratio {t['ratio_to_raw']:.3f})")
        if "faust_floor" in t:
            text += f", Faust floor {t['faust_floor']['none']:,}/s"
        if key == "live":
            text += f", offered {t['produced']['events_per_s']:,}/s" + (
                " (worker fell behind)" if m["saturated"] else " (kept up)")
        parts.append(text)
    if "detection" in result:
        d = result["detection"]
        a = d["arrival_delay_s"]
        parts.append(f"breach delay p50 {a.get('p50')} s p99 {a.get('p99')} s max {a.get('max')}"
                     f" s [target p99 < {TARGET_P99} s] over {d['breaches']:,} breaches of "
                     f"{d['clocks']:,} clocks ({d['ticks_sent']:,} ticks, worker "
                     f"{d['worker_cpu_s']} CPU s)")
    if "memory" in result:
        parts.append("memory " + ", ".join(
            f"{m['rss_bytes_per_ticket']:,} B/ticket ({m['added_bytes_per_ticket']:,} added)"
            f" at {m['open_tickets']:,}" for m in result["memory"]))
    if "recovery" in result:
        r = result["recovery"]
        parts.append(f"recovery of {r['records']:,} changelog records: ready in {r['ready_s']} s"
                     f" ({r['kept_ready_s']} s with its data kept; reading {r['reading_s']} s), "
                     f"{r['records_per_s'] or 0:,} records/s, {r['records_per_cpu_s'] or 0:,}/cpu-s"
                     f", raw aiokafka {r['raw_consumer']['records_per_s'] or 0:,}/s")
    loads = result["load_average"]
    parts.append(f"load {loads['start'][0]} -> {loads['end'][0]} on {result['cpus']} cpus")
    return "live bench: " + "; ".join(parts)


def say(line: str) -> None:
    print(f"bench: {time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def print_profile(path: Path, top: int) -> None:
    print(f"\nworker profile ({path}), top {top} by tottime:", file=sys.stderr)
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: all of {SECTIONS})")
    parser.add_argument("--events", type=int, default=200_000, help="per throughput section")
    parser.add_argument("--live-rate", type=float, default=30_000,
                        help="events/s the live producer offers (default 30,000)")
    parser.add_argument("--floor-events", type=int, default=100_000,
                        help="events the Faust floor reads (0: no floor)")
    parser.add_argument("--clocks", type=int, default=100_000)
    parser.add_argument("--spread", type=int, default=60, help="seconds over which deadlines fall")
    parser.add_argument("--memory", default="100000,1000000",
                        help="open-ticket counts to measure RSS at, comma-separated")
    parser.add_argument("--partitions", type=int, default=None,
                        help="of the events topic (default: config/slamon.yaml's)")
    parser.add_argument("--profile", type=Path, help="run one section's worker under cProfile")
    parser.add_argument("--profile-section", choices=("live", "backlog"), default="live")
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--worker-python", default=sys.executable,
                        help="the workers' Python, e.g. a venv with the compiled wheel "
                             "(README, \"Compiled engine\"); default: this one")
    parser.add_argument("--workdir", type=Path,
                        help="keep worker logs and data here (default: a temporary directory)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    partitions = args.partitions or load_settings(REPO / "config" / "slamon.yaml",
                                                  environ={}).partitions
    if args.profile is not None:
        args.profile = args.profile.resolve()
    result: dict = {"bench": "live", "partitions": partitions, "cpus": os.cpu_count(),
                    "worker_python": args.worker_python,
                    "store": "rocksdb://", "load_average": {"start": load_average()}}
    # The scratch directory outlives the broker that keeps its data in it.
    with ExitStack() as outer:
        if args.workdir is None:
            work = Path(outer.enter_context(tempfile.TemporaryDirectory(prefix="slamon-bench-")))
        else:
            work = args.workdir.resolve()
            work.mkdir(parents=True, exist_ok=True)
        stack = outer.enter_context(ExitStack())
        run = Run(broker(stack, work), work, partitions, os.path.abspath(args.worker_python))
        offsets = Offsets(run.bootstrap)
        stack.callback(offsets.close)
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):  # a shared broker: leave it as found
            stack.callback(run.cleanup)
        for mode, workers in (("live", 1), ("backlog", 1), ("pair", 2)):
            if mode in sections:
                say(f"{mode}: {args.events:,} events, {workers} worker(s)")
                kind = "backlog" if mode == "pair" else mode
                profile = args.profile if args.profile_section == mode else None
                result[mode] = throughput(run, offsets, kind, args.events, workers,
                                          args.live_rate,
                                          args.floor_events if mode == "live" else 0, profile)
        if "delay" in sections:
            say(f"delay: {args.clocks:,} clocks due within {args.spread} s")
            result["detection"] = detection_delay(run, offsets, args.clocks, args.spread)
        if "memory" in sections:
            result["memory"] = []
            for size in (int(text) for text in args.memory.split(",") if text.strip()):
                say(f"memory: {size:,} open tickets")
                result["memory"].append(memory(run, offsets, size))
        if "recovery" in sections:
            say(f"recovery: the tables of {args.events:,} events rebuilt by an empty worker")
            result["recovery"] = recovery(run, offsets, args.events)
    result["load_average"]["end"] = load_average()
    print(json.dumps(result, indent=2))
    print(summary(result), file=sys.stderr)
    if args.profile is not None and args.profile.exists():
        print_profile(args.profile, args.profile_top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
