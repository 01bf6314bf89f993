"""Satisfaction surveys on the live path: a worker on the real broker counts them in its
compliance windows as replay does, publishes the survey records, dead-letters the ones it
refuses and exports the CSAT metrics.

The tickets are stamped in the hour H that began three hours ago, so H's window closes as soon
as an outcome stamped now moves the watermark past its end plus the lateness (5 s):

ticket  response (target 30m)   closed   survey (H+55m)      response verdict
A       10m: met                H+40m    5 of 1..5: +        met
B       45m: breached           H+50m    1 of 1..5: -        breached
C       50m: breached           H+52m    4 of 1..5: +        breached
D       20m: met                (open)   3 of 1..5           rejected: survey_before_close
X       never seen                       good (1 of 0..1): + counted under web/acme, P2

Response, H, (email, acme, P1): clocks 2 met (A, D), 2 breached; 3 surveys (D's is refused),
2 positive; of the met clocks' surveys 1 of 1 positive, of the breached ones 1 of 2.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from agents.policyfile import load_policies
from sla.csat import CSAT_FIELDS
from sla.engine import Engine
from sla.events import format_ts
from sla.replay import Replay
from tests.integration.monitorkit import Reader, Worker, keyed, produce, worker_env

pytestmark = pytest.mark.integration

POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: []
  targets:
    P1: {response: 30m, resolution: 4h}
    P2: {response: 1h, resolution: 8h}
"""
HOUR = 3_600_000
MINUTE = 60_000


def _events(hour: int, now: int) -> list[dict]:
    def at(minutes: float) -> str:
        return format_ts(hour + round(minutes * MINUTE))

    events: list[dict] = []
    for ticket, responded, closed in (("A", 10, 40), ("B", 45, 50), ("C", 50, 52),
                                      ("D", 20, None)):
        events.append({"event_id": f"{ticket}-o", "ticket_id": ticket, "type": "opened",
                       "ts": at(0), "service": "email", "customer": "acme", "priority": "P1"})
        events.append({"event_id": f"{ticket}-r", "ticket_id": ticket, "type": "responded",
                       "ts": at(responded)})
        if closed is not None:
            events.append({"event_id": f"{ticket}-c", "ticket_id": ticket, "type": "closed",
                           "ts": at(closed)})
    for ticket, score, low, high, extra in (
            ("A", 5, 1, 5, {}), ("B", 1, 1, 5, {}), ("C", 4, 1, 5, {}), ("D", 3, 1, 5, {}),
            ("X", 1, 0, 1, {"service": "web", "customer": "acme", "priority": "P2"})):
        events.append({"event_id": f"{ticket}-s", "ticket_id": ticket, "type": "survey",
                       "ts": at(55), "score": score, "scale_min": low, "scale_max": high,
                       "comment": f"a comment about {ticket}", **extra})
    events.sort(key=lambda e: e["ts"])
    # An outcome stamped now: the compliance agent's watermark moves past H (+ lateness).
    events.append({"event_id": "now-o", "ticket_id": "now", "type": "opened", "ts": now - 1000,
                   "service": "email", "customer": "acme", "priority": "P2"})
    events.append({"event_id": "now-r", "ticket_id": "now", "type": "responded", "ts": now})
    return events


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Worker]:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    env = worker_env(kafka_bootstrap, tmp_path, free_port(), policies, SLAMON_PARTITIONS="1",
                     SLAMON_LATENESS="5")
    running = Worker(env, tmp_path / "worker.log").start()
    yield running
    code = running.stop()
    assert code == 0, running.tail()


def test_surveys_on_the_live_path(kafka_bootstrap: str, worker: Worker, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    hour = now - now % HOUR - 3 * HOUR
    events = _events(hour, now)
    start = format_ts(hour)
    response_id = f"email:acme:P1:response:hour:{start}"
    unknown_id = f"web:acme:P2:response:hour:{start}"
    reader = Reader(kafka_bootstrap, [worker.prefix + name for name in
                                      ("compliance", "outcomes", "events.dlq")])
    produce(kafka_bootstrap, worker.prefix + "events", keyed(events))
    records = reader.until(lambda rs: {response_id, unknown_id} <= {r.get("id") for r in rs}
                           and any(r["_topic"].endswith("events.dlq") for r in rs), 120)
    reader.close()
    windows = {r["id"]: r for r in records if r.get("kind") == "compliance"}
    response = windows[response_id]
    assert (response["met"], response["breached"]) == (2, 2)  # A, D met; B, C breached
    assert {f: response[f] for f in ("surveys", "positive", "surveys_met", "positive_met",
                                     "csat_met_ratio", "surveys_breached", "positive_breached",
                                     "csat_breached_ratio")} == {
        "surveys": 3, "positive": 2, "surveys_met": 1, "positive_met": 1, "csat_met_ratio": 1.0,
        "surveys_breached": 2, "positive_breached": 1, "csat_breached_ratio": 0.5}
    unknown = windows[unknown_id]
    assert (unknown["total"], unknown["surveys"], unknown["positive"]) == (0, 1, 1)

    # The same windows as replay, CSAT included.
    replay = Replay(Engine(load_policies(tmp_path / "policies.yaml")))
    expected: list[dict] = []
    for line, event in enumerate(events, 1):
        expected += replay.feed(orjson.loads(orjson.dumps(event)), line)
    replayed = {r["id"]: r for r in expected if r["kind"] == "compliance"}
    for window_id in (response_id, unknown_id, f"email:acme:P1:resolution:hour:{start}"):
        live, offline = windows[window_id], replayed[window_id]
        for field in ("met", "breached", "total", *CSAT_FIELDS):
            assert live[field] == offline[field], (window_id, field)

    surveys = {r["ticket_id"]: r for r in records if r.get("kind") == "survey"}
    assert set(surveys) == {"A", "B", "C", "X"}
    assert surveys["B"]["clocks"] == {"response": "breached", "resolution": "met"}
    # The comment is never kept: not in a survey or compliance record (a dead letter keeps
    # the input as it came, for a person to look at).
    assert all(b"comment" not in r["_raw"] for r in records if r.get("kind"))
    dead = [r for r in records if r["_topic"].endswith("events.dlq")]
    assert [(orjson.loads(r["_raw"])["ticket_id"], r["_headers"]["slamon-reason"])
            for r in dead] == [("D", b"survey_before_close")]

    status, body = worker.get("/metrics")
    text = body.decode()
    assert status == 200
    assert ('slamon_csat_surveys_total{customer="acme",positive="true",priority="P1",'
            'service="email"} 2.0') in text
    assert ('slamon_csat_ratio{customer="acme",priority="P1",service="email",window="hour"} '
            '0.6666666666666666') in text
    assert "comment" not in text
