"""The live monitor against the real broker: same answers as replay, breaches on their own,
bad input to the DLQ, and a restart that loses nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from agents.batch.sender import partition_for
from agents.policyfile import load_policies
from sla.compliance import windows_of
from sla.engine import Engine
from sla.events import format_ts, parse_ts
from sla.replay import Replay
from tests.integration.monitorkit import (
    REPO_ROOT,
    Reader,
    Worker,
    keyed,
    net,
    produce,
    worker_env,
)
from tests.integration.scenarios.events import scenario_events
from tests.unit.test_schemas import assert_record

pytestmark = pytest.mark.integration

SCENARIO_POLICIES = Path(__file__).parent / "scenarios" / "policies.yaml"
SHORT_POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: [0.5]
  targets:
    P1: {response: 3s, resolution: 1h}
    P2: {response: 8s, resolution: 1h}
"""
OUTPUTS = ("breaches", "warnings", "outcomes", "compliance")


@pytest.fixture
def short_policies(tmp_path: Path) -> Path:
    path = tmp_path / "short.yaml"
    path.write_text(SHORT_POLICIES)
    return path


@pytest.fixture
def make_worker(kafka_bootstrap: str, tmp_path: Path, free_port: Callable[[], int],
                request: pytest.FixtureRequest) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def make(policies: Path, **overrides: str) -> Worker:
        env = worker_env(kafka_bootstrap, tmp_path, free_port(), policies, **overrides)
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        if worker.process is not None:
            worker.stop()
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            print(worker.tail())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _replay(events: list[dict], policies: Path, as_of: int) -> list[dict]:
    replay = Replay(Engine(load_policies(policies)))
    records = []
    for line, event in enumerate(events, 1):
        records += replay.feed(orjson.loads(orjson.dumps(event)), line)
    return records + replay.finish(as_of)


def test_live_gives_the_same_records_as_replay(kafka_bootstrap, make_worker):
    events = scenario_events()
    # One partition: outcomes then reach the compliance agent in the order replay sees them.
    # With several, a window may close on one partition's stops before another's arrive
    # (beyond the lateness they are not counted); that skew is the lateness setting's job.
    worker = make_worker(SCENARIO_POLICIES, SLAMON_PARTITIONS="1").start()
    reader = Reader(kafka_bootstrap, [worker.prefix + name for name in OUTPUTS])
    produce(kafka_bootstrap, worker.prefix + "events", keyed(events))
    live = reader.settle(quiet=4.0, timeout=120)
    expected = _replay(events, SCENARIO_POLICIES, as_of=_now_ms())

    live_alive, live_outcomes = net(live)
    replay_alive, replay_outcomes = net(expected)
    assert live_alive == replay_alive
    assert live_outcomes == replay_outcomes
    # Every record replay emits, the monitor emitted too, under the same id.
    replay_ids = {r["id"] for r in expected if r["kind"] in ("breach", "warning", "outcome")}
    assert replay_ids <= {r["id"] for r in live if "id" in r}
    assert {"silent:response:0:breach", "retarget:response:0:breach",
            "cancel:response:0:breach", "office:response:0:breach"} <= live_alive
    # Compliance windows the monitor closed (by its partition's watermark) hold what replay's do.
    live_windows = {r["id"]: r for r in live if r.get("kind") == "compliance"}
    replay_windows = {r["id"]: r for r in expected if r["kind"] == "compliance"}
    assert live_windows, "no compliance window closed"
    fields = ("met", "breached", "total", "compliance_ratio", "p50_seconds", "p99_seconds")
    for window_id, record in live_windows.items():
        assert {f: record[f] for f in fields} == {f: replay_windows[window_id][f]
                                                  for f in fields}, window_id
    # The event API's contract (streams/schemas, docs/asyncapi.yaml) holds for live records.
    for record in live:
        if "kind" in record and "slamon-reason" not in record["_headers"]:
            assert_record({k: v for k, v in record.items() if not k.startswith("_")})
    reader.close()


def test_a_breach_fires_on_its_own_without_another_event(kafka_bootstrap, make_worker,
                                                         short_policies):
    worker = make_worker(short_policies).start()
    reader = Reader(kafka_bootstrap, [worker.prefix + "breaches"])
    opened = _now_ms()
    produce(kafka_bootstrap, worker.prefix + "events", keyed([{
        "event_id": "e1", "ticket_id": "quiet", "type": "opened", "ts": opened,
        "service": "email", "customer": "acme", "priority": "P1"}]))
    records = reader.until(lambda rs: any(r.get("metric") == "response" for r in rs), 60)
    breach = next(r for r in records if r.get("metric") == "response")
    assert breach["id"] == "quiet:response:0:breach"
    assert breach["deadline"] == format_ts(opened + 3000)
    delay = breach["_arrived"] - (opened + 3000) / 1000
    print(f"\nbreach detection: deadline -> record on {worker.prefix}breaches: {delay:.3f} s")
    assert 0 <= delay < 10, delay
    reader.close()


def test_bad_messages_go_to_the_dlq_and_good_ones_are_processed(kafka_bootstrap, make_worker,
                                                                short_policies):
    worker = make_worker(short_policies).start()
    reader = Reader(kafka_bootstrap, [worker.prefix + "events.dlq", worker.prefix + "outcomes"])
    good = [{"event_id": "g1", "ticket_id": "good", "type": "opened", "ts": _now_ms(),
             "service": "email", "customer": "acme", "priority": "P2"},
            {"event_id": "g2", "ticket_id": "good", "type": "responded", "ts": _now_ms()}]
    bad = [
        (b"good", b"this is not json"),
        (b"good", b'{"event_id": "x1", "ticket_id": "good", "ts": 1796115600000}'),
        (b"good", orjson.dumps({"event_id": "x2", "ticket_id": "good", "type": "exploded",
                                "ts": _now_ms()})),
        (b"good", b'{"event_id": "x3", "pad": "' + b"x" * 100_000 + b'"}'),
        (b"other", orjson.dumps({"event_id": "x4", "ticket_id": "other", "type": "responded",
                                 "ts": "yesterday"})),
    ]
    produce(kafka_bootstrap, worker.prefix + "events",
            [keyed(good)[0], *bad, keyed(good)[1]])
    records = reader.until(lambda rs: len([r for r in rs if "slamon-reason" in r["_headers"]])
                           >= 5 and any(r.get("kind") == "outcome" for r in rs), 60)
    dead = [r for r in records if "slamon-reason" in r["_headers"]]
    assert sorted(r["_headers"]["slamon-reason"].decode() for r in dead) == sorted(
        ["not_json", "missing_field", "unknown_type", "too_large", "bad_timestamp"])
    assert {r["_raw"] for r in dead} == {value for _, value in bad}
    outcome = next(r for r in records if r.get("kind") == "outcome")
    assert (outcome["ticket_id"], outcome["metric"], outcome["status"]) == (
        "good", "response", "met")
    assert worker.process.poll() is None
    reader.close()


def test_a_restarted_worker_continues_where_it_left_off(kafka_bootstrap, make_worker,
                                                        short_policies, tmp_path):
    worker = make_worker(short_policies, SLAMON_STORE="rocksdb://",
                         SLAMON_PARTITIONS="2").start()
    reader = Reader(kafka_bootstrap, [worker.prefix + name for name in OUTPUTS])
    opened = _now_ms()
    produce(kafka_bootstrap, worker.prefix + "events", keyed([
        {"event_id": "a1", "ticket_id": "A", "type": "opened", "ts": opened,
         "service": "email", "customer": "acme", "priority": "P2"},
        {"event_id": "b1", "ticket_id": "B", "type": "opened", "ts": opened,
         "service": "email", "customer": "acme", "priority": "P1"},
        {"event_id": "b2", "ticket_id": "B", "type": "responded", "ts": opened + 1000},
    ]))
    reader.until(lambda rs: any(r.get("ticket_id") == "B" and r.get("kind") == "outcome"
                                for r in rs), 60)
    assert worker.stop() == 0, worker.tail()
    time.sleep(max(0.0, (opened + 8000) / 1000 - time.time()) + 1)  # A's deadline passes
    worker.start()
    records = reader.until(lambda rs: any(r.get("ticket_id") == "A" and r.get("kind") == "breach"
                                          for r in rs), 60)
    reader.settle(quiet=3.0)
    records = reader.records
    breach = [r for r in records if r.get("ticket_id") == "A" and r.get("kind") == "breach"]
    assert {r["id"] for r in breach} == {"A:response:0:breach"}
    assert breach[0]["deadline"] == format_ts(opened + 8000)
    by_slot: dict[str, set[str]] = {}
    for r in records:
        if "id" in r:
            by_slot.setdefault(r["id"].split(":", 1)[0] + r["kind"] + str(r.get("metric")),
                               set()).add(r["id"])
    assert all(len(ids) == 1 for ids in by_slot.values()), by_slot
    reader.close()


def test_a_worker_refuses_topics_with_another_partition_count(kafka_bootstrap, make_worker,
                                                              short_policies, kafka_admin):
    from kafka.admin import NewTopic

    worker = make_worker(short_policies, SLAMON_PARTITIONS="2")
    kafka_admin.create_topics([NewTopic(worker.prefix + "events", 3, 1)])
    done = subprocess.run([sys.executable, "-m", "agents.cli", "worker"], cwd=REPO_ROOT,
                          env=worker.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"topic {worker.prefix}events has 3 partitions but the setting partitions" in (
        done.stderr)


def test_a_worker_refuses_topics_that_would_refuse_its_record_batches(
        kafka_bootstrap, make_worker, short_policies, kafka_admin):
    from kafka.admin import NewTopic

    worker = make_worker(short_policies, SLAMON_PRODUCER_BATCH_BYTES="200000")
    kafka_admin.create_topics([NewTopic(worker.prefix + "breaches", 2, 1,
                                        topic_configs={"max.message.bytes": "100000"})])
    done = subprocess.run([sys.executable, "-m", "agents.cli", "worker"], cwd=REPO_ROOT,
                          env=worker.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (f"topic {worker.prefix}breaches accepts record batches of at most 100,000 bytes "
            f"(max.message.bytes) but the setting producer_batch_bytes "
            f"(SLAMON_PRODUCER_BATCH_BYTES) is 200,000") in done.stderr


def test_compliance_counted_in_the_earlier_two_tables_is_counted_after_an_upgrade(
        kafka_bootstrap, make_worker, short_policies):
    """A deployment upgraded from the layout with two compliance tables: a clock counted in
    them before the upgrade (its rows on their changelogs) is counted in its hour window
    beside one counted after it."""
    worker = make_worker(short_policies, SLAMON_LATENESS="0").start()
    assert worker.stop() == 0, worker.tail()  # its topics exist now, with their partitions
    hour = parse_ts("2026-11-02T10:00:00Z")
    dims = ["email", "acme", "P2", "response"]
    lane = partition_for(b"email|acme", 2)  # the compliance input's partition of the pair
    entries, clocks = (f"{worker.env['SLAMON_APP_ID']}-slamon-compliance-{name}-changelog"
                       for name in ("entries", "clocks"))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for kind, start, end in windows_of(hour + 300_000):
        producer.send(entries, partition=lane,
                      key=orjson.dumps([*dims, kind, start, "X:response:0"]),
                      value=orjson.dumps([lane, end, True, 5.0]))
    producer.send(clocks, partition=lane, key=b"X:response:0",
                  value=orjson.dumps([*dims, hour + 300_000]))
    producer.flush(timeout=30)
    producer.close()

    worker.start()
    reader = Reader(kafka_bootstrap, [worker.prefix + "compliance"])
    produce(kafka_bootstrap, worker.prefix + "events", keyed([
        {"event_id": "y1", "ticket_id": "Y", "type": "opened", "ts": hour + 600_000,
         "service": "email", "customer": "acme", "priority": "P2"},
        {"event_id": "y2", "ticket_id": "Y", "type": "responded", "ts": hour + 1_200_000},
        {"event_id": "z1", "ticket_id": "Z", "type": "opened", "ts": hour + 2 * 3_600_000,
         "service": "email", "customer": "acme", "priority": "P2"},
        {"event_id": "z2", "ticket_id": "Z", "type": "responded", "ts": hour + 2 * 3_600_000 + 1},
    ]))
    window_id = f"email:acme:P2:response:hour:{format_ts(hour)}"
    records = reader.until(lambda rs: any(r.get("id") == window_id for r in rs), 60)
    [window] = [r for r in records if r.get("id") == window_id]
    assert (window["total"], window["met"], window["breached"]) == (2, 1, 1), worker.tail()
    assert "moved 4 rows of the earlier layout" in worker.log.read_text()
    reader.close()
