"""When a partition's deadline tick is sent again (agents.clocks).

A tick on its way is not sent again before TICK_RETRY_MS. A tick that arrived but could not
fire, while events-p is handled up to the end its last fetch response reported, is sent again
after TICK_RECHECK_MS: a quiet events-p brings no batch that would fire it, and waiting for
the retry made breaches five seconds late (bench/live.py's detection delay, max 5.1 s).
"""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP

from agents import clocks
from agents.clocks import TICK_RECHECK_MS, TICK_RETRY_MS, ClockService, TickRetries
from streams.topics import TopicCatalogue

NOW = 1_800_000_000_000


def test_a_tick_on_its_way_is_sent_again_only_after_the_retry_time() -> None:
    retries = TickRetries()
    assert retries.wait_ms(3, NOW) is None
    retries.sent(3, NOW)
    assert retries.wait_ms(3, NOW) == TICK_RETRY_MS
    assert retries.wait_ms(3, NOW + TICK_RETRY_MS - 1) == 1
    assert retries.wait_ms(3, NOW + TICK_RETRY_MS) is None
    assert retries.wait_ms(4, NOW) is None  # per partition


def test_a_held_tick_is_sent_again_soon_and_a_fired_one_not_at_all() -> None:
    retries = TickRetries()
    retries.sent(3, NOW)
    retries.held(3, NOW + 50)
    assert retries.wait_ms(3, NOW + 50) == TICK_RECHECK_MS
    retries.fired(3)
    assert retries.wait_ms(3, NOW + 50) is None


def test_holding_never_postpones_a_retry_that_comes_sooner() -> None:
    retries = TickRetries()
    retries.sent(3, NOW)
    late = NOW + TICK_RETRY_MS - 10  # the retry is due in 10 ms
    retries.held(3, late)
    assert retries.wait_ms(3, late) == 10
    retries.held(5, NOW)  # a tick of an earlier run, never sent by this one
    assert retries.wait_ms(5, NOW) == TICK_RECHECK_MS
    retries.clear()
    assert retries.wait_ms(3, NOW) is None and retries.wait_ms(5, NOW) is None


class _Router:
    """The two things `_held` asks of the batch router: events-p's last fetch, its position."""

    def __init__(self, highwater: int | None, handled: int | None) -> None:
        self.highwater = highwater
        self.handled = handled

    def fetched(self, tp: TP) -> tuple[int, int] | None:
        return None if self.highwater is None else (self.highwater, NOW)

    async def consumed(self, tp: TP) -> int | None:
        return self.handled


def _service(router: _Router) -> ClockService:
    """A ClockService with only what `_held` reads (no Faust app)."""
    service = ClockService.__new__(ClockService)
    service.router = router  # type: ignore[assignment]
    service.catalogue = TopicCatalogue("test-")
    service.tick_retries = TickRetries()
    service.wake = asyncio.Event()
    return service


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clocks, "wall_ms", lambda: NOW)


@pytest.mark.parametrize("highwater, handled", [(120, 120), (None, 7), (120, None)])
async def test_a_tick_held_on_a_quiet_partition_is_sent_again_soon(
        highwater: int | None, handled: int | None) -> None:
    """Handled up to the last fetch's end (or nothing known to compare): send again soon."""
    service = _service(_Router(highwater, handled))
    service.tick_retries.sent(2, NOW - 100)
    await service._held(2)
    assert service.tick_retries.wait_ms(2, NOW) == TICK_RECHECK_MS
    assert service.wake.is_set()  # the tick task sleeps until then, not a whole interval


async def test_a_tick_held_by_a_backlog_waits_for_the_backlogs_batches() -> None:
    service = _service(_Router(highwater=5_000, handled=1_200))
    service.tick_retries.sent(2, NOW - 100)
    await service._held(2)
    assert service.tick_retries.wait_ms(2, NOW) == TICK_RETRY_MS - 100
    assert not service.wake.is_set()
    await service._held(2, position=5_000)  # the batch that reaches the end it knew of
    assert service.tick_retries.wait_ms(2, NOW) == TICK_RECHECK_MS
