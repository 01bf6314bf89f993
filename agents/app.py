"""The Faust application: `create_app(settings)` builds it, wires its topics and agents.

Nothing happens at import: no app, no topics, no connections. The factory is the one place
that turns `Settings` into Faust configuration; agents are added by small `add_*` functions
so that each processor can be replaced without touching the others.

For now one placeholder agent logs every message of `<prefix>events`; the clock agent
replaces it.
"""

from __future__ import annotations

import logging

import faust
from faust.types import EventT, StreamT

from agents.settings import Settings

__all__ = ["create_app", "events_topic", "add_event_logger"]

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """A Faust app (aiokafka driver) configured from `settings`, with its agents added."""
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        broker_client_id=settings.app_id,
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",  # a new deployment rebuilds from all events
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        autodiscover=False,
    )
    add_event_logger(app, settings)
    return app


def events_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """`<prefix>events`, keyed by ticket_id; raw bytes, parsed by the agents themselves.

    The worker creates it when missing (`internal`), so that it exists with the partition
    count every co-partitioned topic (ticks, changelogs) must share.
    """
    return app.topic(
        settings.topic("events"),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,  # created on start when missing, with the configured partitions
    )


def add_event_logger(app: faust.App, settings: Settings) -> None:
    """Placeholder agent: log each service event received (replaced by the clock agent)."""

    async def log_events(stream: StreamT[bytes]) -> None:
        event: EventT
        async for event in stream.events():
            message = event.message
            logger.info(
                "event received: topic=%s partition=%d offset=%d key=%r bytes=%d",
                message.topic,
                message.partition,
                message.offset,
                message.key,
                len(message.value or b""),
            )

    app.agent(events_topic(app, settings), name="slamon.events.logger")(log_events)
