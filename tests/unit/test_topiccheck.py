"""agents.topiccheck without a broker: reading group members' topics, refusing foreign ones.

The members are shaped as kafka-python's `describe_groups` gives them (checked against a
real Faust worker on a broker: tests/integration/test_deployments.py).
"""

from __future__ import annotations

import struct

from agents.settings import Settings
from agents.topiccheck import (
    batch_size_refusals,
    foreign_members_problem,
    member_topics,
    subscribed_topics,
)


def _subscription(topics: list[str], version: int = 4, user_data: bytes = b"") -> bytes:
    body = struct.pack(">hi", version, len(topics))
    for topic in topics:
        body += struct.pack(">h", len(topic)) + topic.encode()
    return body + struct.pack(">i", len(user_data)) + user_data


def _as_kafka_python_text(raw: bytes) -> str:
    """What kafka-python's to_dict makes of bytes it could not decode."""
    return raw.decode(errors="backslashreplace")


def _member(topics: list[str], assigned: tuple[str, ...] | list[str] = (),
            instance: str = "host-6066") -> dict:
    user_data = b'\x92{"assignment":{"actives":{}},"url":"http://host:6066"}\xff'
    return {
        "member_id": f"{instance}-0c7e", "group_instance_id": instance,
        "client_host": "/10.0.0.7",
        "member_metadata": _as_kafka_python_text(_subscription(topics, user_data=user_data)),
        "member_assignment": {"assigned_partitions": [{"topic": t, "partitions": [0, 1]}
                                                      for t in assigned]},
    }


def test_faust_subscriptions_are_read_from_their_text_form() -> None:
    topics = ["sla.events", "sla.ticks", "slamon-slamon-clocks-changelog", "x" * 200]
    assert subscribed_topics(_as_kafka_python_text(_subscription(topics))) == topics
    assert subscribed_topics(_subscription(topics)) == topics
    assert subscribed_topics({"topics": ["sla.events"]}) == ["sla.events"]


def test_unreadable_subscriptions_give_no_topics() -> None:
    assert subscribed_topics(None) == []
    assert subscribed_topics(b"\x00") == []
    assert subscribed_topics(_subscription(["bad topic"])) == []
    assert subscribed_topics(_subscription(["sla.events"])[:9]) == []


def test_a_member_reads_what_it_subscribes_to_and_what_it_was_assigned() -> None:
    member = _member(["sla.events"], assigned=["sla.ticks"])
    assert member_topics(member) == {"sla.events", "sla.ticks"}


def test_members_of_this_deployment_are_welcome() -> None:
    settings = Settings(topic_prefix="sla.")
    ours = ["sla.events", "sla.ticks", "sla.compliance.input", "slamon-slamon-clocks-changelog",
            "slamon-__assignor-__leader"]
    assert foreign_members_problem(settings, [_member(ours, assigned=ours)]) == []
    assert foreign_members_problem(settings, []) == []


def test_a_member_of_another_deployment_is_refused_by_name() -> None:
    settings = Settings(topic_prefix="eu.", app_id="slamon")  # the app id shared by mistake
    theirs = _member(["sla.events", "sla.ticks", "slamon-slamon-clocks-changelog"],
                     instance="node-a-6066")
    mine = _member(["eu.events"], instance="node-b-6066")
    [problem] = foreign_members_problem(settings, [theirs, mine])
    assert problem.startswith(
        "consumer group slamon (the setting app_id) has members reading topics of another "
        "deployment: sla.events, sla.ticks (members: node-a-6066 at 10.0.0.7); this "
        "deployment reads eu.* topics. Give each deployment its own app_id (SLAMON_APP_ID)")


def test_a_longer_prefix_is_another_deployment() -> None:
    # sla.eu.events starts with sla. but is not a topic of the sla. deployment.
    settings = Settings(topic_prefix="sla.", app_id="shared")
    [problem] = foreign_members_problem(settings, [_member(["sla.eu.events"])])
    assert "deployment: sla.eu.events (members:" in problem


def test_topics_and_brokers_that_refuse_our_record_batches_are_named_once_per_limit() -> None:
    settings = Settings(producer_batch_bytes=262_144)
    limits = {  # as kafka-python's describe_configs gives each entry
        "topic sla.breaches": {"value": "100000", "config_source": "TOPIC_CONFIG"},
        "topic sla.warnings": {"value": "100000"},
        "topic sla.outcomes": {"value": "262144"},  # exactly the batch size: accepted
        "topic sla.ticks": {"value": "1048588"},
        "topic sla.gone": {},  # deleted between listing and describing
        "broker 1 (the default for new topics)": {"value": "200000"},
    }
    assert batch_size_refusals(settings, limits) == [
        "topic sla.breaches, topic sla.warnings accept record batches of at most 100,000 "
        "bytes (max.message.bytes) but the setting producer_batch_bytes "
        "(SLAMON_PRODUCER_BATCH_BYTES) is 262,144: set it to 100,000 or less, or raise "
        "max.message.bytes",
        "broker 1 (the default for new topics) accepts record batches of at most 200,000 "
        "bytes (message.max.bytes) but the setting producer_batch_bytes "
        "(SLAMON_PRODUCER_BATCH_BYTES) is 262,144: set it to 200,000 or less, or raise "
        "message.max.bytes",
    ]
    assert batch_size_refusals(Settings(producer_batch_bytes=100_000), limits) == []
