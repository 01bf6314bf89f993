"""Feeds the portal's view: `<prefix>compliance` and `<prefix>breaches`, read in full.

Every worker runs its own aiokafka consumer without a group: it is assigned every
partition of both topics and reads them from the beginning, so each worker's portal shows
every customer's whole picture, whichever worker's agents produced the records. The view
keeps the latest record per id, so reading again after an error is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from agents.kafkaclients import client_options
from agents.portal.view import PortalView
from agents.settings import Settings

__all__ = ["follow"]

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
TOPIC_WAIT_SECONDS = 1.0


async def follow(view: PortalView, settings: Settings, poll_ms: int = 500) -> None:
    """Read both topics into `view` until cancelled; errors are logged and the read restarts."""
    topics = [settings.topics.compliance, settings.topics.breaches]
    while True:
        try:
            await _follow_once(view, settings, topics, poll_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broker gone away: log, wait, read again from the start
            logger.warning("portal: reading %s failed (%s: %s); again in %.0f s",
                           ", ".join(topics), type(exc).__name__, exc, RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)


async def _follow_once(view: PortalView, settings: Settings, topics: Sequence[str],
                       poll_ms: int) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=None,
        client_id=f"{settings.app_id}-portal", enable_auto_commit=False,
        auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topics)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        logger.info("portal: reading %s (%d partitions) from the beginning",
                    ", ".join(topics), len(partitions))
        while True:
            batches = await consumer.getmany(timeout_ms=poll_ms, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    view.apply_bytes(message.value)
            if not view.loaded and await _caught_up(consumer, ends):
                view.loaded = True
                logger.info("portal: caught up (%d records, %d skipped)", view.records,
                            view.skipped)
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topics: Sequence[str]) -> list[Any]:
    """Every partition of `topics`, once they all exist (the worker creates them)."""
    from aiokafka import TopicPartition

    while True:
        # Metadata of all topics: asks for none by name, so none is auto-created. (The public
        # `topics()` returns only the names of the same fetch.)
        cluster = await consumer._client.fetch_all_metadata()
        found = {topic: cluster.partitions_for_topic(topic) for topic in topics}
        if all(found.values()):
            return [TopicPartition(topic, p) for topic, ps in found.items()
                    for p in sorted(ps or ())]
        await asyncio.sleep(TOPIC_WAIT_SECONDS)


async def _caught_up(consumer: Any, ends: dict[Any, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
