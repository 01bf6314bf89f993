"""Before the worker starts: topics that already exist must have the configured partitions.

`<prefix>events`, `<prefix>ticks`, the compliance input and the tables' changelogs are
co-partitioned: partition p of each belongs to the same tickets. A topic created earlier
with another count would silently send ticks and state to the wrong worker, so the
worker refuses to start and says which topic and what to do.
"""

from __future__ import annotations

import logging

from agents.settings import Settings

__all__ = ["partition_problems"]

logger = logging.getLogger(__name__)


def partition_problems(settings: Settings) -> list[str]:
    """One message per existing co-partitioned topic whose partition count differs."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    catalogue = settings.topics
    names = [catalogue.events, catalogue.ticks, catalogue.compliance_input]
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                 request_timeout_ms=15_000)
    except KafkaError as error:  # the worker itself reports an unreachable broker
        logger.warning("could not check topic partitions: %s", error)
        return []
    try:
        described = admin.describe_topics(names)
    except KafkaError as error:
        logger.warning("could not check topic partitions: %s", error)
        return []
    finally:
        admin.close()
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
