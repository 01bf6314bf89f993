"""Synthetic ticket traffic: realistic lifecycles for the demo, benchmarks and load tests.

Each ticket is opened, usually responded to, sometimes paused and resumed,
re-prioritised, resolved, reopened and closed, with think times drawn from
a seeded random generator so a run can be repeated exactly. Events of many
tickets interleave in time order.

`ticket_events` stamps them from any start (`minute_ms` shrinks the think times for a
fast demo); `realtime` hands them out as the wall clock reaches their stamps, for a live
stream (`slamon demo`).
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from sla.events import format_ts, parse_ts

__all__ = ["ticket_events", "realtime", "CUSTOMERS", "SERVICES", "PRIORITIES"]

CUSTOMERS = ("acme", "globex", "initech", "umbrella", "hooli")
SERVICES = ("payments", "email", "reporting", "vpn")
PRIORITIES = ("P1", "P2", "P3", "P4")
_PRIORITY_WEIGHTS = (1, 3, 5, 3)
# Typical minutes to respond / resolve by priority: some tickets run late on purpose.
_RESPONSE_MIN = {"P1": 12, "P2": 45, "P3": 150, "P4": 600}
_RESOLVE_MIN = {"P1": 200, "P2": 420, "P3": 1800, "P4": 6000}


def _lifecycle(rng: random.Random, ticket: str, opened_ms: int,
               customers: Sequence[str], services: Sequence[str],
               minute: int = 60_000) -> list[tuple[int, dict]]:
    priority = rng.choices(PRIORITIES, _PRIORITY_WEIGHTS)[0]
    events: list[tuple[int, dict]] = []
    seq = 0

    def add(kind: str, at_ms: int, **fields: str) -> None:
        nonlocal seq
        seq += 1
        event = {"event_id": f"{ticket}-{seq}", "ticket_id": ticket, "type": kind,
                 "ts": format_ts(at_ms), **fields}
        events.append((at_ms, event))

    add("opened", opened_ms, service=rng.choice(services), customer=rng.choice(customers),
        priority=priority)
    now = opened_ms
    if rng.random() < 0.1:
        priority = rng.choice(PRIORITIES)
        now += int(rng.expovariate(1 / 5) * minute) + 1
        add("priority_changed", now, priority=priority)
    if rng.random() < 0.95:
        now += int(rng.expovariate(1 / _RESPONSE_MIN[priority]) * minute) + 1
        add("responded", now)
    if rng.random() < 0.25:
        now += int(rng.expovariate(1 / 30) * minute) + 1
        add("paused", now)
        now += int(rng.expovariate(1 / 90) * minute) + 1
        add("resumed", now)
    if rng.random() < 0.02:
        add("cancelled", now + minute)
        return events
    now += int(rng.expovariate(1 / _RESOLVE_MIN[priority]) * minute) + 1
    add("resolved", now)
    if rng.random() < 0.1:
        now += int(rng.expovariate(1 / 120) * minute) + 1
        add("reopened", now)
        now += int(rng.expovariate(1 / 60) * minute) + 1
        add("resolved", now)
    if rng.random() < 0.7:
        now += int(rng.expovariate(1 / 240) * minute) + 1
        add("closed", now)
    return events


def ticket_events(count: int, start_ms: int, tickets_per_hour: float = 600.0, seed: int = 7,
                  customers: Sequence[str] = CUSTOMERS, services: Sequence[str] = SERVICES,
                  prefix: str = "T", *, minute_ms: int = 60_000,
                  backlog: int = 0) -> Iterator[dict]:
    """Yield `count` events of interleaved ticket lifecycles in time order.

    `minute_ms` is how long a minute of the lifecycle model lasts (think times scale with
    it); the first `backlog` tickets are all opened at `start_ms`, a queue waiting for the
    desk. The defaults give the same events as ever for the same seed.
    """
    rng = random.Random(seed)
    pending: list[tuple[int, int, dict]] = []
    opened_at: float = start_ms
    number = 0
    emitted = 0
    order = 0
    mean_gap = 3_600_000 / tickets_per_hour
    while emitted < count:
        # Open tickets until the next opening is later than the earliest pending event.
        while not pending or opened_at <= pending[0][0]:
            number += 1
            for at_ms, event in _lifecycle(rng, f"{prefix}{number}", int(opened_at),
                                           customers, services, minute_ms):
                order += 1
                heapq.heappush(pending, (at_ms, order, event))
            if number >= backlog:
                opened_at += rng.expovariate(1 / mean_gap)
        yield heapq.heappop(pending)[2]
        emitted += 1


def realtime(events: Iterable[dict], stop: threading.Event | None = None,
             clock: Callable[[], float] = time.time) -> Iterator[dict]:
    """Yield each event once the wall clock reaches its `ts`; end early when `stop` is set."""
    stop = stop or threading.Event()
    for event in events:
        wait = parse_ts(event["ts"]) / 1000 - clock()
        if wait > 0 and stop.wait(wait):
            return
        if stop.is_set():
            return
        yield event
