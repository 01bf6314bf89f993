"""PolicyHistory's read ahead, without a broker: one read, on a thread of its own, whose
result (or error) every caller gets. The read itself against a real broker is in
tests/integration/test_policy_history.py."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from agents.policyhistory import PolicyHistory
from agents.settings import Settings


def test_the_history_is_read_once_on_a_thread_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = PolicyHistory(Settings(data_dir=tmp_path))
    release = threading.Event()
    readers: list[str] = []

    def read() -> list:
        readers.append(threading.current_thread().name)
        release.wait(5)
        return []

    monkeypatch.setattr(history, "read", read)
    first = history.start_reading()
    assert not first.done()  # the caller goes on while the thread reads
    assert history.start_reading() is first
    release.set()

    async def awaited() -> list:
        return await asyncio.wrap_future(history.start_reading())

    assert asyncio.run(awaited()) == []
    assert readers == ["slamon-policy-history"]


def test_a_failed_read_reaches_whoever_awaits_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = PolicyHistory(Settings(data_dir=tmp_path))

    def read() -> list:
        raise RuntimeError("no history")

    monkeypatch.setattr(history, "read", read)
    with pytest.raises(RuntimeError, match="no history"):
        history.start_reading().result(timeout=5)
