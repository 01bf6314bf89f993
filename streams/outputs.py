"""Records out: what the agents send, as (topic, key, value, headers), and dead letters.

The processors decide *what* happens (which records, which are rejected); this
module decides how each goes on the wire, so producers and consumers of the
topics (`slamon tail`, the tests, the AsyncAPI document) agree on one place:

- a record goes to the topic of its kind (`TopicCatalogue.for_record`), keyed by
  `ticket_id`, or by `service|customer` for compliance records and the
  compliance input, as compact JSON;
- an outcome (or the retraction of one) and a survey also go to the compliance
  input, with the clock partition's watermark added;
- rejected input goes to the dead-letter topic as the original bytes, with the
  reason, a message and its source (`topic:partition:offset`) in headers;
- an event keyed by the wrong key goes back to the events topic keyed by its
  ticket, with the key it had in a header.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

import orjson

from streams.topics import TopicCatalogue

__all__ = [
    "Output",
    "REASON_HEADER",
    "MESSAGE_HEADER",
    "SOURCE_HEADER",
    "REKEYED_HEADER",
    "TRUNCATED_HEADER",
    "DLQ_MAX_VALUE_BYTES",
    "record_output",
    "feeds_compliance",
    "compliance_input",
    "dead_letter",
    "rekeyed",
    "read_dead_letter",
]

# Dead-letter headers (values UTF-8): the reject code, a message for a person, and where the
# message came from. A message without `slamon-reason` is not a dead letter.
REASON_HEADER: Final = "slamon-reason"
MESSAGE_HEADER: Final = "slamon-message"
SOURCE_HEADER: Final = "slamon-source"
# On a dead letter whose value was cut to DLQ_MAX_VALUE_BYTES: the original size in bytes.
TRUNCATED_HEADER: Final = "slamon-truncated-from"
# A dead letter must fit the smallest default message limit (1 MB) with its headers: the
# broker accepts an event of up to that size, so its copy is cut, never refused.
DLQ_MAX_VALUE_BYTES: Final = 256 * 1024
DLQ_MAX_MESSAGE_CHARS: Final = 1000
# On an event sent back to the events topic under its ticket: the key it arrived with.
REKEYED_HEADER: Final = "slamon-rekeyed-from"


class Output(NamedTuple):
    """One message to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


# Output(*fields) as `_tuple(Output, fields)`: without the NamedTuple's `__new__`, which runs
# in the interpreter, ~3 times per event in the worker.
_tuple: Final = tuple.__new__


def _dims_key(record: dict) -> bytes:
    """One customer's service: the key of compliance records and of the compliance input."""
    return f"{record['service']}|{record['customer']}".encode()


def record_output(topics: TopicCatalogue, record: dict) -> Output:
    """An output record (not a rejected one) on the topic of its kind."""
    key = _dims_key(record) if record["kind"] == "compliance" else record["ticket_id"].encode()
    return _tuple(Output, (topics.for_record(record), key, orjson.dumps(record), None))


def feeds_compliance(record: dict) -> bool:
    """An outcome, the retraction of one, or a survey: the compliance agent counts it."""
    kind = record["kind"]
    return kind == "outcome" or kind == "survey" or (
        kind == "retraction" and record["retracts_kind"] == "outcome")


def compliance_input(topics: TopicCatalogue, record: dict, watermark: int | None,
                     encoded: bytes | None = None) -> Output:
    """An outcome (or its retraction) for the compliance agent, with the clock watermark.

    Keyed by service|customer whatever later retargets do to priority, so every clock of a
    customer's service is counted on one partition. `encoded`: the record's JSON when at
    hand (`record_output`'s value); the watermark goes in front of its first field, which is
    the bytes `{"watermark": watermark, **record}` encodes to, without copying the record and
    encoding it again.
    """
    value = orjson.dumps(record) if encoded is None else encoded
    return _tuple(Output, (topics.compliance_input, _dims_key(record),
                           b'{"watermark":' + orjson.dumps(watermark) + b"," + value[1:], None))


def dead_letter(topics: TopicCatalogue, key: bytes | None, value: bytes, reason: str,
                message: str, partition: int, offset: int | None) -> Output:
    """Rejected input on the dead-letter topic: `value` as received, the reason in headers.

    A value too large for the topic keeps its first DLQ_MAX_VALUE_BYTES, with the original
    size in a header; the source header says where the whole message is.
    """
    headers = [
        (REASON_HEADER, reason.encode()),
        (MESSAGE_HEADER, message[:DLQ_MAX_MESSAGE_CHARS].encode()),
        (SOURCE_HEADER, f"{topics.events}:{partition}:{offset}".encode()),
    ]
    if len(value) > DLQ_MAX_VALUE_BYTES:
        headers.append((TRUNCATED_HEADER, str(len(value)).encode()))
        value = value[:DLQ_MAX_VALUE_BYTES]
    return Output(topics.dlq, key, value, headers)


def rekeyed(topics: TopicCatalogue, ticket_key: bytes, value: bytes,
            key: bytes | None) -> Output:
    """An event that arrived under `key`, sent back to the events topic under its ticket."""
    return Output(topics.events, ticket_key, value, [(REKEYED_HEADER, key or b"")])


def read_dead_letter(headers: Iterable[tuple[str, bytes]] | None,
                     ) -> dict[str, str | None] | None:
    """A consumed message's dead-letter headers as {reason, message, source}; None if not one.

    A header missing from a dead letter (not written by slamon) is None.
    """
    found = {name: value.decode(errors="replace") for name, value in (headers or [])}
    if REASON_HEADER not in found:
        return None
    return {"reason": found[REASON_HEADER], "message": found.get(MESSAGE_HEADER),
            "source": found.get(SOURCE_HEADER)}
