"""Benchmark: the worker's batch path in one process, without Kafka: CPU per event by stage.

    .venv/bin/python bench/workerpath.py                        # 200,000 events, best of 3
    /tmp/cvenv/bin/python bench/workerpath.py --events 100000   # run from outside the repo
                                                                # for the compiled wheel's modules

bench/live.py measures the worker as deployed, on a broker, and its figures move by ±10-30%
from run to run on a shared 2-core machine: a change worth 5% cannot be seen there. This
runs the same work on one core, with nothing to wait for, and counts CPU time only:

- the input is bench/live.py's backlog (a day of ticket lifecycles, 12 partitions), handed
  over as a worker catching up gets it: each partition's records in batches of 1,000, the
  partitions in turn;
- each batch goes through what `ClockService.handle_events` runs: `ClockProcessor` (decode,
  engine, outputs, with `MonitorMetrics` observing), the outputs sent, the ticket states
  prepared and committed to the changelog and to RocksDB, then `commit`; at the end, a
  tick fires every partition's deadlines due by then;
- the compliance input the batches produced goes, partition by partition, through
  `ComplianceService._handle` (counting, the compliance records sent, its table);
- the producer is aiokafka's own `BatchBuilder` (messages encoded into real record
  batches), answering at once; each table is a RocksDB database per partition opened with
  Faust's own options, written with the worker's write batches (`write_rocksdb`);
- garbage collection is set as `slamon worker` sets it (frozen start-up, its thresholds).

Baseline, in the same run: the engine alone on the same events (`Replay`, as `slamon
replay` drives it: decode, feed, finish; compliance counted in memory), so the ratio says
how much the path costs around the rules. A check: the path's breach, warning and outcome
ids must be those of the replay.

Not in it: fetching (aiokafka's consumer, Faust's thread), the network, the broker, the
event loop's waits. Prints JSON on stdout and one summary line on stderr; nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.stores.rocksdb import RocksDBOptions
from faust.types import TP
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live import BENCH_POLICIES  # noqa: E402  (the backlog section's policies)
from liveinput import backlog_events  # noqa: E402

from agents.app import policy_targets  # noqa: E402
from agents.batch.sender import BatchSender  # noqa: E402
from agents.cli.worker import GC_THRESHOLDS  # noqa: E402
from agents.compliance import ComplianceProcessor, ComplianceService  # noqa: E402
from agents.metrics import MonitorMetrics  # noqa: E402
from agents.policyfile import load_policies  # noqa: E402
from agents.processor import Batch, ClockProcessor  # noqa: E402
from agents.tables import Overlay, RocksDBStore, write_rocksdb  # noqa: E402
from sla.engine import Engine  # noqa: E402
from sla.policy import Policies  # noqa: E402
from sla.replay import Replay  # noqa: E402
from streams.topics import TopicCatalogue  # noqa: E402

BATCH = 1000  # records per partition per batch, as the worker's router hands them
PARTITIONS = 12
PRODUCER_BATCH_BYTES = 256 * 1024  # the worker's default `producer_batch_bytes`
OFFSET_KEY = RocksDBStore.offset_key  # where the worker's store keeps its changelog offset
TICKET_KINDS = ("breach", "warning", "outcome", "retraction")
STAGES = ("apply", "send", "prepare", "changelog_store", "commit", "fire", "compliance")


class Producer:
    """aiokafka's producer as `BatchSender` uses it: real record batches, acknowledged at once."""

    def __init__(self) -> None:
        self.messages = 0
        self.offsets: defaultdict[tuple[str, int], int] = defaultdict(int)

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(PRODUCER_BATCH_BYTES, 0)

    async def send_batch(self, builder: BatchBuilder, topic: str, *,
                         partition: int) -> asyncio.Future:
        builder._build()  # the encoding the producer's sender does before a request
        return self._ack(topic, partition, builder.record_count())

    async def send(self, topic: str, value: bytes | None, key: bytes | None, partition: int,
                   timestamp_ms: int | None, headers: Any) -> asyncio.Future:
        return self._ack(topic, partition, 1)

    def _ack(self, topic: str, partition: int, count: int) -> asyncio.Future:
        base = self.offsets[(topic, partition)]
        self.offsets[(topic, partition)] = base + count
        self.messages += count
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=base))
        return future


class Table:
    """A `RawTable`'s batch path without Faust: RocksDB per partition, changelog first."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        options = RocksDBOptions()
        self.dbs = {p: options.open(root / f"{name}-{p}.db") for p in range(PARTITIONS)}

    def read(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self.dbs[partition].get(key)
        return value

    def write(self, partition: int, changes: Mapping[bytes, bytes | None]) -> None:
        write_rocksdb(self.dbs[partition], changes, None)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for db in self.dbs.values():
            for key, value in db.items():
                if key != OFFSET_KEY:
                    yield key, value

    async def commit(self, partition: int, changes: Mapping[bytes, bytes | None],
                     sender: BatchSender) -> None:
        if not changes:
            return
        deliveries = await sender.send_changes(f"{self.name}-changelog", partition, changes)
        sent = await asyncio.gather(*deliveries)
        write_rocksdb(self.dbs[partition], changes,
                      (OFFSET_KEY, max(metadata.offset for metadata in sent)))

    def overlay(self, partition: int) -> Overlay:
        return Overlay(self, partition)  # type: ignore[arg-type]

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()


class WorkerPath:
    """The worker's batch path over `Table`s and `Producer`, with CPU time per stage."""

    def __init__(self, policies: Policies, root: Path, now: int) -> None:
        engine = Engine(policies)
        self.topics = TopicCatalogue(prefix="bench.", partitions=PARTITIONS)
        self.producer = Producer()
        self.sender = BatchSender(self.producer, PARTITIONS)
        self.metrics = MonitorMetrics(CollectorRegistry(),
                                      metrics=[m.name for m in policies.metrics],
                                      targets=policy_targets(policies))
        self.clocks = Table(root, "clocks")
        self.processor = ClockProcessor(engine, self.clocks, self.topics, self.metrics,
                                        clock=lambda: now, max_future_ms=60_000)
        counts = Table(root, "counts")
        self.tables = [self.clocks, counts]
        compliance = ComplianceProcessor(
            counts, self.topics,  # type: ignore[arg-type]
            lambda service, customer, ratio: policies.terms(service, customer).credit_for(ratio),
            engine.lateness_ms, self.metrics)
        app = SimpleNamespace(slamon_sender=self.sender)
        self.compliance = ComplianceService(app, compliance, counts,  # type: ignore[arg-type]
                                            None, PARTITIONS)  # type: ignore[arg-type]
        self.compliance.declared = True
        self.now = now
        self.cpu = dict.fromkeys(STAGES, 0.0)
        self.inputs: defaultdict[int, list[SimpleNamespace]] = defaultdict(list)
        self.ticket_ids: set[str] = set()  # of the breaches, warnings, outcomes, retractions

    async def run(self, by_partition: dict[int, list[tuple[bytes, bytes, int]]]) -> None:
        starts = dict.fromkeys(by_partition, 0)
        while starts:
            for partition in list(starts):
                start = starts[partition]
                chunk = by_partition[partition][start:start + BATCH]
                if not chunk:
                    del starts[partition]
                    continue
                starts[partition] = start + BATCH
                await self.events(partition, chunk)
            await self.count_compliance()
        for partition in by_partition:
            began = time.process_time()
            batch = self.processor.fire_due(partition, self.now)
            self.cpu["fire"] += time.process_time() - began
            await self.complete(batch)
        await self.count_compliance()

    async def events(self, partition: int, chunk: list[tuple[bytes, bytes, int]]) -> None:
        began = time.process_time()
        batch = self.processor.apply_events(partition, chunk, now=None)
        self.cpu["apply"] += time.process_time() - began
        await self.complete(batch)

    async def complete(self, batch: Batch) -> None:
        """`ClockService._complete`: outputs sent, states to changelog and store, commit."""
        cpu, clock = self.cpu, time.process_time
        began = clock()
        await asyncio.gather(*await self.sender.send(batch.outputs))
        sent = clock()
        changes = self.processor.prepare(batch)
        prepared = clock()
        await self.clocks.commit(batch.partition, changes, self.sender)
        stored = clock()
        self.processor.commit(batch)
        cpu["send"] += sent - began
        cpu["prepare"] += prepared - sent
        cpu["changelog_store"] += stored - prepared
        cpu["commit"] += clock() - stored
        compliance_input = self.topics.compliance_input
        for output in batch.outputs:  # the compliance stage's input, as Kafka would hand it
            if output.topic == compliance_input:
                inputs = self.inputs[self.sender.partition(output.key)]
                inputs.append(SimpleNamespace(offset=len(inputs), value=output.value))
        self.ticket_ids.update(r["id"] for r in batch.records if r["kind"] in TICKET_KINDS)

    async def count_compliance(self) -> None:
        began = time.process_time()
        for partition, inputs in sorted(self.inputs.items()):
            for start in range(0, len(inputs), BATCH):
                await self.compliance.handle(TP("bench.compliance.input", partition),
                                             inputs[start:start + BATCH])
        self.inputs.clear()
        self.cpu["compliance"] += time.process_time() - began

    def close(self) -> None:
        for table in self.tables:
            table.close()


class GcTime:
    """A `gc.callbacks` entry: collections per generation and the CPU time they took."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            generation = info["generation"]
            self.count[generation] += 1
            self.seconds[generation] += time.process_time() - self._began

    def report(self, events: int) -> dict:
        return {"collections": self.count,
                "us_per_event": [round(s / events * 1e6, 2) for s in self.seconds]}


def run_path(policies: Policies, by_partition: dict[int, list[tuple[bytes, bytes, int]]],
             now: int, events: int, thresholds: tuple[int, ...]) -> dict:
    root = Path(tempfile.mkdtemp(prefix="slamon-workerpath-"))
    collections, before = GcTime(), gc.get_threshold()
    try:
        path = WorkerPath(policies, root, now)
        gc.collect()
        gc.freeze()  # as `slamon worker` does once started
        gc.set_threshold(*thresholds)
        gc.callbacks.append(collections)
        began = time.process_time()
        asyncio.run(path.run(by_partition))
        cpu = time.process_time() - began
        path.close()
    finally:
        if collections in gc.callbacks:
            gc.callbacks.remove(collections)
        gc.set_threshold(*before)
        gc.unfreeze()
        shutil.rmtree(root, ignore_errors=True)
    per_event = {stage: round(seconds / events * 1e6, 2) for stage, seconds in path.cpu.items()}
    return {"cpu_s": round(cpu, 3), "events_per_cpu_s": round(events / cpu),
            "us_per_event": per_event, "messages_produced": path.producer.messages,
            "gc": collections.report(events),
            "ticket_ids": sorted(path.ticket_ids)}


def run_engine(engine: Engine, values: list[bytes], as_of: int) -> dict:
    replay = Replay(engine)
    loads, feed = orjson.loads, replay.feed
    gc.collect()
    gc.disable()  # as `slamon replay` runs
    try:
        began = time.process_time()
        records = []
        for number, raw in enumerate(values, 1):
            records += feed(loads(raw), number)
        records += replay.finish(as_of)
        cpu = time.process_time() - began
    finally:
        gc.enable()
    return {"cpu_s": round(cpu, 3), "events_per_cpu_s": round(len(values) / cpu),
            "ticket_ids": sorted({r["id"] for r in records if r.get("kind") in TICKET_KINDS})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs of each")
    parser.add_argument("--gc", default=",".join(map(str, GC_THRESHOLDS)),
                        help="the path's garbage collection thresholds (default: the worker's)")
    args = parser.parse_args(argv)
    thresholds = tuple(int(n) for n in args.gc.split(","))

    policy_file = Path(tempfile.mkdtemp(prefix="slamon-workerpath-")) / "policies.yaml"
    policy_file.write_text(BENCH_POLICIES)
    policies = load_policies(policy_file)
    shutil.rmtree(policy_file.parent)
    encoded, hours = backlog_events(args.events, PARTITIONS)
    now = int(time.time() * 1000)
    by_partition: dict[int, list[tuple[bytes, bytes, int]]] = defaultdict(list)
    for message in encoded:
        records = by_partition[message.partition]
        records.append((message.key, message.value, len(records)))
    values = [message.value for message in encoded]

    paths, engines = [], []
    for _ in range(args.rounds):  # alternating, so a slower spell of the machine hits both
        paths.append(run_path(policies, by_partition, now, len(encoded), thresholds))
        engines.append(run_engine(Engine(policies), values, now))
    path = min(paths, key=lambda r: r["cpu_s"])
    engine = min(engines, key=lambda r: r["cpu_s"])
    same = all(r["ticket_ids"] == engine["ticket_ids"] for r in [*paths, *engines])
    ids = len(engine["ticket_ids"])
    for result in (*paths, *engines):
        del result["ticket_ids"]
    result = {
        "events": len(encoded), "backlog_hours": hours, "partitions": PARTITIONS,
        "gc_thresholds": thresholds,
        "python": platform.python_version(), "engine_module": sys.modules["sla.engine"].__file__,
        "path": path, "engine_alone": engine,
        "path_to_engine_cpu": round(path["cpu_s"] / engine["cpu_s"], 2),
        "ticket_record_ids": ids, "same_ids_as_replay": same,
        "runs": {"path_cpu_s": [r["cpu_s"] for r in paths],
                 "engine_cpu_s": [r["cpu_s"] for r in engines]},
    }
    print(json.dumps(result, indent=2))
    stages = ", ".join(f"{stage} {us}" for stage, us in path["us_per_event"].items())
    print(f"worker path: {path['events_per_cpu_s']:,} events/cpu-s "
          f"(engine alone {engine['events_per_cpu_s']:,}, path/engine cpu "
          f"{result['path_to_engine_cpu']}x); us/event: {stages}; "
          f"ids {'same as' if same else 'DIFFER from'} replay", file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
