"""Records out on the wire: topic, key, value bytes and dead-letter headers."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
from hypothesis import given
from hypothesis import strategies as st

from agents.cli.tail import _render
from streams.outputs import (
    DLQ_MAX_VALUE_BYTES,
    compliance_input,
    dead_letter,
    feeds_compliance,
    read_dead_letter,
    record_output,
    rekeyed,
)
from streams.topics import TopicCatalogue

TOPICS = TopicCatalogue("x.", 4)
OUTCOME = {"id": "T1:response:0:outcome:0", "kind": "outcome", "ticket_id": "T1",
           "metric": "response", "service": "email", "customer": "acme", "status": "met"}


def test_a_ticket_record_is_keyed_by_its_ticket_as_compact_json() -> None:
    output = record_output(TOPICS, OUTCOME)
    assert (output.topic, output.key, output.headers) == ("x.outcomes", b"T1", None)
    assert output.value == orjson.dumps(OUTCOME)


def test_a_compliance_record_is_keyed_by_service_and_customer() -> None:
    record = {"kind": "compliance", "service": "email", "customer": "acme"}
    assert record_output(TOPICS, record)[:2] == ("x.compliance", b"email|acme")


def test_outcomes_and_their_retractions_feed_compliance_with_the_watermark() -> None:
    retraction = {"kind": "retraction", "retracts_kind": "outcome", **OUTCOME}
    assert feeds_compliance(OUTCOME) and feeds_compliance(retraction)
    assert not feeds_compliance({"kind": "retraction", "retracts_kind": "breach"})
    assert not feeds_compliance({"kind": "breach"})
    output = compliance_input(TOPICS, OUTCOME, 1234)
    assert (output.topic, output.key) == ("x.compliance.input", b"email|acme")
    assert output.value == orjson.dumps({"watermark": 1234, **OUTCOME})


@given(st.dictionaries(st.text(), st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.text()),
                       min_size=1),
       st.one_of(st.none(), st.integers(min_value=0, max_value=2**62)))
def test_the_compliance_input_from_the_records_json_is_the_merged_records(
        extra: dict, watermark: int | None) -> None:
    record = {**extra, **OUTCOME}
    record.pop("watermark", None)  # a record never has one
    encoded = record_output(TOPICS, record).value
    output = compliance_input(TOPICS, record, watermark, encoded)
    assert output.value == orjson.dumps({"watermark": watermark, **record})
    assert output == compliance_input(TOPICS, record, watermark)


def test_a_dead_letter_keeps_the_bytes_and_says_why_in_headers() -> None:
    output = dead_letter(TOPICS, b"T1", b"not json", "not_json", "not JSON: oops", 3, 42)
    assert (output.topic, output.key, output.value) == ("x.events.dlq", b"T1", b"not json")
    assert output.headers == [("slamon-reason", b"not_json"),
                              ("slamon-message", b"not JSON: oops"),
                              ("slamon-source", b"x.events:3:42")]
    assert read_dead_letter(output.headers) == {
        "reason": "not_json", "message": "not JSON: oops", "source": "x.events:3:42"}


def test_a_dead_letter_too_large_for_the_topic_is_cut_and_says_its_size() -> None:
    huge = b"x" * 1_000_000  # accepted by the broker's default limit as an event
    output = dead_letter(TOPICS, b"T1", huge, "too_large", "m" * 5000, 2, 9)
    headers = dict(output.headers or [])
    assert output.value == huge[:DLQ_MAX_VALUE_BYTES]
    assert headers["slamon-truncated-from"] == b"1000000"
    assert len(headers["slamon-message"]) == 1000
    assert headers["slamon-source"] == f"{TOPICS.events}:2:9".encode()
    small = dead_letter(TOPICS, b"T1", b"x" * DLQ_MAX_VALUE_BYTES, "too_large", "m", 2, 9)
    assert "slamon-truncated-from" not in dict(small.headers or [])


def test_other_messages_are_not_dead_letters() -> None:
    assert read_dead_letter(None) is None
    assert read_dead_letter(rekeyed(TOPICS, b"T1", b"{}", b"wrong").headers) is None


def test_a_rekeyed_event_goes_back_under_its_ticket() -> None:
    output = rekeyed(TOPICS, b"T1", b"{}", None)
    assert output == ("x.events", b"T1", b"{}", [("slamon-rekeyed-from", b"")])


def test_tail_prints_a_dead_letter_with_its_reason() -> None:
    output = dead_letter(TOPICS, None, b"\xff", "not_json", "bad", 0, 7)
    message = SimpleNamespace(headers=output.headers, value=output.value)
    assert orjson.loads(_render(message, orjson)) == {
        "kind": "dead_letter", "reason": "not_json", "message": "bad",
        "source": "x.events:0:7", "value": "\ufffd"}
    plain = SimpleNamespace(headers=[], value=b'{"kind":"breach"}')
    assert _render(plain, orjson) == b'{"kind":"breach"}'
