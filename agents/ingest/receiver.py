"""`POST /ingest/<source>` on the worker's web server: desk webhooks onto `<prefix>raw`.

    404  no such source                      503  its secret cannot be read (logged)
    413  body over the source's limit         401  missing or bad signature, stale timestamp
    400  not JSON                             503  the broker did not acknowledge in time
    202  on the raw topic, acknowledged by the broker (acks=all): only then may the vendor
         forget it

Nothing is written for a refused delivery; every answer is counted by source and outcome
(`agents.ingest.metrics`). A 503 makes the vendor retry, so a broker outage loses nothing.
The signature is checked on the raw bytes before they are parsed. The raw message is keyed
`source|ticket` so one ticket's deliveries stay in order (`agents.ingest.wire`); the
translator agent (`agents.ingest.agent`) takes it from there.

`add_ingest(app, monitor)` wires the receiver and the translator agent into a worker.
Secrets and bodies never go into a log line or a response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faust
import orjson

from agents.ingest.agent import TranslatorService, add_translator_agent
from agents.ingest.metrics import IngestMetrics, Outcome
from agents.ingest.observation import DeliveryMeta
from agents.ingest.signatures import verify
from agents.ingest.sources import Source, load_sources
from agents.ingest.wire import raw_output
from agents.settings import Settings

__all__ = ["Receiver", "add_ingest", "load_worker_sources", "ACK_TIMEOUT_SECONDS"]

logger = logging.getLogger(__name__)

ACK_TIMEOUT_SECONDS = 5.0  # vendors give up after ~10 s (GitHub); answer 503 well before
_STATUS: dict[Outcome, int] = {
    "accepted": 202, "unknown_source": 404, "source_unavailable": 503, "too_large": 413,
    "missing_signature": 401, "bad_signature": 401, "stale_timestamp": 401,
    "unparsable": 400, "broker_unavailable": 503,
}


def load_worker_sources(settings: Settings) -> dict[str, Source]:
    """The worker's sources: none when unset, or when the default file is absent.

    An invalid file raises SourcesError (the worker refuses to start, as for policies).
    A source whose secret cannot be read is logged and answers 503 until it can.
    """
    path = settings.sources
    if path is None:
        return {}
    if not Path(path).exists() and path == Settings().sources:
        logger.info("no sources file at %s: no service desks connected", path)
        return {}
    sources = load_sources(path)
    for source in sources.values():
        if source.secret is None:
            logger.error("source %s: %s; its webhooks are answered 503 until it is set",
                         source.name, source.secret_problem)
    if sources:
        logger.info("service desks connected: %s", ", ".join(
            f"{s.name} ({s.desk.name})" for s in sources.values()))
    return sources


class Receiver:
    """Answers one webhook delivery; kept apart from aiohttp so tests can drive it."""

    def __init__(self, app: faust.App, settings: Settings, sources: Mapping[str, Source],
                 metrics: IngestMetrics, ready: asyncio.Event,
                 clock: Any = time.time) -> None:
        self.app = app
        self.topic = settings.topics.raw
        self.sources = sources
        self.metrics = metrics
        self.ready = ready  # set once the raw topic exists with the right partition count
        self.clock = clock

    async def receive(self, name: str, headers: Mapping[str, str], content: Any,
                      length: int | None) -> tuple[int, dict[str, str]]:
        """(status, JSON body) for a delivery to source `name`; `content` is the request's
        stream (`read(n)`), `length` its Content-Length if given."""
        started = time.perf_counter()
        source = self.sources.get(name)
        if source is None:
            return self._answer("", "unknown_source", f"no source {name!r}")
        if source.secret is None:
            return self._answer(name, "source_unavailable", "source not configured")
        limit = source.max_body_bytes
        if length is not None and length > limit:
            return self._answer(name, "too_large", f"body over {limit} bytes")
        body = await _read(content, limit)
        if body is None:
            return self._answer(name, "too_large", f"body over {limit} bytes")
        failure = verify(source.signature, source.secret, headers, body, self.clock())
        if failure is not None:
            return self._answer(name, failure, failure.replace("_", " "))
        try:
            tree = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._answer(name, "unparsable", "not JSON")
        event_header = source.desk.event_header
        event_name = headers.get(event_header) if event_header else None
        meta = DeliveryMeta(name, source.delivery_id(headers, tree, body),
                            int(self.clock() * 1000), event_name)
        output = raw_output(self.topic, meta, source.ticket_ref(tree, event_name), body)
        if not await self._send(output):
            return self._answer(name, "broker_unavailable", "broker unavailable, retry")
        return self._answer(name, "accepted", meta.delivery_id, time.perf_counter() - started)

    async def _send(self, output: Any) -> bool:
        """True once the broker acknowledged `output`; False when it did not in time."""
        try:
            async with asyncio.timeout(ACK_TIMEOUT_SECONDS):
                await self.ready.wait()  # the raw topic exists (just after start-up)
                delivery = await self.app.producer.send(output.topic, output.key, output.value,
                                                        None, None, output.headers)
                await delivery
        except TimeoutError:
            logger.warning("raw payload not acknowledged in %.0f s", ACK_TIMEOUT_SECONDS)
            return False
        except Exception as error:  # any producer failure is a 503: the vendor retries
            logger.warning("raw payload not sent: %s", type(error).__name__)
            return False
        return True

    def _answer(self, source: str, outcome: Outcome, detail: str,
                seconds: float | None = None) -> tuple[int, dict[str, str]]:
        self.metrics.answered(source, outcome, seconds)
        key = "delivery" if outcome == "accepted" else "error"
        return _STATUS[outcome], {key: detail}


async def _read(content: Any, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def add_ingest(app: faust.App, monitor: Any) -> TranslatorService:
    """Add `POST /ingest/{source}` and the translator agent to the worker of `monitor`."""
    settings: Settings = monitor.settings
    sources = load_worker_sources(settings)
    metrics = IngestMetrics(monitor.registry, sources)
    service = add_translator_agent(app, settings, sources, metrics)
    receiver = Receiver(app, settings, sources, metrics, service.declared)

    class IngestView(faust.web.View):
        async def post(self, request: Any, source: str) -> Any:
            status, body = await receiver.receive(source, request.headers, request.content,
                                                  request.content_length)
            headers = {"Retry-After": "30"} if status == 503 else {}
            return self.bytes(orjson.dumps(body), status=status,
                              content_type="application/json", headers=headers)

    app.page("/ingest/{source}", name="slamon.ingest")(IngestView)
    return service
