"""agents.brokerwatch and the worker's readiness and hangups, without a broker (issue 9,
defects 7 and 8). The real outage is in tests/integration/test_broker_outage.py."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from faust.types import TP

from agents.app import broker_metadata, create_app
from agents.brokerwatch import BrokerWatch, RepeatFilter, cluster_answers
from agents.cli.worker import HangupRelay
from agents.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- BrokerWatch ---------------------------------------------------------------------------------


def test_the_broker_is_a_problem_only_after_the_allowed_silence() -> None:
    clock = FakeClock()
    watch = BrokerWatch(15.0, clock=clock)
    watch.failed(ConnectionRefusedError("connect to 127.0.0.1:9092"))
    clock.now += 15.0
    assert watch.problem is None
    clock.now += 2.0
    assert watch.problem == ("broker unreachable for 17 s "
                             "(ConnectionRefusedError: connect to 127.0.0.1:9092)")
    watch.answered()
    assert watch.problem is None and watch.failing_since is None


def test_a_probe_that_fails_hangs_or_answers() -> None:
    clock = FakeClock()
    watch = BrokerWatch(5.0, clock=clock)

    async def refused() -> object:
        raise OSError("Unable to bootstrap")

    async def hung() -> object:
        await asyncio.sleep(60)
        return None

    async def answers() -> object:
        return {"brokers": 1}

    assert asyncio.run(watch.probe(refused, timeout=1.0)) is False
    assert watch.last_error == "OSError: Unable to bootstrap"
    assert asyncio.run(watch.probe(hung, timeout=0.05)) is False
    assert watch.last_error == "TimeoutError: no answer in 0.05 s"
    watch.failed(RuntimeError("RuntimeError: said twice"))  # aiokafka's errors name themselves
    assert watch.last_error == "RuntimeError: said twice"
    assert asyncio.run(watch.probe(hung, timeout=0.05)) is False
    assert watch.last_error == "TimeoutError: no answer in 0.05 s"
    clock.now += 6.0
    assert watch.problem is not None
    assert asyncio.run(watch.probe(answers, timeout=1.0)) is True
    assert watch.problem is None


# -- RepeatFilter --------------------------------------------------------------------------------


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_flood_of_one_library_line_becomes_one_line_per_interval() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(interval=30.0, clock=clock)
    passed = []
    for _second in range(65):
        for node in range(100):  # 100 lines a second, the node id varying
            record = _record("aiokafka.client", "Unable connect to node with id %s: %s", node,
                             "Connect call failed")
            if repeats.filter(record):
                passed.append(record.getMessage())
        clock.now += 1.0
    assert passed == [
        "Unable connect to node with id 0: Connect call failed",
        "Unable connect to node with id 0: Connect call failed "
        "[2999 more like this in the last 30 s]",
        "Unable connect to node with id 0: Connect call failed "
        "[2999 more like this in the last 30 s]",
    ]


def test_different_lines_and_our_own_loggers_pass() -> None:
    repeats = RepeatFilter(interval=30.0, clock=FakeClock())
    assert repeats.filter(_record("aiokafka.client", "Unable to update metadata from %s", [1]))
    assert repeats.filter(_record("aiokafka.conn", "Unable connect to node with id %s", 1))
    assert repeats.filter(_record("aiokafka.client", "Unable to update metadata from %s", [1],
                                  level=logging.WARNING))
    assert not repeats.filter(_record("aiokafka.client", "Unable to update metadata from %s", [2]))
    for _ in range(3):  # one line per event, whatever repeats
        assert repeats.filter(_record("agents.processor", "event %s could not be applied", "e1"))


def test_a_record_seen_by_two_handlers_is_decided_once() -> None:
    repeats = RepeatFilter(interval=30.0, clock=FakeClock())
    record = _record("faust.transport.consumer", "Heartbeat failed")
    assert repeats.filter(record) and repeats.filter(record)
    second = _record("faust.transport.consumer", "Heartbeat failed")
    assert not repeats.filter(second) and not repeats.filter(second)


def test_install_adds_the_filter_once_per_handler() -> None:
    handler = logging.StreamHandler()
    repeats = RepeatFilter()
    repeats.install([handler])
    repeats.install([handler])
    assert handler.filters == [repeats]


# -- readiness of a built worker ------------------------------------------------------------------


POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  targets:
    P1: {response: 15m, resolution: 4h}
"""


def _app(tmp_path: Path):  # type: ignore[no-untyped-def]
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    return create_app(Settings(store="memory://", data_dir=tmp_path / "data",
                               policies=policies, broker_unreachable_after=15.0))


def test_readiness_names_its_reason_and_the_scrape_follows_it(tmp_path: Path) -> None:
    app = _app(tmp_path)
    monitor = app.slamon

    def scraped() -> float | None:  # slamon_worker_ready, as /metrics reads it
        return monitor.registry.get_sample_value("slamon_worker_ready")

    assert monitor.not_ready_reason == "recovering table state" and not monitor.ready
    assert scraped() == 0.0
    app.tables.recovery.completed.set()
    assert monitor.not_ready_reason is None and monitor.ready
    assert scraped() == 1.0
    monitor.broker.failed(OSError("Connect call failed"))
    monitor.broker.last_answer -= 20.0
    assert monitor.not_ready_reason is not None
    assert monitor.not_ready_reason.startswith("broker unreachable for 20 s (OSError: ")
    assert not monitor.ready and scraped() == 0.0
    monitor.broker.answered()
    assert monitor.ready and scraped() == 1.0


def test_readyz_shows_how_much_of_the_changelogs_is_left_to_read(tmp_path: Path) -> None:
    app = _app(tmp_path)
    monitor = app.slamon
    recovery = app.tables.recovery
    table = app.tables["slamon-clocks"]
    tps = [TP(table.changelog_topic.get_topic_name(), p) for p in (0, 1)]
    for tp in tps:
        recovery.add_active(table, tp)
    recovery.active_highwaters[tps[0]], recovery.active_highwaters[tps[1]] = 999, 499
    recovery.active_offsets[tps[0]] = 99  # p1: nothing read yet (None)
    assert monitor.readiness() == {"ready": False, "policy_version": 1,
                                   "reason": "recovering table state"}  # not started
    recovery._set_recovery_started()
    recovery.active_offsets[tps[1]] = 449
    assert monitor.readiness() == {"ready": False, "policy_version": 1,
                                   "reason": "recovering table state",
                                   "changelog_records_left": 900 + 50}
    recovery._set_recovery_ended()
    recovery.completed.set()
    assert monitor.readiness() == {"ready": True, "policy_version": 1}


def test_the_broker_is_asked_through_the_workers_own_producer_client(tmp_path: Path) -> None:
    # Pins the Faust/aiokafka internals broker_metadata relies on: an upgrade that moves
    # them fails here. The client is not started: asking it fails, as during an outage.
    app = _app(tmp_path)

    async def ask() -> BaseException | None:
        with pytest.raises(Exception, match="not yet started"):
            await broker_metadata(app)  # before the worker starts its producer
        app.producer._producer = app.producer._new_producer()  # what its on_start does
        client = app.producer._ensure_producer().client
        assert callable(client.send) and callable(client.cluster.brokers)  # cluster_answers
        try:
            await asyncio.wait_for(broker_metadata(app), 2.0)
        except Exception as error:  # not bootstrapped: no broker known
            return error
        return None

    assert asyncio.run(ask()) is not None


# -- SIGHUP from the first line of `slamon worker` ------------------------------------------------


@pytest.fixture
def hangup_handler() -> Iterator[None]:
    before = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, before)


def test_a_hangup_before_the_worker_exists_is_kept_and_served_once(hangup_handler: None) -> None:
    relay = HangupRelay()
    os.kill(os.getpid(), signal.SIGHUP)  # the default action would end this process
    os.kill(os.getpid(), signal.SIGHUP)
    assert relay.pending == 2
    reloads: list[str] = []
    relay.connect(lambda: reloads.append("reload"))
    assert reloads == ["reload"] and relay.pending == 0
    os.kill(os.getpid(), signal.SIGHUP)
    assert reloads == ["reload", "reload"]


class FakeClient:
    """What the probe reads of an aiokafka client: known brokers, and `send`."""

    def __init__(self, nodes: list[int], answers: dict[int, Any]) -> None:
        self.cluster = SimpleNamespace(brokers=lambda: [SimpleNamespace(nodeId=n) for n in nodes])
        self.answers = answers
        self.requests: list[tuple[int, Any]] = []

    async def send(self, node: int, request: Any) -> Any:
        self.requests.append((node, request))
        answer = self.answers[node]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def test_the_probe_names_no_topic_and_tries_every_broker() -> None:
    answer = SimpleNamespace(topics=[])
    client = FakeClient([1, 2], {1: KafkaConnectionError("down"), 2: answer})
    for _ in range(5):  # random order: whichever comes first, the answer is the one
        assert asyncio.run(cluster_answers(client)) is answer
    assert all(request._topics == [] for _, request in client.requests)
    with pytest.raises(KafkaConnectionError):
        asyncio.run(cluster_answers(FakeClient([1], {1: KafkaConnectionError("down")})))
    with pytest.raises(Exception, match="no broker known"):
        asyncio.run(cluster_answers(FakeClient([], {})))
