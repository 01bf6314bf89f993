"""Times a live worker refuses (issue 9, defect 10): an event stamped decades ahead of its
clock (`future_ts`, by the max_future setting) and a time that is ISO 8601 but not
RFC 3339 (`bad_timestamp`) go to the DLQ with their reason; good events around them are
applied, and the future one does not close compliance windows early."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from sla.events import format_ts
from streams.outputs import read_dead_letter
from tests.integration.monitorkit import Reader, Worker, produce, worker_env

pytestmark = pytest.mark.integration

POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  targets:
    P1: {response: 15m, resolution: 4h}
"""


def _event(event_id: str, ticket: str, kind: str, ts: object, **fields: str) -> dict:
    return {"event_id": event_id, "ticket_id": ticket, "type": kind, "ts": ts, **fields}


def test_future_and_non_rfc3339_times_are_dead_lettered_with_their_reason(
    kafka_bootstrap: str, tmp_path: Path, free_port: Callable[[], int],
) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    worker = Worker(worker_env(kafka_bootstrap, tmp_path, free_port(), policies,
                               SLAMON_MAX_FUTURE="60"), tmp_path / "worker.log")
    worker.start()
    now = int(time.time() * 1000)
    opened = {"service": "email", "customer": "acme", "priority": "P1"}
    events = [
        _event("e1", "T1", "opened", format_ts(now - 60_000), **opened),
        _event("e2", "T1", "responded", "2056-11-29T10:00:00Z"),  # decades ahead
        _event("e3", "T1", "responded", format_ts(now + 600_000)),  # 10 min > max_future 60 s
        _event("e4", "T1", "responded", "2026-11-29 10:00:00+00:00:00"),  # not RFC 3339
        _event("e5", "T1", "responded", format_ts(now + 30_000)),  # within max_future: taken
    ]
    try:
        produce(kafka_bootstrap, f"{worker.prefix}events",
                [(b"T1", orjson.dumps(event)) for event in events])
        reader = Reader(kafka_bootstrap, [f"{worker.prefix}events.dlq",
                                          f"{worker.prefix}outcomes"])
        try:
            records = reader.until(
                lambda got: len(got) >= 4 and any(r.get("kind") == "outcome" for r in got), 60)
            messages = list(reader.messages)
        finally:
            reader.close()
        reasons = {}
        for message in messages:
            dead = read_dead_letter(message.headers)
            if dead is not None:
                reasons[orjson.loads(message.value)["event_id"]] = dead["reason"]
        assert reasons == {"e2": "future_ts", "e3": "future_ts", "e4": "bad_timestamp"}
        [outcome] = [r for r in records if r.get("kind") == "outcome"]
        assert outcome["metric"] == "response" and outcome["status"] == "met"
        assert outcome["stopped_at"] == events[4]["ts"]
    finally:
        worker.stop()
        print(worker.tail(40))
