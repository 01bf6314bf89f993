"""The topic catalogue names every topic from the prefix; settings hand out one catalogue."""

from __future__ import annotations

import pytest

from agents.settings import Settings
from streams.topics import SHORT_NAMES, TopicCatalogue


def test_every_topic_is_named_from_the_prefix() -> None:
    topics = TopicCatalogue("x.", 8)
    assert (topics.events, topics.ticks, topics.compliance_input, topics.dlq, topics.policies) == (
        "x.events", "x.ticks", "x.compliance.input", "x.events.dlq", "x.policies")
    assert topics.outputs == ("x.breaches", "x.warnings", "x.outcomes", "x.compliance",
                              "x.events.dlq")


@pytest.mark.parametrize("short", sorted(SHORT_NAMES))
def test_a_short_name_is_the_topic_after_the_prefix(short: str) -> None:
    assert TopicCatalogue("x.").named(short) == f"x.{short}"


def test_other_names_are_taken_as_given() -> None:
    topics = TopicCatalogue("x.")
    assert topics.named("x.breaches") == "x.breaches"
    assert topics.named("slamon-clocks-changelog") == "slamon-clocks-changelog"


@pytest.mark.parametrize(("record", "topic"), [
    ({"kind": "breach"}, "sla.breaches"),
    ({"kind": "warning"}, "sla.warnings"),
    ({"kind": "outcome"}, "sla.outcomes"),
    ({"kind": "compliance"}, "sla.compliance"),
    ({"kind": "rejected"}, "sla.events.dlq"),
    ({"kind": "retraction", "retracts_kind": "breach"}, "sla.breaches"),
    ({"kind": "retraction", "retracts_kind": "outcome"}, "sla.outcomes"),
])
def test_a_record_goes_to_the_topic_of_its_kind(record: dict, topic: str) -> None:
    assert TopicCatalogue().for_record(record) == topic


def test_settings_build_one_catalogue() -> None:
    settings = Settings(topic_prefix="y.", partitions=3)
    assert settings.topics is settings.topics
    assert settings.topics is Settings(topic_prefix="y.", partitions=3).topics
    assert settings.topics == TopicCatalogue("y.", 3)
    assert Settings().topics.events == "sla.events"
