"""The JSON Schemas (draft 2020-12) of every record kind slamon reads or writes.

The schemas are package data in `streams/schemas/*.json`, one file per kind,
named by its `$id` (a relative URI, so a `$ref` to `common.json#/$defs/...`
resolves beside the file, on disk as in a registry). They are the contract
for consumers of the topics and the source of the AsyncAPI document; a unit
test validates every record `slamon replay` and the processors make against
them. This module only reads them: validating needs `jsonschema`, a test
dependency (the worker never validates its own output at run time).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["NAMES", "KIND_SCHEMAS", "schema", "schemas", "schema_for"]

# Every schema file, by name (its `$id` without `.json`).
NAMES = ("common", "event", "survey-event", "breach", "warning", "outcome", "retraction",
         "compliance", "survey", "rejected", "dead-letter-headers")

# An output record's `kind` -> the name of its schema.
KIND_SCHEMAS = {
    "breach": "breach",
    "warning": "warning",
    "outcome": "outcome",
    "retraction": "retraction",
    "compliance": "compliance",
    "survey": "survey",
    "rejected": "rejected",
}


@cache
def schema(name: str) -> dict[str, Any]:
    """The schema `name` (e.g. "breach"), as parsed JSON; KeyError naming the known ones."""
    if name not in NAMES:
        raise KeyError(f"no schema {name!r} (known: {', '.join(NAMES)})")
    text = (files("streams") / "schemas" / f"{name}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schemas() -> dict[str, dict[str, Any]]:
    """Every schema by its `$id` (`breach.json`, ...): what a validator's registry needs."""
    return {f"{name}.json": schema(name) for name in NAMES}


def schema_for(record: dict[str, Any]) -> dict[str, Any]:
    """The schema of an output record, by its `kind`; KeyError for an unknown kind."""
    kind = record.get("kind")
    if kind not in KIND_SCHEMAS:
        raise KeyError(f"no schema for a record of kind {kind!r} "
                       f"(known: {', '.join(KIND_SCHEMAS)})")
    return schema(KIND_SCHEMAS[kind])
