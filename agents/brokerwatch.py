"""While the broker is away: the worker knows it, says so on /readyz, and logs it readably.

Kept apart from `agents.app` (which wires the worker) because it is one concern with its
own timing rules, testable without Faust or a broker:

- `BrokerWatch` records when the broker last answered a metadata request (asked every
  few seconds by a timer in `agents.app`). Once it has been silent for longer than
  `broker_unreachable_after`, `problem` names it and /readyz answers 503 with that reason;
  the first answer after an outage clears it, so the worker recovers by itself.
- `RepeatFilter` keeps Kafka client libraries from flooding the log during an outage
  (thousands of identical `Unable connect to node` lines a second): of each repeated
  message the first passes, then at most one per `interval`, saying how many were held
  back. Our own loggers are never filtered: each of their lines is about one event.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

__all__ = ["BrokerWatch", "RepeatFilter", "LIBRARY_LOGGERS", "cluster_answers"]

logger = logging.getLogger(__name__)

# Loggers whose repeated lines are rate-limited (they and their children).
LIBRARY_LOGGERS = ("aiokafka", "kafka", "faust", "mode")


class BrokerWatch:
    """When the broker last answered, and whether that is too long ago to call us ready."""

    def __init__(self, unreachable_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.unreachable_after = unreachable_after
        self.clock = clock
        self.last_answer = clock()  # from start: startup has its own readiness rules
        self.failing_since: float | None = None
        self.last_error = ""

    def answered(self) -> None:
        now = self.clock()
        if self.failing_since is not None:
            logger.warning("broker reachable again after %.0f s", now - self.failing_since)
        self.failing_since = None
        self.last_answer = now

    def failed(self, error: BaseException) -> None:
        name, text = type(error).__name__, str(error)
        self.last_error = text if text.startswith(name) else f"{name}: {text}".rstrip(": ")
        if self.failing_since is None:
            self.failing_since = self.clock()
            logger.warning("broker did not answer (%s); /readyz turns 503 after %g s of this",
                           self.last_error, self.unreachable_after)

    @property
    def silent_for(self) -> float:
        """Seconds since the broker last answered."""
        return self.clock() - self.last_answer

    @property
    def problem(self) -> str | None:
        """Why the worker is not ready because of the broker, or None."""
        silent = self.silent_for
        if silent <= self.unreachable_after:
            return None
        return f"broker unreachable for {silent:.0f} s ({self.last_error or 'no answer'})"

    async def probe(self, ask: Callable[[], Awaitable[object]], timeout: float) -> bool:
        """Ask the broker once (e.g. for metadata); a hung broker counts as unreachable."""
        try:
            await asyncio.wait_for(ask(), timeout)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # any failure to get an answer means: no answer
            self.failed(error if str(error) else TimeoutError(f"no answer in {timeout:g} s"))
            return False
        self.answered()
        return True


class RepeatFilter(logging.Filter):
    """Let the first of a repeated library log line through, then one per `interval`.

    A line is "the same" when logger, level and message template match (the arguments,
    such as a node id or an error text, may differ). The line let through after an
    interval carries how many were held back since the last one. Attach it to handlers
    (`install`), so it sees the lines of every logger below `prefixes`; a record passed
    to several handlers is decided once.
    """

    def __init__(self, interval: float = 30.0, prefixes: Iterable[str] = LIBRARY_LOGGERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.prefixes = tuple(prefixes)
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # -> (passed at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "_slamon_repeat", None)
        if decided is not None:
            return bool(decided)
        decision = self._decide(record)
        record._slamon_repeat = decision  # type: ignore[attr-defined]
        return decision

    def _decide(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not any(name == p or name.startswith(p + ".") for p in self.prefixes):
            return True
        key = (name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= self.interval:
            if seen is not None and seen[1]:
                since = now - seen[0]
                record.msg = f"{record.msg} [{seen[1]} more like this in the last {since:.0f} s]"
            if len(self._seen) > 10_000:  # bounded: templates are few, but be safe
                self._seen.clear()
            self._seen[key] = (now, 0)
            return True
        self._seen[key] = (seen[0], seen[1] + 1)
        return False

    def install(self, handlers: Iterable[logging.Handler]) -> None:
        for handler in handlers:
            if self not in handler.filters:
                handler.addFilter(self)


PROBE_TIMEOUT_S = 10.0  # one small metadata request per broker tried


async def cluster_answers(client: Any, timeout: float = PROBE_TIMEOUT_S) -> object:
    """The worker's broker probe: one metadata request naming no topic (the metadata of
    every topic costs up to a second of the event loop on a cluster with thousands), to the
    brokers `client` knows in random order until one answers: its answer, or the last
    error raised."""
    nodes = [broker.nodeId for broker in client.cluster.brokers()]
    if not nodes:
        raise KafkaError("no broker known to the producer's client")
    random.shuffle(nodes)
    last: BaseException | None = None
    for node in nodes:
        try:
            return await asyncio.wait_for(client.send(node, MetadataRequest([])), timeout)
        except (KafkaError, OSError) as error:  # OSError covers TimeoutError
            last = error
    assert last is not None
    raise last
