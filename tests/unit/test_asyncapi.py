"""docs/asyncapi.yaml: a valid AsyncAPI 3 document that names every topic of the catalogue and
takes its record schemas from streams/schemas, so the documented contract cannot drift.

Validation is the AsyncAPI Initiative's own parser (npm `@asyncapi/parser`, installed by
scripts/setup into scripts/tools): the specification's JSON Schema, its semantic rules and
the `$ref`s into streams/schemas resolved. A missing install fails here, naming it.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from ruamel.yaml import YAML

from agents.clocks import Tick
from agents.ingest.observation import INGEST_REASONS
from agents.ingest.wire import DELIVERY, RECEIVED, SOURCE, VENDOR_EVENT
from streams import schemas
from streams.outputs import REKEYED_HEADER, compliance_input, feeds_compliance
from streams.topics import SHORT_NAMES, catalogue

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = REPO_ROOT / "docs" / "asyncapi.yaml"
TOOLS = REPO_ROOT / "scripts" / "tools"
SCHEMA_DIR = REPO_ROOT / "streams" / "schemas"
# Messages whose payload is not a slamon record: the desk's own bytes, input as received, and
# the internal topics' small values. Each is described in the document; everything else must
# take its payload from a file of streams/schemas.
NOT_RECORDS = {"rawDelivery", "rawDeadLetter", "rejectedInput", "tick", "complianceInput",
               "policyVersion"}


def parse(path: Path) -> dict[str, Any]:
    """What scripts/tools/validate-asyncapi.mjs reports for the document at `path`."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed (Debian: nodejs); run `bash scripts/setup`",
                    pytrace=False)
    if not (TOOLS / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("scripts/tools/node_modules lacks @asyncapi/parser: npm ci --prefix "
                    "scripts/tools; run `bash scripts/setup` (as root in CI)", pytrace=False)
    result = subprocess.run(["node", str(TOOLS / "validate-asyncapi.mjs"), str(path)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@functools.cache
def parsed() -> dict[str, Any]:
    return parse(DOCUMENT)


@functools.cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def problems(report: dict[str, Any]) -> list[str]:
    """Errors (severity 0) and warnings (1); information and hints are not problems."""
    return [f"{d['path']}: {d['message']} ({d['code']})" for d in report["diagnostics"]
            if d["severity"] <= 1]


def test_the_document_is_valid_asyncapi_3() -> None:
    assert str(document()["asyncapi"]).startswith("3.0")
    report = parsed()
    assert problems(report) == []
    assert report["channels"] is not None


def test_the_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    """The check above can fail: a wrong operation action and a schema file that does not
    exist are reported."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "streams").symlink_to(REPO_ROOT / "streams")
    broken = DOCUMENT.read_text(encoding="utf-8")
    broken = broken.replace("    action: receive\n    title: The clock agent applies service "
                            "events", "    action: publish\n    title: The clock agent "
                            "applies service events", 1)
    broken = broken.replace("../streams/schemas/warning.json", "../streams/schemas/warn.json")
    (tmp_path / "docs" / "asyncapi.yaml").write_text(broken, encoding="utf-8")
    found = "\n".join(problems(parse(tmp_path / "docs" / "asyncapi.yaml")))
    assert "action" in found and "warn.json" in found, found


def test_every_topic_of_the_catalogue_is_a_channel() -> None:
    topics = catalogue("sla.", 12)
    documented = {channel["address"].replace("{prefix}", "sla.")
                  for channel in parsed()["channels"].values()}
    assert documented == {topics.named(name) for name in SHORT_NAMES}
    prefix = document()["components"]["parameters"]["prefix"]
    assert prefix["default"] == "sla."


def test_records_take_their_schemas_from_streams_schemas() -> None:
    channels = parsed()["channels"]
    messages = {name: message for channel in channels.values()
                for name, message in channel["messages"].items()}
    from_files = {name for name, message in messages.items() if message["payloadId"]}
    assert set(messages) - from_files == NOT_RECORDS
    referenced = {m["payloadId"] for m in messages.values()} | {m["headersId"]
                                                                  for m in messages.values()}
    files = {f"{name}.json" for name in schemas.NAMES if name != "common"}
    assert files <= referenced, f"schemas no channel uses: {sorted(files - referenced)}"
    for ref_id in referenced - {None}:
        assert (SCHEMA_DIR / ref_id).is_file()
    # The raw $refs point into streams/schemas, not at a copy.
    text = DOCUMENT.read_text(encoding="utf-8")
    refs = [line.split('"')[1] for line in text.splitlines() if "$ref: \"../" in line]
    assert refs and all(ref.startswith("../streams/schemas/") for ref in refs)


@pytest.mark.parametrize("kind", sorted(schemas.KIND_SCHEMAS))
def test_each_record_kind_is_documented_on_its_topic(kind: str) -> None:
    """A record of each kind travels where the catalogue sends it, with its schema file."""
    topics = catalogue("sla.", 12)
    channels = parsed()["channels"]
    wanted = f"{schemas.KIND_SCHEMAS[kind]}.json"
    retracted = ["breach", "warning", "outcome"] if kind == "retraction" else [kind]
    for of_kind in retracted:
        record = {"kind": kind, "retracts_kind": of_kind}
        address = topics.for_record(record).replace("sla.", "{prefix}", 1)
        (channel,) = [c for c in channels.values() if c["address"] == address]
        assert wanted in {m["payloadId"] for m in channel["messages"].values()}, address


def test_headers_and_internal_values_match_the_code() -> None:
    components = document()["components"]
    raw_headers = components["schemas"]["rawHeaders"]
    assert set(raw_headers["properties"]) == {SOURCE, DELIVERY, RECEIVED, VENDOR_EVENT}
    event_headers = components["messages"]["serviceEvent"]["headers"]["properties"]
    assert set(event_headers) == {REKEYED_HEADER}
    reasons = components["messages"]["rawDeadLetter"]["headers"]["allOf"][1]["properties"]
    assert reasons["slamon-reason"]["enum"] == list(INGEST_REASONS)
    tick = components["messages"]["tick"]["payload"]
    jsonschema.validate(orjson.loads(Tick.encode(1_767_225_600_000)), tick)
    outcome = {"kind": "outcome", "id": "o-1", "ticket_id": "T-1", "service": "payments",
               "customer": "acme", "priority": "P1", "metric": "response"}
    message = compliance_input(catalogue("sla.", 12), outcome, 1_767_225_600_000)
    jsonschema.validate(orjson.loads(message.value),
                        components["messages"]["complianceInput"]["payload"])
    fed = components["messages"]["complianceInput"]["payload"]["properties"]["kind"]["enum"]
    assert {kind for kind in ("outcome", "survey", "breach", "warning", "compliance")
            if feeds_compliance({"kind": kind})} | {"retraction"} == set(fed)


def test_the_readme_links_the_event_api() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Event API" in readme
    assert "docs/asyncapi.yaml" in readme.split("## Event API", 1)[1].split("\n## ", 1)[0]
