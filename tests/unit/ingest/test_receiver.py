"""The receiver's answers and the translator agent's messages, without a broker: the
producer is a stand-in that acknowledges, fails or never answers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust
import orjson
import pytest
from prometheus_client import CollectorRegistry

from agents.ingest import receiver as receiver_module
from agents.ingest.agent import TranslatorService
from agents.ingest.desks import DESKS
from agents.ingest.fields import Headers
from agents.ingest.metrics import IngestMetrics
from agents.ingest.observation import DeliveryMeta
from agents.ingest.receiver import Receiver
from agents.ingest.signatures import sign
from agents.ingest.sources import read_sources
from agents.ingest.wire import raw_output
from agents.settings import Settings
from agents.yamlfile import parse_yaml
from sla.errors import ProblemsError

SECRET = "zd"
SOURCES = read_sources(parse_yaml(
    "sources:\n  zendesk:\n    type: zendesk\n    secret: {env: ZD}\n    max_body_bytes: 2048\n"
    "  unset:\n    type: github\n    secret: {env: NOT_SET}\n",
    "sources.yaml", ProblemsError), {"ZD": SECRET})
SETTINGS = Settings(topic_prefix="t.", partitions=2, store="memory://")
NOW = time.time()
BODY = orjson.dumps({"type": "zen:event-type:ticket.created", "id": "evt-1",
                     "time": "2026-03-02T09:00:00Z", "subject": "zen:ticket:7",
                     "detail": {"id": "7", "status": "NEW", "priority": "HIGH"}})


class _Content:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


class _Producer:
    def __init__(self, behaviour: str = "ack") -> None:
        self.behaviour = behaviour
        self.sent: list[tuple[Any, ...]] = []

    async def send(self, *args: Any) -> asyncio.Future[Any]:
        if self.behaviour == "raise":
            raise RuntimeError("no broker")
        self.sent.append(args)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.behaviour == "ack":
            future.set_result(None)
        return future


class _App:
    def __init__(self, producer: _Producer) -> None:
        self.producer = producer


def _receiver(behaviour: str = "ack") -> tuple[Receiver, _Producer, IngestMetrics]:
    producer = _Producer(behaviour)
    metrics = IngestMetrics(CollectorRegistry(), SOURCES)
    ready = asyncio.Event()
    ready.set()
    receiver = Receiver(_App(producer), SETTINGS, SOURCES, metrics, ready,  # type: ignore[arg-type]
                        clock=lambda: NOW)
    return receiver, producer, metrics


def _signed(body: bytes = BODY, secret: str = SECRET) -> Headers:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW))
    return Headers(sign(DESKS["zendesk"].signature, secret, body, stamp))


async def _receive(receiver: Receiver, source: str, body: bytes, headers: Headers,
                   length: int | None = None) -> tuple[int, dict[str, str]]:
    return await receiver.receive(source, headers, _Content(body), length)


async def test_an_accepted_delivery_is_on_the_raw_topic_keyed_by_source_and_ticket() -> None:
    receiver, producer, metrics = _receiver()
    assert await _receive(receiver, "zendesk", BODY, _signed()) == (202, {"delivery": "evt-1"})
    (topic, key, value, partition, timestamp, headers), = producer.sent
    assert (topic, key, value, partition) == ("t.raw", b"zendesk|7", BODY, None)
    named = dict(headers)
    assert (named["slamon-ingest-source"], named["slamon-delivery-id"]) == (b"zendesk", b"evt-1")
    assert int(named["slamon-received-at"]) == int(NOW * 1000)
    assert metrics.requests.labels("zendesk", "accepted")._value.get() == 1


@pytest.mark.parametrize(("source", "body", "headers", "length", "answer", "outcome"), [
    ("nowhere", BODY, None, None, (404, {"error": "no source 'nowhere'"}), "unknown_source"),
    ("unset", BODY, None, None, (503, {"error": "source not configured"}),
     "source_unavailable"),
    ("zendesk", BODY, None, 4096, (413, {"error": "body over 2048 bytes"}), "too_large"),
    ("zendesk", b"x" * 4096, None, None, (413, {"error": "body over 2048 bytes"}), "too_large"),
    ("zendesk", BODY, "wrong", None, (401, {"error": "bad signature"}), "bad_signature"),
    ("zendesk", BODY, "none", None, (401, {"error": "missing signature"}),
     "missing_signature"),
    ("zendesk", b"{not json", "sign", None, (400, {"error": "not JSON"}), "unparsable"),
])
async def test_refusals_write_nothing_and_are_counted(
        source: str, body: bytes, headers: str | None, length: int | None,
        answer: tuple[int, dict[str, str]], outcome: str) -> None:
    receiver, producer, metrics = _receiver()
    given = {None: _signed(), "wrong": _signed(secret="other"), "none": Headers(),
             "sign": _signed(body)}[headers]
    assert await _receive(receiver, source, body, given, length) == answer
    assert producer.sent == []
    label = "" if outcome == "unknown_source" else source
    assert metrics.requests.labels(label, outcome)._value.get() == 1


@pytest.mark.parametrize("behaviour", ["raise", "hang"])
async def test_a_broker_that_fails_or_does_not_answer_is_a_503(
        behaviour: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiver_module, "ACK_TIMEOUT_SECONDS", 0.05)
    receiver, _, metrics = _receiver(behaviour)
    assert await _receive(receiver, "zendesk", BODY, _signed()) == \
        (503, {"error": "broker unavailable, retry"})
    assert metrics.requests.labels("zendesk", "broker_unavailable")._value.get() == 1


def _service() -> tuple[TranslatorService, dict[bytes, bytes]]:
    app = faust.App("test-ingest-agent", store="memory://", autodiscover=False)
    service = TranslatorService(app, SETTINGS, SOURCES, IngestMetrics(CollectorRegistry(),
                                                                         SOURCES))
    return service, {}


def _raw(body: bytes, source: str = "zendesk", delivery: str = "evt-1") -> Any:
    return raw_output("t.raw", DeliveryMeta(source, delivery, 1), "7", body)


def test_the_agent_sends_events_keyed_by_ticket_and_remembers_the_delivery() -> None:
    service, table = _service()
    raw = _raw(BODY)
    outputs = service.handle(raw.key, raw.value, raw.headers, 0, 41, table)
    assert [(o.topic, o.key, orjson.loads(o.value)["type"]) for o in outputs] == [
        ("t.events", b"zendesk-7", "opened")]
    assert list(table) == [b"zendesk|7"]
    assert service.handle(raw.key, raw.value, raw.headers, 0, 77, table) == []  # a retry
    again = service.handle(raw.key, raw.value, raw.headers, 0, 41, table)  # a crash replay
    assert [o.value for o in again] == [o.value for o in outputs]


@pytest.mark.parametrize(("raw", "reason"), [
    (_raw(b"{broken"), b"not_json"),
    (_raw(BODY, source="gone"), b"unknown_source"),
    (_raw(orjson.dumps({"type": "zen:event-type:ticket.created", "id": "x",
                        "subject": "zen:ticket:7", "detail": {"priority": "HIGH"}})),
     b"no_timestamp"),
])
def test_the_agent_dead_letters_what_it_cannot_translate(raw: Any, reason: bytes) -> None:
    service, table = _service()
    (output,) = service.handle(raw.key, raw.value, raw.headers, 1, 5, table)
    headers = dict(output.headers)
    assert (output.topic, output.key, output.value) == ("t.raw.dlq", raw.key, raw.value)
    assert headers["slamon-reason"] == reason
    assert headers["slamon-source"] == b"t.raw:1:5"
    assert headers["slamon-ingest-source"] == dict(raw.headers)["slamon-ingest-source"]


def test_a_bug_in_a_translator_is_an_internal_error_not_a_dead_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    service, _ = _service()

    def broken(*args: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr("agents.ingest.agent.translate_delivery", broken)
    raw = _raw(BODY)
    (output,) = service.handle(raw.key, raw.value, raw.headers, 0, 1, {})
    assert dict(output.headers)["slamon-reason"] == b"internal_error"


async def test_a_raw_topic_not_yet_declared_is_waited_for_then_a_503(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiver_module, "ACK_TIMEOUT_SECONDS", 0.05)
    receiver, producer, _ = _receiver()
    receiver.ready.clear()
    assert (await _receive(receiver, "zendesk", BODY, _signed()))[0] == 503
    assert producer.sent == []
    asyncio.get_running_loop().call_later(0.01, receiver.ready.set)
    assert (await _receive(receiver, "zendesk", BODY, _signed()))[0] == 202
