"""Faust's startup without its cluster-sized costs: what a restarted worker waits for.

A worker killed and restarted must be back at work within seconds (issue 9). Measured on
a broker with ~2,000 topics, most of a restart went to Faust asking for the metadata of
*every* topic in the cluster, decoded in pure Python on the event loop (0.2-1 s each):

- Faust's aiokafka `Producer.create_topic` ends each declaration with
  `force_metadata_update()`; until the producer has sent something it tracks no topic,
  so each refresh fetches all of them. A start declares ~25 topics (changelogs, the
  leader topic, agents' inputs and outputs), most of which exist already.
  `DeclaringProducer` first asks the cluster for that one topic, without letting the
  broker auto-create it, and leaves a topic that exists alone: no CreateTopics, no
  refresh. A missing topic, or a question left unanswered, takes Faust's own path.
- `TableManager.on_start` sleeps one second before it starts the tables, so that tables
  defined while the app starts are registered; every slamon table exists once
  `create_app` returns, so `PromptTableManager` starts them at once.
- `cluster_answers` is the broker probe: one metadata request naming no topic (the
  brokers only), where the whole cluster's metadata would cost as much as above.

Faust internals this relies on (faust-streaming is pinned; tests/unit/test_faststart.py fails
when an upgrade moves them): the aiokafka driver's `Producer.create_topic` and
`_ensure_producer`, `TableManager.on_start`, `_update_channels`, `recovery`, and aiokafka's
`AIOKafkaClient.send` / `get_random_node` / `cluster.brokers`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["DeclaringProducer", "PromptTableManager", "cluster_answers", "topic_exists"]

logger = logging.getLogger(__name__)

ASK_TIMEOUT_S = 10.0  # one small metadata request; past this, Faust's own path decides


async def topic_exists(client: Any, topic: str, timeout: float = ASK_TIMEOUT_S) -> bool | None:
    """Whether `topic` exists, asked of one broker by name without auto-creating it;
    None when no broker answered (the caller then does what it would have done anyway)."""
    request = MetadataRequest([topic], allow_auto_topic_creation=False)
    nodes = [broker.nodeId for broker in client.cluster.brokers()]
    random.shuffle(nodes)
    for node in nodes:
        try:
            response = await asyncio.wait_for(client.send(node, request), timeout)
        except (KafkaError, OSError) as error:  # OSError covers TimeoutError
            logger.debug("metadata of %s from node %s: %r", topic, node, error)
            continue
        # Every version of the response lists (error_code, name, ...) per topic.
        return any(entry[1] == topic and entry[0] == 0 for entry in response.topics)
    return None


async def cluster_answers(client: Any, timeout: float = ASK_TIMEOUT_S) -> object:
    """One metadata request naming no topic, to the brokers `client` knows in random order
    until one answers: its answer (brokers only), or the last error raised."""
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


class DeclaringProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer; declaring a topic that exists costs one small request."""

    async def create_topic(self, topic: str, partitions: int, replication: int,
                           **options: Any) -> None:
        if self.app.conf.topic_allow_declare:
            client = self._ensure_producer().client
            if await topic_exists(client, topic):
                logger.debug("topic %s exists: not declared again", topic)
                return
        await super().create_topic(topic, partitions, replication, **options)


class PromptTableManager(TableManager):
    """Faust's table manager, starting the tables without its one-second wait."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
