"""Every policy version the monitor has run, kept in a compacted topic `<prefix>policies`.

A clock keeps the policy version it started with. The engine holds every
version it has loaded, but a restarted worker has only the current file: so
each worker publishes the text of each version it loads (keyed by version)
and reads them all back on start. Kafka's log compaction keeps one message per
version. A file changed without a new version number is reported, since it
silently changes the terms of clocks already running on that number.

The clock agent waits for the stored versions before its first batch, so a restarted
worker reads them while Faust starts (`start_reading`, on a thread of its own), and asks
for the metadata of this one topic, by name and without creating it: the metadata of
every topic in the cluster costs up to a second on a large cluster.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future

from agents.kafkaclients import client_options
from agents.policyfile import parse_policies
from agents.settings import Settings
from sla.errors import PolicyError
from sla.policy import Policies

__all__ = ["PolicyHistory", "parse_history"]

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 20.0


def parse_history(messages: Iterable[tuple[bytes | None, bytes | None]], topic: str,
                  ) -> dict[int, tuple[str, Policies]]:
    """(key, value) messages -> version -> (text, policies); the latest message of a key wins."""
    texts: dict[int, str] = {}
    for key, value in messages:
        try:
            version = int((key or b"").decode())
        except ValueError:
            logger.warning("%s: ignoring a message whose key %r is not a version", topic, key)
            continue
        if value is None:
            texts.pop(version, None)
        else:
            texts[version] = value.decode("utf-8", errors="replace")
    history = {}
    for version, text in texts.items():
        try:
            history[version] = (text, parse_policies(text, source=f"{topic}[{version}]"))
        except PolicyError as error:
            logger.warning("%s: version %s no longer loads, skipped:\n  %s", topic, version,
                           "\n  ".join(error.problems))
    return history


class PolicyHistory:
    """Reads and appends `<prefix>policies` (kafka-python: before Faust starts, on reload)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topics.policies
        self.known: dict[int, str] = {}
        self._reading: Future[list[Policies]] | None = None

    def start_reading(self) -> Future[list[Policies]]:
        """`read`, begun on a thread of its own at the first call; every call returns its
        future (the worker starts it before Faust; `Monitor.load_history` awaits it)."""
        if self._reading is None:
            reading: Future[list[Policies]] = Future()

            def run() -> None:
                try:
                    reading.set_result(self.read())
                except BaseException as error:  # handed to whoever awaits the future
                    reading.set_exception(error)

            self._reading = reading
            threading.Thread(target=run, name="slamon-policy-history", daemon=True).start()
        return self._reading

    def read(self) -> list[Policies]:
        """Every stored version, oldest first; [] when the topic is missing or unreachable."""
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            partitions = self._partitions()
            if not partitions:
                return []
            consumer = KafkaConsumer(**client_options(self.settings),
                                     enable_auto_commit=False, consumer_timeout_ms=2000)
        except KafkaError as error:
            logger.warning("cannot read %s (%s): older policy versions unknown", self.topic, error)
            return []
        try:
            assigned = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            ends = consumer.end_offsets(assigned)
            messages = []
            while any(consumer.position(tp) < ends[tp] for tp in assigned):
                batch = consumer.poll(timeout_ms=int(READ_TIMEOUT_S * 1000))
                if not batch:
                    break
                messages += [(m.key, m.value) for records in batch.values() for m in records]
        finally:
            consumer.close()
        history = parse_history(messages, self.topic)
        self.known = {version: text for version, (text, _) in history.items()}
        return [policies for _, (_, policies) in sorted(history.items())]

    def _partitions(self) -> list[int]:
        """The partitions of the topic; [] when it does not exist. Asked by name without
        creating it (a consumer's lookup fetches the metadata of every topic)."""
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(**client_options(self.settings))
        try:
            described = admin.describe_topics([self.topic])
        finally:
            admin.close()
        return sorted(entry["partition_index"] for topic in described
                      if topic.get("name") == self.topic and topic.get("error_code") == 0
                      for entry in topic.get("partitions") or [])

    def record(self, policies: Policies, text: str) -> None:
        """Store this version's text, unless it is stored already; warn if it changed."""
        stored = self.known.get(policies.version)
        if stored == text:
            return
        if stored is not None:
            logger.warning("policy version %s changed without a new version number: clocks "
                           "started on it now follow the new terms; raise `version`",
                           policies.version)
        from kafka import KafkaProducer
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        options = client_options(self.settings)
        try:
            admin = KafkaAdminClient(**options)
            try:
                admin.create_topics([NewTopic(self.topic, 1, self.settings.replication_factor,
                                              topic_configs={"cleanup.policy": "compact"})])
            except TopicAlreadyExistsError:
                pass
            finally:
                admin.close()
            producer = KafkaProducer(**options, acks="all")
            producer.send(self.topic, key=str(policies.version).encode(), value=text.encode())
            producer.flush(timeout=30)
            producer.close()
        except KafkaError as error:
            logger.warning("cannot record policy version %s in %s: %s", policies.version,
                           self.topic, error)
            return
        self.known[policies.version] = text
