"""The chaos kit's backlog: tickets put on the events topic before a worker reads it.

Issue 10's batch path takes each partition's records up to ~1,000 at a time. A live trickle
gives it batches of a few records; a backlog (a worker catching up after a deploy, an
outage, a rebalance) gives it full ones, and that is where a kill or a rebalance lands
mid-batch. `fill` writes such a backlog with the rig's `Traffic` (so the comparison sees
every event) and returns once the broker acknowledged all of it, before any worker reads.

Every event lies in the past of the fill (event time), ordered by `ts` as a day's stream
would be, so nothing in it is late input: each event that stops a clock is on the topic
before the instant it stops the clock at, whatever the worker does. The policy has
deadlines on both sides of the run's end:

- P1 (3 s / 8 s) and P2 (20 s / 40 s): due before the fill or within QUIET_AFTER of its
  newest event, so they fire during the run, most of them only once a partition caught
  up (a tick waits for the backlog; agents/clocks.py);
- P3 (1 h / 4 h): due long after the run; replay `--as-of` the end of the run agrees.

Timestamps sit on a grid: an `opened` at 5 ms past a multiple of 10 ms, every later
event on a multiple of 10. A deadline is the opening plus whole seconds plus differences
of later events, so it ends in 5 and never equals an event's `ts` (where live and replay
could order a deadline and an event differently).

`Progress` watches a run from outside: each worker's applied-events counter (/metrics)
and the consumer group's committed offsets against the backlog's end offsets.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from tests.integration.chaoskit import ChaosWorker
from tests.integration.chaostraffic import Sent, Traffic, partition_of

__all__ = ["BACKLOG", "BACKLOG_POLICY", "QUIET_AFTER", "Backlog", "Progress", "backlog_events",
           "ensure_topic", "fill"]

BACKLOG = "backlog"  # the Traffic category of backlog events (see Traffic.late_tickets)
BACKLOG_POLICY = """\
version: {version}
corporate:
  calendar: 24x7
  warn_at: [0.5]
  targets:
    P1: {{response: 3s, resolution: 8s}}
    P2: {{response: 20s, resolution: 40s}}
    P3: {{response: 1h, resolution: 4h}}
"""
# Seconds after the newest backlog event by which every P1/P2 instant is due (40 s at
# most: a resumed or reopened clock has at most its target left); P3's first is 30 min on.
QUIET_AFTER = 42.0
PRIORITIES = {"P1": 3, "P2": 4, "P3": 3}
_EVENTS_TOTAL = re.compile(rb"^slamon_events_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


@dataclass
class Backlog:
    """What `fill` put on the topic: counts, the newest `ts`, each partition's end offset."""

    events: int
    tickets: int
    newest: float  # epoch seconds of the newest event's ts
    ends: dict[int, int]  # partition -> the offset after its last backlog event
    seconds: float  # how long sending and acknowledging took

    @property
    def quiet_after(self) -> float:
        """time.time() after which nothing of the backlog's P1/P2 tickets is due."""
        return self.newest + QUIET_AFTER


def backlog_events(rng: random.Random, tag: str, tickets: int, newest_ms: int,
                   span_ms: int) -> list[dict]:
    """`tickets` tickets opened over the `span_ms` before `newest_ms`, each with a random
    walk of follow-ups (0.2-6 s apart, none after `newest_ms`); all events sorted by ts."""
    events: list[dict] = []
    slots = span_ms // 10
    for number in range(tickets):
        opened = newest_ms - rng.randrange(1, slots + 1) * 10 + 5  # 5 ms past the grid
        events += _walk(rng, f"bl-{tag}-{number}", opened, newest_ms)
    events.sort(key=lambda event: event["ts"])
    return events


def _walk(rng: random.Random, ticket: str, opened: int, newest_ms: int) -> Iterator[dict]:
    """One ticket's events: opened, then responses, pauses, retargets, resolutions,
    reopenings, a cancel or a close, as an agent's day would have them."""
    priority = rng.choices(list(PRIORITIES), weights=list(PRIORITIES.values()))[0]
    yield {"event_id": f"{ticket}:0", "ticket_id": ticket, "type": "opened", "ts": opened,
           "service": "email", "customer": rng.choice(("acme", "globex")),
           "priority": priority}
    ts = opened - 5  # follow-ups on multiples of 10 ms
    responded = resolved = paused = False
    for step in range(1, rng.randint(4, 14)):
        ts += rng.randrange(20, 600) * 10
        if ts > newest_ms:
            return
        kind = _next_kind(rng, responded, resolved, paused)
        event = {"event_id": f"{ticket}:{step}", "ticket_id": ticket, "type": kind, "ts": ts}
        if kind == "priority_changed":
            event["priority"] = rng.choice(list(PRIORITIES))
        yield event
        if kind in ("closed", "cancelled"):
            return
        paused = kind == "paused" or (paused and kind == "priority_changed")
        responded = responded or kind in ("responded", "resolved")
        resolved = kind == "resolved" or (resolved and kind != "reopened")


def _next_kind(rng: random.Random, responded: bool, resolved: bool, paused: bool) -> str:
    if paused:
        choices = {"resumed": 6, "resolved": 1, "cancelled": 0.2}
    elif resolved:
        choices = {"reopened": 2, "closed": 3}
    elif responded:
        choices = {"resolved": 3, "paused": 1.5, "priority_changed": 0.5, "closed": 0.3}
    else:
        choices = {"responded": 3, "paused": 1.5, "priority_changed": 0.7, "cancelled": 0.3,
                   "resolved": 0.3}
    return rng.choices(list(choices), weights=list(choices.values()))[0]


def fill(traffic: Traffic, tickets: int, span: float = 120.0, seed: int = 23) -> Backlog:
    """Put a backlog of `tickets` tickets on `traffic`'s topic, recorded in `traffic.sent`.

    The topic is created with `traffic.partitions` partitions if it does not exist (a
    worker declares the same count). The events go out in batches of aiokafka's producer
    (kafka-python's per-message send costs ~0.5 ms each on a busy 2-core box); each is
    keyed by ticket on the partition Kafka's default partitioner picks, so the worker sees
    what any producer would have sent. Returns once the broker acknowledged all of it.
    """
    started = time.time()
    ensure_topic(traffic.bootstrap, traffic.topic, traffic.partitions)
    newest_ms = int(started * 1000) // 10 * 10
    events = backlog_events(random.Random(seed), traffic.tag, tickets, newest_ms,
                            round(span * 1000))
    partitions: dict[str, int] = {}
    queued: dict[int, list[Sent]] = {}
    for event in events:
        ticket = event["ticket_id"]
        if ticket not in partitions:
            partitions[ticket] = partition_of(ticket.encode(), traffic.partitions)
        item = Sent(ticket.encode(), orjson.dumps(event), event, True, BACKLOG, started)
        queued.setdefault(partitions[ticket], []).append(item)
    asyncio.run(_send(traffic.bootstrap, traffic.topic, queued))
    sent = [item for items in queued.values() for item in items]
    with traffic.lock:
        traffic.sent.extend(sent)
    ends = {p: max(item.offset or 0 for item in items) + 1 for p, items in queued.items()}
    return Backlog(len(sent), tickets, newest_ms / 1000, ends, round(time.time() - started, 1))


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create `topic` with `partitions` partitions unless it exists."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="chaos-backlog")
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


async def _send(bootstrap: str, topic: str, queued: dict[int, list[Sent]],
                per_batch: int = 1000) -> None:
    """Send each partition's items in order, a batch at a time; set their offsets.

    AssertionError (a harness fault) when a batch is refused or a partition's offsets do
    not follow the order the items were queued in.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                max_batch_size=1024 * 1024, max_request_size=4 * 1024 * 1024,
                                request_timeout_ms=120_000)
    await producer.start()
    try:
        pending = []
        for partition, items in queued.items():
            first = 0
            while first < len(items):
                batch, chunk = producer.create_batch(), []
                for item in items[first:first + per_batch]:
                    if batch.append(key=item.key, value=item.value, timestamp=None) is None:
                        break  # full: the rest goes in the next batch
                    chunk.append(item)
                assert chunk, f"a backlog event of {len(items[first].value)} bytes fits no batch"
                first += len(chunk)
                pending.append((partition, chunk,
                                await producer.send_batch(batch, topic, partition=partition)))
        for partition, chunk, future in pending:
            base = (await future).offset
            acked = time.time()
            for index, item in enumerate(chunk):
                item.acked_at, item.partition, item.offset = acked, partition, base + index
    finally:
        await producer.stop()
    for partition, items in queued.items():
        offsets = [-1 if item.offset is None else item.offset for item in items]
        assert offsets == sorted(offsets), f"backlog partition {partition} out of order"


class Progress:
    """Where a consumer group stands on a backlog, seen from outside the workers."""

    def __init__(self, bootstrap: str, group: str, topic: str, backlog: Backlog) -> None:
        self.group, self.topic, self.backlog = group, topic, backlog
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap,
                                      client_id=f"chaos-progress-{group}")

    def committed(self) -> dict[int, int]:
        """Partition -> the group's committed offset on the events topic (0 if none)."""
        wanted = [TopicPartition(self.topic, p) for p in self.backlog.ends]
        offsets = self.admin.list_group_offsets({self.group: wanted}).get(self.group, {})
        found = {tp.partition: meta.offset for tp, meta in offsets.items()
                 if tp.topic == self.topic and meta.offset >= 0}
        return {p: found.get(p, 0) for p in sorted(self.backlog.ends)}

    def committed_share(self) -> float:
        """Committed offsets over the backlog's end offsets, summed over partitions."""
        committed = self.committed()
        done = sum(min(committed[p], end) for p, end in self.backlog.ends.items())
        return round(done / max(1, sum(self.backlog.ends.values())), 3)

    def left(self) -> dict[int, int]:
        """Partition -> backlog events not yet committed (partitions with none left omitted)."""
        committed = self.committed()
        return {p: end - committed[p] for p, end in self.backlog.ends.items()
                if end > committed[p]}

    def owned(self, worker: ChaosWorker) -> list[int] | None:
        """The events partitions the group assigned to `worker` (found by its worker id,
        `<hostname>-<web port>` by default); None when the group does not say."""
        port = worker.env["SLAMON_WEB_PORT"]
        try:
            described = self.admin.describe_groups([self.group]).get(self.group) or {}
        except KafkaError:
            return None
        for member in described.get("members") or []:
            if not str(member.get("group_instance_id") or "").endswith(f"-{port}"):
                continue
            assignment = member.get("member_assignment")
            if not isinstance(assignment, dict):
                return None
            return sorted(p for entry in assignment.get("assigned_partitions") or []
                          if entry.get("topic") == self.topic for p in entry.get("partitions"))
        return None

    def group_state(self) -> str | None:
        """The group's state at its coordinator ("Stable", "PreparingRebalance", ...); None
        when it does not answer."""
        try:
            described = self.admin.describe_groups([self.group]).get(self.group) or {}
        except KafkaError:
            return None
        return described.get("group_state")

    @staticmethod
    def applied(worker: ChaosWorker) -> int | None:
        """The worker's applied events so far (its slamon_events_total, every type); None
        when it does not answer. Counted since the process started."""
        status, body = worker.get("/metrics", timeout=2.0)
        if status != 200:
            return None
        return round(sum(float(n) for n in _EVENTS_TOTAL.findall(body)))

    def wait_applied(self, worker: ChaosWorker, count: int, timeout: float,
                     every: float = 0.05) -> int | None:
        """Poll until `worker` applied at least `count` events; the count seen then, or
        None when `timeout` passed (or the worker died) first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and worker.alive:
            applied = self.applied(worker)
            if applied is not None and applied >= count:
                return applied
            time.sleep(every)
        return None

    def close(self) -> None:
        self.admin.close()
