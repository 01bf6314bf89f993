"""Before the worker starts: checks against the cluster that would make it misbehave silently.

Three checks, one admin connection (`startup_problems`); each problem found is a message
naming the topic, broker or group and what to do, and the worker refuses to start.

Partition counts: `<prefix>events`, `<prefix>ticks`, the compliance input and the tables'
changelogs are co-partitioned: partition p of each belongs to the same tickets. A topic
created earlier with another count would silently send ticks and state to the wrong worker.

The consumer group: the group is the app id, and the changelog topics are named after
it. Two deployments (different topic prefixes) in one group would share partitions and
table state: one deployment's events would be judged against the other's tickets. So the
current members of the group must read only this deployment's topics: the catalogue's
topics for our prefix, or topics named after the app id (changelogs, Faust's leader
topic). A member's topics are read from its subscription and from its assignment.

Record batch size: the worker sends each batch's outputs and changelog writes as record
batches of up to `producer_batch_bytes`. A topic whose `max.message.bytes` is smaller
refuses such a batch, and the worker would retry it forever. So every existing topic of
this deployment, and the broker's default for the topics it has yet to create, must accept
`producer_batch_bytes`.

When the broker cannot be asked, the checks are skipped with a warning: the worker itself
reports an unreachable broker.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agents.settings import Settings
from streams.topics import SHORT_NAMES

if TYPE_CHECKING:
    from kafka.admin import KafkaAdminClient

__all__ = ["startup_problems", "partition_problems", "group_problems", "batch_size_problems",
           "subscribed_topics"]

logger = logging.getLogger(__name__)

_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def startup_problems(settings: Settings) -> list[str]:
    """Every reason not to start: partition counts that differ, a group shared with others."""
    from kafka.errors import KafkaError

    try:
        admin = _admin(settings)
    except KafkaError as error:
        logger.warning("could not check topics and consumer group: %s", error)
        return []
    try:
        return (partition_problems(admin, settings) + group_problems(admin, settings)
                + batch_size_problems(admin, settings))
    finally:
        admin.close()


def _admin(settings: Settings) -> KafkaAdminClient:
    from kafka.admin import KafkaAdminClient

    from agents.kafkaclients import client_options

    return KafkaAdminClient(**client_options(settings), request_timeout_ms=15_000)


def partition_problems(admin: KafkaAdminClient, settings: Settings) -> list[str]:
    """One message per existing co-partitioned topic whose partition count differs."""
    from kafka.errors import KafkaError

    catalogue = settings.topics
    names = [catalogue.events, catalogue.ticks, catalogue.compliance_input]
    try:
        described = admin.describe_topics(names)
    except KafkaError as error:
        logger.warning("could not check topic partitions: %s", error)
        return []
    problems = []
    for topic in described:
        count = len(topic.get("partitions") or [])
        if topic.get("error_code") == 0 and count and count != settings.partitions:
            problems.append(
                f"topic {topic.get('name', topic.get('topic'))} has {count} partitions but the "
                f"setting partitions "
                f"(SLAMON_PARTITIONS) is {settings.partitions}: set it to {count}, or move "
                f"to new topics with another topic_prefix (SLAMON_TOPIC_PREFIX)")
    return problems


_TOPIC_LIMIT, _BROKER_LIMIT = "max.message.bytes", "message.max.bytes"


def batch_size_problems(admin: KafkaAdminClient, settings: Settings) -> list[str]:
    """The refusals (see `batch_size_refusals`) for our topics and the broker's default."""
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    try:
        topics = sorted(topic for topic in admin.list_topics() if _ours(settings, topic))
        brokers = [str(b["broker_id"]) for b in admin.describe_cluster().get("brokers") or []]
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=[_TOPIC_LIMIT])
             for topic in topics]
            + [ConfigResource(ConfigResourceType.BROKER, broker, configs=[_BROKER_LIMIT])
               for broker in brokers[:1]],
            config_filter="all")
    except (KafkaError, KeyError, TypeError, ValueError) as error:
        logger.warning("could not check the topics' max.message.bytes: %s", error)
        return []
    if not isinstance(described, Mapping):  # kafka-python before 3.0 answers in another shape
        logger.warning("could not check the topics' max.message.bytes: unknown answer")
        return []
    limits = {f"topic {name}": entries.get(_TOPIC_LIMIT)
              for name, entries in (described.get("topic") or {}).items()}
    limits |= {f"broker {name} (the default for new topics)": entries.get(_BROKER_LIMIT)
               for name, entries in (described.get("broker") or {}).items()}
    return batch_size_refusals(settings, limits)


def batch_size_refusals(settings: Settings, limits: Mapping[str, Any]) -> list[str]:
    """The refusals for described configs (`{"value": "..."}` by name) below our batch size:
    one per limit, naming every topic or broker that has it."""
    wanted = settings.producer_batch_bytes
    below: dict[tuple[str, int], list[str]] = {}
    for name, entry in sorted(limits.items()):
        try:
            limit = int(entry["value"])
        except (KeyError, TypeError, ValueError):
            continue  # not described (a topic deleted meanwhile): nothing to compare
        if limit < wanted:
            key = _BROKER_LIMIT if name.startswith("broker") else _TOPIC_LIMIT
            below.setdefault((key, limit), []).append(name)
    return [f"{', '.join(names)} {'accepts' if len(names) == 1 else 'accept'} record batches "
            f"of at most {limit:,} bytes ({key}) but the setting producer_batch_bytes "
            f"(SLAMON_PRODUCER_BATCH_BYTES) is {wanted:,}: set it to {limit:,} or less, or "
            f"raise {key}"
            for (key, limit), names in sorted(below.items())]


def group_problems(admin: KafkaAdminClient, settings: Settings) -> list[str]:
    """A message when members of our consumer group read topics of another deployment."""
    from kafka.errors import KafkaError

    group = settings.app_id
    try:
        described = admin.describe_groups([group])
    except KafkaError as error:
        logger.warning("could not check consumer group %s: %s", group, error)
        return []
    members = (described.get(group) or {}).get("members") or []
    return foreign_members_problem(settings, members)


def foreign_members_problem(settings: Settings, members: Iterable[Mapping[str, Any]],
                            ) -> list[str]:
    """The refusal for `members` (as kafka-python describes them), if any reads foreign topics."""
    foreign: set[str] = set()
    who: list[str] = []
    for member in members:
        topics = {topic for topic in member_topics(member) if not _ours(settings, topic)}
        if topics:
            foreign |= topics
            name = member.get("group_instance_id") or member.get("member_id") or "?"
            who.append(f"{name} at {str(member.get('client_host') or '?').lstrip('/')}")
    if not foreign:
        return []
    shown = ", ".join(sorted(foreign)[:8]) + (", ..." if len(foreign) > 8 else "")
    return [
        f"consumer group {settings.app_id} (the setting app_id) has members reading topics of "
        f"another deployment: {shown} (members: {', '.join(sorted(who))}); this deployment "
        f"reads {settings.topic_prefix}* topics. Give each deployment its own app_id "
        f"(SLAMON_APP_ID), e.g. leave it unset so it follows topic_prefix, or stop the other "
        f"deployment"]


def _ours(settings: Settings, topic: str) -> bool:
    catalogue = settings.topics
    if topic.startswith(f"{settings.app_id}-"):
        return True  # changelogs and Faust's leader topic are named after the app id
    return any(topic == getattr(catalogue, attribute) for attribute in SHORT_NAMES.values())


def member_topics(member: Mapping[str, Any]) -> set[str]:
    """The topics one group member subscribes to or was assigned."""
    topics = set(subscribed_topics(member.get("member_metadata")))
    assignment = member.get("member_assignment")
    if isinstance(assignment, Mapping):
        for entry in assignment.get("assigned_partitions") or []:
            if isinstance(entry, Mapping) and isinstance(entry.get("topic"), str):
                topics.add(entry["topic"])
    return topics


def subscribed_topics(metadata: object) -> list[str]:
    """Topics of a consumer-protocol subscription: decoded, raw bytes, or text.

    kafka-python decodes subscriptions of versions it knows; Faust's (version 4) reaches us
    as text with undecodable bytes written `\\xNN`. Every version starts alike: version
    (int16), then the topics (int32 count, each an int16 length and the name). Anything
    that does not parse to valid topic names gives no topics.
    """
    if isinstance(metadata, Mapping):
        found = metadata.get("topics") or []
        return [t for t in found if isinstance(t, str)]
    if isinstance(metadata, str):
        raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m[1], 16)]),
                     metadata.encode("utf-8", "surrogateescape"))
    elif isinstance(metadata, bytes | bytearray | memoryview):
        raw = bytes(metadata)
    else:
        return []
    try:
        (count,) = struct.unpack_from(">i", raw, 2)
        offset, topics = 6, []
        for _ in range(count):
            (length,) = struct.unpack_from(">h", raw, offset)
            encoded = raw[offset + 2:offset + 2 + length]
            name = encoded.decode("ascii")
            if len(encoded) != length or not _TOPIC.fullmatch(name):
                return []
            topics.append(name)
            offset += 2 + length
    except (struct.error, UnicodeDecodeError):
        return []
    return topics
