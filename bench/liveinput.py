"""The input of bench/live.py: ticket events stamped for each section, and their producer.

Events are generated and encoded before a section's clock starts (bench CPU spent while
the worker is measured is CPU the worker does not get). A live stream is stamped as if
each event were sent at the offered rate from now on; a backlog is a day of lifecycles
ending a second ago, so no event lies beyond the worker's max_future.
"""

from __future__ import annotations

import asyncio
import threading
import time

from livekit import Encoded, encode, produce

from agents.devkit.traffic import ticket_events
from sla.events import format_ts, parse_ts

__all__ = ["Producer", "backlog_events", "live_events", "opened_events"]


def live_events(count: int, rate: float, partitions: int) -> list[Encoded]:
    """Ticket lifecycles in order, stamped as if sent at `rate` from now on."""
    start = int(time.time() * 1000)
    events = list(ticket_events(count, start, seed=11, tickets_per_hour=count / 4.5))
    for n, event in enumerate(events):
        event["ts"] = format_ts(start + int(n * 1000 / rate))
    return encode(events, partitions)


def backlog_events(count: int, partitions: int) -> tuple[list[Encoded], float]:
    """A day of lifecycles ending a second ago (none in the future); and its span in hours."""
    now = int(time.time() * 1000)
    events = list(ticket_events(count, now - 24 * 3_600_000, seed=11,
                                tickets_per_hour=count / 24 / 4.5))
    first, last = parse_ts(events[0]["ts"]), parse_ts(events[-1]["ts"])
    shift = now - 1000 - last
    for event in events:
        event["ts"] = format_ts(parse_ts(event["ts"]) + shift)
    return encode(events, partitions), round((last - first) / 3_600_000, 1)


def opened_events(count: int, partitions: int, prefix: str, priority: str, spread_ms: int,
                  end_ms: int) -> list[Encoded]:
    """`count` tickets opened over `spread_ms` up to `end_ms`, one event each."""
    return encode(({"event_id": f"{prefix}{n}-1", "ticket_id": f"{prefix}{n}", "type": "opened",
                    "ts": format_ts(end_ms - spread_ms + (n * spread_ms) // count),
                    "service": "bench", "customer": "bench", "priority": priority}
                   for n in range(count)), partitions)


class Producer(threading.Thread):
    """Produces in the background (its own event loop) while the bench follows the worker."""

    def __init__(self, bootstrap: str, topic: str, messages: list[Encoded],
                 rate: float | None) -> None:
        super().__init__(daemon=True)
        self.args = (bootstrap, topic, messages, rate)
        self.result: dict | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = asyncio.run(produce(*self.args))
        except BaseException as error:  # reported by the bench's main thread
            self.error = error

    def outcome(self) -> dict:
        self.join()
        if self.error is not None:
            raise SystemExit(f"producing the input failed: {self.error!r}")
        assert self.result is not None
        return self.result


