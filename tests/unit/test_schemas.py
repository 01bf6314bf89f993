"""Every record slamon reads or writes matches its JSON Schema (streams/schemas/*.json).

The records are real: `slamon replay` over the docs example and over a crafted input
that makes every kind and every reject reason replay can give, and the live clock
processor over the same input (dead letters with their headers). The event schema is
checked against the engine's own validation, line by line.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from referencing import Registry, Resource

import sla.errors
from agents.cli import main
from agents.metrics import REJECT_REASONS
from agents.policyfile import parse_policies
from agents.processor import ClockProcessor
from sla.engine import Engine
from streams import schemas
from streams.outputs import read_dead_letter
from streams.topics import TopicCatalogue

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
REGISTRY: Registry = Registry().with_resources(
    (uri, Resource.from_contents(body)) for uri, body in schemas.schemas().items())
REASONS = schemas.schema("common")["$defs"]["reason"]["enum"]
# Reasons only the event schema explains (the others depend on policies or the ticket).
SCHEMA_REASONS = {"missing_field", "bad_type", "bad_timestamp"}

POLICIES = """\
version: 1
metrics:
  next_response: {start: [customer_replied], stop: [agent_replied], cycles: per_start}
corporate:
  warn_at: [0.5]
  targets:
    P1: {response: 15m, resolution: 4h, next_response: 1h}
customers:
  acme:
    credits: [{below: 0.99, credit: 0.05}]
"""


def _event(line: str, ticket: str, kind: str, ts: Any, **fields: Any) -> bytes:
    body = {"event_id": f"e{line}", "ticket_id": ticket, "type": kind, "ts": ts, **fields}
    return orjson.dumps(body)


def _at(clock: str, day: str = "2026-12-01") -> str:
    return f"{day}T{clock}:00Z"


OPENED = {"service": "email", "customer": "acme", "priority": "P1"}
# One line per comment: what the line makes happen in replay.
CRAFTED: list[bytes] = [
    _event("1", "A", "opened", _at("00:00"), **OPENED),
    _event("2", "B", "opened", _at("00:01"), **OPENED),
    _event("3", "B", "responded", _at("00:05")),
    _event("4", "B", "customer_replied", _at("00:06")),
    _event("5", "B", "agent_replied", _at("00:10")),  # a next_response outcome
    _event("6", "C", "opened", _at("00:20"), **OPENED),  # A's response breach fires (00:15)
    _event("7", "A", "responded", _at("00:12")),  # late: the breach is retracted
    _event("8", "B", "closed", _at("00:03")),  # late: lines 3-5 rejected, an outcome retracted
    _event("9", "B", "responded", _at("00:30")),  # ticket_closed
    _event("10", "A", "opened", _at("00:21"), **OPENED),  # already_opened
    _event("11", "A", "responded", _at("00:00", "2026-11-30")),  # before_opened
    _event("12", "Z", "responded", _at("00:22")),  # held, then never_opened
    _event("13", "D", "opened", _at("00:25"), **{**OPENED, "priority": "P9"}),  # no_target
    b"{oops",  # not_json
    _event("15", "E", "opened", _at("00:25"), **OPENED, padding="a" * 70_000),  # too_large
    b'{"ticket_id": "E", "type": "opened", "ts": "2026-12-01T00:25:00Z"}',  # missing_field
    _event("17", "E", "responded", True),  # bad_type
    _event("18", "E", "responded", "yesterday"),  # bad_timestamp
    _event("19", "E", "exploded", _at("00:25")),  # unknown_type
    _event("20", "C", "responded", 1796084760000),  # epoch milliseconds
    _event("21", "C", "responded", "2030-01-01T00:00:00Z"),  # future_ts: past --as-of + 5 min
    _event("22", "B", "survey", _at("00:40"), score=4, scale_min=1, scale_max=5),  # a survey
    _event("23", "C", "survey", _at("00:41"), score=4, scale_min=1,
           scale_max=5),  # survey_before_close: C is open
    _event("24", "Y", "survey", _at("00:42"), score=1, scale_min=0,
           scale_max=1),  # survey_unattributed: Y never seen, no service or customer
    _event("25", "Y", "survey", _at("00:43"), score=9, scale_min=1, scale_max=5),  # bad_survey
]
AS_OF = "2026-12-02T06:00:00Z"


def validate(name: str, instance: Any) -> list[str]:
    """The schema's complaints about `instance`, each with where in it: [] when it matches."""
    validator = jsonschema.Draft202012Validator(
        schemas.schema(name), registry=REGISTRY, format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, error.absolute_path)) or '.'}: {error.message}"
            for error in validator.iter_errors(instance)]


def assert_record(record: dict[str, Any]) -> None:
    problems = validate(schemas.KIND_SCHEMAS[record["kind"]], record)
    assert problems == [], f"{record['kind']} record {record} does not match its schema"


def replay(tmp_path: Path, events: Path, policies: Path, *extra: str) -> list[dict[str, Any]]:
    out = tmp_path / "records.jsonl"
    status = main(["replay", "--policies", str(policies), "--events", str(events),
                   "--output", str(out), *extra])
    assert status == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(CRAFTED) + b"\n")
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES, encoding="utf-8")
    return events, policies


# -- the schemas themselves -----------------------------------------------------------------


@pytest.mark.parametrize("name", schemas.NAMES)
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    body = schemas.schema(name)
    jsonschema.Draft202012Validator.check_schema(body)
    assert body["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert body["$id"] == f"{name}.json"
    assert body.get("description"), f"{name}.json says nothing about what it describes"


def test_every_output_kind_has_a_closed_schema_that_requires_its_kind() -> None:
    for kind, name in schemas.KIND_SCHEMAS.items():
        body = schemas.schema(name)
        assert body["properties"]["kind"] == {"const": kind}
        assert "kind" in body["required"] and body["additionalProperties"] is False


def test_the_schemas_ship_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "schemas/*.json" in pyproject["tool"]["setuptools"]["package-data"]["streams"]
    on_disk = {path.stem for path in (ROOT / "streams" / "schemas").glob("*.json")}
    assert on_disk == set(schemas.NAMES)


def test_reject_reasons_are_the_ones_slamon_gives() -> None:
    assert set(REJECT_REASONS) <= set(REASONS)
    known = getattr(sla.errors, "REASONS", None)  # one vocabulary in sla/errors.py (issue 8)
    if known is not None:
        assert sorted(known) == sorted(REASONS)


def test_unknown_kinds_and_names_are_refused_with_what_is_known() -> None:
    with pytest.raises(KeyError, match="known: breach"):
        schemas.schema_for({"kind": "dead_letter"})
    with pytest.raises(KeyError, match="known: common, event"):
        schemas.schema("events")


# -- replay ---------------------------------------------------------------------------------


def test_the_docs_example_replays_to_records_that_match(tmp_path: Path) -> None:
    records = replay(tmp_path, EXAMPLES / "events.jsonl", EXAMPLES / "policies.yaml",
                     "--as-of", "2027-01-01T00:00:00Z")
    assert {r["kind"] for r in records} >= {"breach", "warning", "outcome", "compliance"}
    for record in records:
        assert_record(record)
    for line in (EXAMPLES / "events.jsonl").read_text(encoding="utf-8").splitlines():
        assert validate("event", json.loads(line)) == []


def test_every_kind_and_reason_replay_gives_matches(tmp_path: Path,
                                                    crafted: tuple[Path, Path]) -> None:
    records = replay(tmp_path, *crafted, "--as-of", AS_OF)
    for record in records:
        assert_record(record)
    assert {r["kind"] for r in records} == set(schemas.KIND_SCHEMAS)
    assert {r["retracts_kind"] for r in records if r["kind"] == "retraction"} >= {
        "breach", "outcome"}
    given = {r["reason"] for r in records if r["kind"] == "rejected"}
    assert given == set(REASONS) - {"internal_error"}  # live only: a bug in the engine


def test_the_event_schema_refuses_what_the_engine_refuses_for_its_shape(
        tmp_path: Path, crafted: tuple[Path, Path]) -> None:
    records = replay(tmp_path, *crafted, "--as-of", AS_OF)
    reasons = {r["line"]: r["reason"] for r in records if r["kind"] == "rejected"}
    for line, raw in enumerate(CRAFTED, 1):
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            continue
        problems = validate("event", event)
        assert bool(problems) == (reasons.get(line) in SCHEMA_REASONS), (line, problems)


def test_golden_replays_match() -> None:
    golden = ROOT / "tests" / "golden"
    cases = sorted(golden.glob("*/expected.jsonl"))
    assert cases or not golden.is_dir(), f"{golden} holds no <case>/expected.jsonl"
    for expected in cases:
        for record in map(json.loads, expected.read_text(encoding="utf-8").splitlines()):
            assert_record(record)


# -- live: the clock processor's messages ---------------------------------------------------


class _Late:
    """The wall clock of a worker that gets the input long after it happened."""

    def __call__(self) -> int:
        return 1796169600000  # 2026-12-02T00:00:00Z


def _live_outputs() -> Iterator[tuple[str, list[tuple[str, bytes]] | None, bytes]]:
    topics = TopicCatalogue("sla.", 4)
    processor = ClockProcessor(Engine(parse_policies(POLICIES)), {}, topics, clock=_Late())
    for offset, raw in enumerate(CRAFTED):
        try:
            key = orjson.loads(raw).get("ticket_id", "").encode()
        except orjson.JSONDecodeError:
            key = b""
        for output in processor.handle_event(0, key, raw, offset):
            yield output.topic, output.headers, output.value
    for output in processor.handle_tick(0):
        yield output.topic, output.headers, output.value


def test_the_live_processor_writes_records_and_dead_letters_that_match() -> None:
    seen: set[str] = set()
    for topic, headers, value in _live_outputs():
        if topic == "sla.events.dlq":
            assert validate("dead-letter-headers",
                            {name: raw.decode() for name, raw in headers or []}) == []
            dead = read_dead_letter(headers)
            assert dead is not None
            seen.add(dead["reason"] or "")
            if value.startswith(b'{"kind":"rejected"'):
                assert_record(orjson.loads(value))
        elif topic == "sla.compliance.input":
            record = orjson.loads(value)
            assert isinstance(record.pop("watermark"), int)
            assert_record(record)
        else:
            record = orjson.loads(value)
            assert_record(record)
            seen.add(record["kind"])
    assert seen >= {"breach", "warning", "outcome", "retraction", "not_json", "too_large",
                    "ticket_closed", "never_opened", "no_target"}
