"""The chaos kit's input: ticket events near the wall clock, probes, and fuzzed messages.

`Traffic` produces scripted P1 tickets in a background thread with kafka-python. Every
event is stamped with the wall clock at the moment it is sent, so the truth is simple:
`slamon replay` of the sent events (sorted by `ts`) with `--as-of` = the end of the run is
what the monitor must have emitted. The scripts keep each follow-up event away from the
ticket's due instants (`SHORT_POLICY`: response 3 s, resolution 8 s, a warning at half of
each), so a breach that replay does not produce was fired while the event that prevents it
was already on the topic. Each send's acknowledgement time, partition and offset are kept:
an event acknowledged long after its `ts` is late input (the test's fault, not the
monitor's) and excused by the comparison; the offset matches dead letters to messages.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

__all__ = [
    "SHORT_POLICY",
    "Sent",
    "Traffic",
    "due_ages",
    "partition_of",
    "policy_text",
]

SHORT_POLICY = """\
version: {version}
corporate:
  calendar: 24x7
  warn_at: [0.5]
  targets:
    P1: {{response: {response}s, resolution: 8s}}
"""


def policy_text(version: int = 1, response: int = 3) -> str:
    """The test policy: P1 response `response` s, resolution 8 s, warnings at half."""
    return SHORT_POLICY.format(version=version, response=response)


# SHORT_POLICY's P1 clocks, in seconds of running time, as `due_ages` models them.
RESPONSE_TARGET = 3.0
RESOLUTION_TARGET = 8.0
WARN_AT = 0.5
# script name -> follow-ups as (seconds after opening, type). A script's nominal times keep
# SAFE_BEFORE_DUE away from its dues; a follow-up the thread sends late is moved past the
# due it came close to (`due_ages` of what was really sent).
SCRIPTS: dict[str, tuple[tuple[float, str], ...]] = {
    "fast": ((0.7, "responded"), (2.2, "resolved"), (2.3, "closed")),
    "slow": ((5.0, "responded"), (6.0, "resolved"), (6.1, "closed")),
    "silent": (),
    "cancelled": ((2.0, "cancelled"),),
    "reopened": ((0.7, "responded"), (2.2, "resolved"), (2.5, "reopened"), (5.0, "resolved"),
                 (5.1, "closed")),
}
WEIGHTS = {"fast": 35, "slow": 20, "silent": 20, "cancelled": 10, "reopened": 15}
SAFE_BEFORE_DUE = 0.4  # a follow-up is never sent this close before a due instant
LATE_ACK = 0.3  # seconds between ts and acknowledgement beyond which input counts as late
STOPS_RESPONSE = frozenset({"responded", "resolved", "cancelled", "closed"})
STOPS_RESOLUTION = frozenset({"resolved", "cancelled", "closed"})


def due_ages(events: Iterable[tuple[float, str]]) -> list[float]:
    """When SHORT_POLICY's running clocks next cross a warning or a deadline, in seconds
    after opening, given a ticket's events so far as (seconds after opening, type).

    Computed from what was sent, not from the script: a reopening sent late moves the
    resolution clock's warning and deadline by as much.
    """
    response_runs = True
    resolution_since: float | None = 0.0  # when the running resolution clock last started
    resolution_spent = 0.0  # its running time before that
    for age, kind in events:
        if kind in STOPS_RESPONSE:
            response_runs = False
        if kind in STOPS_RESOLUTION and resolution_since is not None:
            resolution_spent += age - resolution_since
            resolution_since = None
        elif kind == "reopened" and resolution_since is None:
            resolution_since = age
    dues = [RESPONSE_TARGET * WARN_AT, RESPONSE_TARGET] if response_runs else []
    if resolution_since is not None:
        dues += [resolution_since + threshold - resolution_spent
                 for threshold in (RESOLUTION_TARGET * WARN_AT, RESOLUTION_TARGET)
                 if threshold > resolution_spent]
    return dues


def partition_of(key: bytes, partitions: int) -> int:
    """The partition kafka-python's (and Kafka's) default partitioner picks for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(slots=True)
class Sent:
    """One message handed to the producer, and what became of it."""

    key: bytes | None
    value: bytes
    event: dict | None  # the event, for good ones; None for fuzz
    good: bool
    category: str  # the script or fuzz category
    sent_at: float  # time.time() at send
    acked_at: float | None = None
    partition: int | None = None
    offset: int | None = None
    error: str | None = None


@dataclass
class _Ticket:
    ticket_id: str
    script: str
    opened: float  # time.time() of the opened event
    steps: int = 0
    sent: list[tuple[float, str]] = field(default_factory=list)  # (age, type) so far

    def record(self, age: float, kind: str) -> float:
        """Note an event sent; the latest instant (time.time()) anything is due now."""
        self.sent.append((age, kind))
        return self.opened + max(due_ages(self.sent), default=0.0)


@dataclass
class Traffic:
    """Scripted tickets at `rate` per second on `topic`, sent by a background thread."""

    bootstrap: str
    topic: str
    partitions: int
    rate: float = 10.0
    tag: str = "t"
    seed: int = 7
    wrong_key_share: float = 0.0  # share of silent tickets opened with a wrong (or no) key
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                      linger_ms=5, max_request_size=2 * 1024 * 1024,
                                      retries=1_000_000, request_timeout_ms=120_000,
                                      delivery_timeout_ms=600_000)
        self.lock = threading.Lock()
        self.opening = threading.Event()
        self.halt = threading.Event()
        self.tickets: dict[str, _Ticket] = {}
        self.pending: list[tuple[float, int, str]] = []  # heap: (when, seq, ticket_id)
        self.extra: list[tuple[bytes | None, bytes, str]] = []  # fuzz to interleave
        self.count = 0  # tickets opened
        self.seq = 0  # tie-breaker of the pending heap
        self.last_open = 0.0
        self.last_due = 0.0  # time.time() of the latest instant a ticket had something due
        self.thread = threading.Thread(target=self._run, name=f"traffic-{self.tag}", daemon=True)

    # -- control -------------------------------------------------------------
    def start(self) -> Traffic:
        self.opening.set()
        self.thread.start()
        return self

    def hold(self) -> None:
        """Stop opening tickets; send every follow-up still due; wait for their acks."""
        self.opening.clear()
        while True:
            with self.lock:
                if not self.pending:
                    break
            time.sleep(0.05)
        self.flush()

    def resume(self) -> None:
        self.opening.set()

    def stop(self) -> None:
        """`hold`, then end the thread (the producer stays for `close`)."""
        self.hold()
        self.halt.set()
        if self.thread.is_alive():
            self.thread.join(timeout=30)
        self.flush()

    def flush(self, timeout: float = 120.0) -> None:
        self.producer.flush(timeout=timeout)

    def close(self) -> None:
        self.halt.set()
        self.producer.close(timeout=10)

    @property
    def quiet_after(self) -> float:
        """time.time() after which nothing of the scripted tickets is due."""
        return max(self.last_open, self.last_due)

    # -- sending -------------------------------------------------------------
    def send(self, key: bytes | None, value: bytes, event: dict | None, good: bool,
             category: str) -> Sent:
        """Send one message now (any thread); its fate is recorded on the returned `Sent`."""
        item = Sent(key, value, event, good, category, time.time())
        with self.lock:
            self.sent.append(item)
        future = self.producer.send(self.topic, key=key, value=value)
        future.add_callback(_acked, item)
        future.add_errback(_failed, item)
        return item

    def send_event(self, event: dict, category: str, key: bytes | None = None) -> Sent:
        value = orjson.dumps(event)
        if key is None:
            key = event["ticket_id"].encode()
        return self.send(key, value, event, True, category)

    def inject(self, messages: Iterable[tuple[bytes | None, bytes, str]]) -> None:
        """Queue fuzz (key, value, category) to be sent among the good events."""
        with self.lock:
            self.extra.extend(messages)

    def injected_all(self) -> bool:
        with self.lock:
            return not self.extra

    def probe(self, name: str) -> list[str]:
        """One ticket per partition, opened, responded and closed at once: an outcome for
        each appears as soon as the partition is processed. Returns the ticket ids."""
        ids = []
        for partition in range(self.partitions):
            ticket = next(t for t in (f"probe-{self.tag}-{name}-{i}" for i in range(10_000))
                          if partition_of(t.encode(), self.partitions) == partition)
            now = _now_ms()
            for step, kind in enumerate(("opened", "responded", "closed")):
                self.send_event(_event(ticket, step, kind, now), "probe")
            ids.append(ticket)
        self.flush()
        return ids

    def overdue(self, count: int, age: float, name: str = "overdue") -> list[str]:
        """`count` tickets opened `age` s ago, nothing else: every deadline already passed."""
        opened = _now_ms() - round(age * 1000)
        ids = [f"{name}-{self.tag}-{i}" for i in range(count)]
        for ticket in ids:
            self.send_event(_event(ticket, 0, "opened", opened), "overdue")
        self.flush()
        return ids

    def good_events(self) -> list[dict]:
        with self.lock:
            return [s.event for s in self.sent if s.good and s.event is not None
                    and s.acked_at is not None]

    def late_tickets(self) -> set[str]:
        """Tickets with a follow-up event acknowledged more than LATE_ACK s after its ts.

        A `backlog` event (chaosbacklog) is never late: its ts lies in the past by design,
        and the whole backlog is acknowledged before any worker reads the topic.
        """
        late = set()
        with self.lock:
            for s in self.sent:
                if s.event is None or s.event.get("type") == "opened" or s.category == "backlog":
                    continue
                if s.acked_at is None or s.acked_at - s.event["ts"] / 1000 > LATE_ACK:
                    late.add(s.event["ticket_id"])
        return late

    # -- the thread ----------------------------------------------------------
    def _run(self) -> None:
        next_open = time.time()
        while not self.halt.is_set():
            now = time.time()
            if self.opening.is_set():
                while next_open <= now:
                    self._open(now)
                    next_open += 1 / self.rate
            else:
                next_open = now
            self._follow_ups(now)
            self._send_extra()
            time.sleep(0.01)

    def _open(self, now: float) -> None:
        self.count += 1
        ticket_id = f"{self.tag}-{self.count}"
        script = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        ticket = _Ticket(ticket_id, script, now)
        event = _event(ticket_id, 0, "opened", _now_ms())
        self._send_good(event, script)
        ticket.opened = event["ts"] / 1000
        self.last_open = max(self.last_open, ticket.opened)
        self._due_until(ticket.record(0.0, "opened"))
        self.tickets[ticket_id] = ticket
        self._schedule(ticket)

    def _schedule(self, ticket: _Ticket) -> None:
        steps = SCRIPTS[ticket.script]
        if ticket.steps < len(steps):
            with self.lock:
                heapq.heappush(self.pending, (ticket.opened + steps[ticket.steps][0],
                                              self.seq, ticket.ticket_id))
                self.seq += 1

    def _follow_ups(self, now: float) -> None:
        while True:
            with self.lock:
                if not self.pending or self.pending[0][0] > now:
                    return
                _, _, ticket_id = heapq.heappop(self.pending)
            ticket = self.tickets[ticket_id]
            steps = SCRIPTS[ticket.script]
            wait = _too_close(time.time() - ticket.opened, due_ages(ticket.sent))
            if wait:  # the thread was late: move the event past the due instant instead
                with self.lock:
                    heapq.heappush(self.pending, (time.time() + wait, self.seq, ticket_id))
                    self.seq += 1
                continue
            ticket.steps += 1
            kind = steps[ticket.steps - 1][1]
            event = _event(ticket_id, ticket.steps, kind, _now_ms())
            self._send_good(event, ticket.script)
            self._due_until(ticket.record(event["ts"] / 1000 - ticket.opened, kind))
            self._schedule(ticket)

    def _due_until(self, instant: float) -> None:
        self.last_due = max(self.last_due, instant)

    def _send_good(self, event: dict, script: str) -> None:
        key = None
        # A wrong key sends the event on a detour (re-keyed by the worker, appended behind
        # the ticket's later events): only where arriving late changes no output id, the
        # opening of a ticket with no other event.
        if (script == "silent" and self.wrong_key_share
                and self.rng.random() < self.wrong_key_share):
            key = self.rng.choice([b"", b"wrong-key", f"x-{event['ticket_id']}".encode()])
        self.send_event(event, script, key=key)

    def _send_extra(self, most: int = 500) -> None:
        with self.lock:
            batch, self.extra = self.extra[:most], self.extra[most:]
        for key, value, category in batch:
            self.send(key, value, None, False, category)


def _too_close(age: float, dues: Iterable[float]) -> float:
    """Seconds to wait when `age` (s since opening) lies just before a due instant."""
    for due in dues:
        if 0 <= due - age < SAFE_BEFORE_DUE:
            return due - age + 0.3
    return 0.0


def _acked(item: Sent, metadata: object) -> None:
    item.acked_at = time.time()
    item.partition = getattr(metadata, "partition", None)
    item.offset = getattr(metadata, "offset", None)


def _failed(item: Sent, error: BaseException) -> None:
    item.error = f"{type(error).__name__}: {error}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _event(ticket_id: str, step: int, kind: str, ts: int) -> dict:
    event = {"event_id": f"{ticket_id}:{step}", "ticket_id": ticket_id, "type": kind, "ts": ts}
    if kind == "opened":
        event |= {"service": "email", "customer": "acme", "priority": "P1"}
    return event
