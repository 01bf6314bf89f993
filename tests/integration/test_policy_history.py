"""A clock keeps the policy version it started with, across a worker restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.policyhistory import parse_history
from sla.events import format_ts
from tests.integration.monitorkit import Reader, Worker, keyed, produce, worker_env

pytestmark = pytest.mark.integration

V1 = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: [0.5]
  targets: {P1: {response: 12s, resolution: 1h}}
"""
V2 = """\
version: 2
corporate:
  calendar: 24x7
  warn_at: []
  targets: {P1: {response: 1h, resolution: 8h}}
"""


def _wait_applied(worker: Worker, sample: str, timeout: float = 60.0) -> None:
    """Until the worker's /metrics shows `sample`: the event is applied and its state stored."""
    deadline = time.monotonic() + timeout
    while sample.encode() not in worker.get("/metrics")[1]:
        assert time.monotonic() < deadline, f"{sample} not seen in {timeout:.0f} s"
        time.sleep(0.2)


def test_parse_history_keeps_the_latest_text_per_version_and_skips_bad_ones():
    history = parse_history([(b"1", V1.encode()), (b"x", b"?"), (b"2", b"version: [")],
                            "sla.policies")
    assert list(history) == [1]
    assert history[1][1].version == 1


def test_a_restarted_worker_keeps_each_clock_on_its_policy_version(
        kafka_bootstrap: str, tmp_path: Path, free_port: Callable[[], int]) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(V1)
    env = worker_env(kafka_bootstrap, tmp_path, free_port(), policies,
                     SLAMON_STORE="rocksdb://")
    worker = Worker(env, tmp_path / "worker.log").start()
    try:
        reader = Reader(kafka_bootstrap, [worker.prefix + "warnings", worker.prefix + "breaches"])
        opened = int(time.time() * 1000)
        produce(kafka_bootstrap, worker.prefix + "events", keyed([{
            "event_id": "o1", "ticket_id": "T", "type": "opened", "ts": opened,
            "service": "email", "customer": "acme", "priority": "P1"}]))
        _wait_applied(worker, 'slamon_events_total{type="opened"} 1.0')  # clock started on v1
        assert worker.stop() == 0, worker.tail()
        policies.write_text(V2)  # the new version applies to clocks started from now on
        worker.start()
        records = reader.until(lambda rs: any(r.get("kind") == "breach" for r in rs), 60)
        kinds = {(r["kind"], r.get("threshold")) for r in records}
        assert ("warning", 0.5) in kinds, worker.tail()  # v1 warns at half the target
        breach = next(r for r in records if r["kind"] == "breach")
        assert (breach["deadline"], breach["policy_version"]) == (format_ts(opened + 12_000), 1)
        reader.close()
    finally:
        worker.stop()
