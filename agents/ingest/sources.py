"""The sources file (setting `sources`, SLAMON_SOURCES; default config/sources.yaml): one
entry per connected desk, read into `Source`s.

    sources:
      zendesk-eu:
        type: zendesk                   # jira, zendesk, servicenow, freshservice, zammad,
                                        # github, gitlab or generic
        secret: {env: ZENDESK_SECRET}   # or {file: /run/secrets/zendesk}; never inline
        statuses: {pause: [pending, hold]}      # each phase given replaces its defaults
        priorities: {urgent: P1, high: P2, normal: P3, low: P4}
        service: {path: detail.group_id, values: {"360001": payments}, default: support}
        customer: {path: detail.organization_id, default: unassigned}

Every problem is reported at once as `file:line: path: reason` (`SourcesError`). Secrets
are read from the environment or a file when the worker loads the file; their values never
appear in a message. A secret that cannot be read does not stop the worker: the source
answers 503 until it can be (the vendor retries), and the reason is logged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from types import MappingProxyType
from typing import Any

from agents.ingest.desks import DESKS, Desk
from agents.ingest.desks.base import body_digest
from agents.ingest.desks.generic import FIELD_ROLES, REQUIRED_FIELDS
from agents.ingest.fields import at, normalise, text
from agents.ingest.mapping import EXTRA_EVENTS, PHASES, FieldRule, Phase, SourceMapping
from agents.ingest.signatures import SCHEMES, SignatureSpec
from agents.settings import Secret
from sla.errors import ProblemsError
from sla.spec_reader import Path

__all__ = ["Source", "Sources", "SourcesError", "load_sources", "read_sources",
           "DEFAULT_MAX_BODY_BYTES"]

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: a ticket payload with a long comment fits easily
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KEYS = ("type", "secret", "signature", "max_body_bytes", "ticket_prefix", "statuses",
         "priorities", "default_priority", "service", "customer", "staff", "emit", "fields",
         "delivery_header")
_SIGNATURE_KEYS = ("scheme", "header", "prefix", "username", "tolerance", "timestamp_header")
_RULE_KEYS = ("path", "paths", "values", "default")


class SourcesError(ProblemsError):
    """An invalid sources file; `problems` lists each with its place."""

    heading = "invalid sources file"


@dataclass(frozen=True, slots=True)
class Source:
    """One connected desk: how to check, key and translate its deliveries."""

    name: str
    desk: Desk
    mapping: SourceMapping
    signature: SignatureSpec
    secret: Secret | None  # None: unavailable, see secret_problem
    secret_problem: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ticket_prefix: str = ""
    fields: Any = field(default_factory=lambda: MappingProxyType({}))
    delivery_header: str | None = None

    def ticket_id(self, vendor_ticket: str) -> str:
        """slamon's ticket id of a vendor ticket: the prefix (default `<source>-`) and its id."""
        return f"{self.ticket_prefix}{vendor_ticket}"

    def ticket_ref(self, body: Any, event_name: str | None) -> str | None:
        if self.desk.name == "generic":
            path = self.fields.get("ticket_id")
            return text(at(body, path)) if path else None
        return self.desk.ticket_ref(body, event_name)

    def delivery_id(self, headers: Mapping[str, str], body: Any, raw: bytes) -> str:
        """The vendor's delivery id (header, else body), else a digest of the body."""
        for header in (*((self.delivery_header,) if self.delivery_header else ()),
                       *self.desk.delivery_headers):
            value = headers.get(header)
            if value and value.strip():
                return value.strip()[:200]
        if self.desk.name == "generic" and self.fields.get("delivery_id"):
            found = text(at(body, self.fields["delivery_id"]))
            if found:
                return found[:200]
        return (self.desk.body_delivery_id(body) or body_digest(raw))[:200]


Sources = Mapping[str, Source]


def load_sources(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None,
                 read_secrets: bool = True) -> dict[str, Source]:
    """Read and check the sources file at `path`; SourcesError lists every problem.

    Raises OSError if the file cannot be read. With `read_secrets` False (check-config)
    secret files and variables are not looked at.
    """
    from agents.yamlfile import read_yaml_file

    document = read_yaml_file(path, SourcesError)
    return read_sources(document, os.environ if environ is None else environ, read_secrets)


def read_sources(document: Any, environ: Mapping[str, str], read_secrets: bool = True,
                 ) -> dict[str, Source]:
    """Sources from a parsed `agents.yamlfile.YamlDocument`."""
    reader = _Reader(document, environ, read_secrets)
    sources = reader.read()
    if reader.problems:
        raise SourcesError(reader.problems)
    return sources


class _Reader:
    def __init__(self, document: Any, environ: Mapping[str, str], read_secrets: bool) -> None:
        self.doc = document
        self.environ = environ
        self.read_secrets = read_secrets
        self.problems: list[str] = []

    def problem(self, path: Path, reason: str) -> None:
        self.problems.append(f"{self.doc.place(path)}: {reason}")

    def read(self) -> dict[str, Source]:
        tree = self.doc.tree
        if not isinstance(tree, dict) or set(tree) != {"sources"}:
            self.problem((), "expected one top-level key, `sources`, mapping names to desks")
            return {}
        entries = tree["sources"]
        if not isinstance(entries, dict):
            self.problem(("sources",), "expected a mapping of source names to desks")
            return {}
        sources = {}
        for name, entry in entries.items():
            path = ("sources", str(name))
            if not _NAME.match(str(name)):
                self.problem(path, "a source name may hold only letters, digits, '_' and '-' "
                                   "(it is part of the URL /ingest/<source>)")
                continue
            if not isinstance(entry, dict):
                self.problem(path, "expected a mapping (type, secret, ...)")
                continue
            source = self.source(str(name), entry, path)
            if source is not None:
                sources[str(name)] = source
        return sources

    def source(self, name: str, entry: dict[str, Any], path: Path) -> Source | None:
        before = len(self.problems)
        for key in entry:
            if key not in _KEYS:
                self.problem((*path, str(key)), f"unknown key (known: {', '.join(_KEYS)})")
        desk = DESKS.get(str(entry.get("type")))
        if desk is None:
            self.problem((*path, "type") if "type" in entry else path,
                         f"type must be one of {', '.join(DESKS)}"
                         + (f", not {entry['type']!r}" if "type" in entry else ""))
            return None
        secret, secret_problem = self.secret(entry.get("secret"), (*path, "secret"))
        signature = self.signature(desk, entry.get("signature"), (*path, "signature"))
        mapping = self.mapping(desk, entry, path)
        fields = self.fields(desk, entry.get("fields"), (*path, "fields"))
        limit = entry.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1024 <= limit <= 1 << 26:
            self.problem((*path, "max_body_bytes"), "expected a number of bytes, 1024..67108864")
        prefix = entry.get("ticket_prefix", f"{name}-")
        if not isinstance(prefix, str):
            self.problem((*path, "ticket_prefix"), "expected text (may be empty)")
        header = entry.get("delivery_header")
        if header is not None and not isinstance(header, str):
            self.problem((*path, "delivery_header"), "expected a header name")
        if len(self.problems) > before or signature is None or mapping is None:
            return None
        return Source(name, desk, mapping, signature, secret, secret_problem, limit,
                      str(prefix), MappingProxyType(fields), header)

    # -- parts -----------------------------------------------------------------
    def secret(self, value: Any, path: Path) -> tuple[Secret | None, str | None]:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            self.problem(path, "an inline secret is not allowed: use {env: VARIABLE} or "
                               "{file: PATH}")
            return None, None
        if not isinstance(value, dict) or len(value) != 1 or not set(value) <= {"env", "file"}:
            self.problem(path, "expected {env: VARIABLE} or {file: PATH}")
            return None, None
        (kind, where), = value.items()
        if not isinstance(where, str) or not where.strip():
            self.problem((*path, kind), "expected a variable name" if kind == "env"
                         else "expected a file path")
            return None, None
        if not self.read_secrets:
            return None, "not read"
        if kind == "env":
            found = self.environ.get(where)
            if not found:
                return None, f"environment variable {where} is not set"
            return Secret(found), None
        try:
            found = FilePath(where).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            return None, f"cannot read secret file {where}: {getattr(exc, 'strerror', None) or exc}"
        return (Secret(found), None) if found else (None, f"secret file {where} is empty")

    def signature(self, desk: Desk, value: Any, path: Path) -> SignatureSpec | None:
        spec = desk.signature
        if value is None:
            return spec
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping (scheme, header, ...)")
            return None
        for key in value:
            if key not in _SIGNATURE_KEYS:
                self.problem((*path, str(key)),
                             f"unknown key (known: {', '.join(_SIGNATURE_KEYS)})")
        scheme = value.get("scheme", spec.scheme)
        if scheme not in SCHEMES:
            self.problem((*path, "scheme"), f"must be one of {', '.join(SCHEMES)}")
            return None
        header = value.get("header", "Authorization" if scheme == "basic" and
                           "scheme" in value else spec.header)
        prefix = value.get("prefix", spec.prefix if scheme == spec.scheme else "")
        tolerance = value.get("tolerance", spec.tolerance)
        username = value.get("username")
        for key, got in (("header", header), ("prefix", prefix)):
            if not isinstance(got, str):
                self.problem((*path, key), "expected text")
                return None
        if not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or tolerance <= 0:
            self.problem((*path, "tolerance"), "expected seconds > 0")
            return None
        if username is not None and not isinstance(username, str):
            self.problem((*path, "username"), "expected text")
            return None
        return SignatureSpec(scheme, header, prefix,
                             str(value.get("timestamp_header", spec.timestamp_header)),
                             float(tolerance), username)

    def mapping(self, desk: Desk, entry: dict[str, Any], path: Path,
                ) -> SourceMapping | None:
        phases = self.phases(desk, entry.get("statuses"), (*path, "statuses"))
        priorities = self.priorities(desk, entry.get("priorities"), (*path, "priorities"))
        default_priority = entry.get("default_priority", desk.default_priority)
        if default_priority is not None and not isinstance(default_priority, str):
            self.problem((*path, "default_priority"), "expected a priority such as P3")
        if desk.name == "generic":
            for key in ("statuses", "priorities"):
                if key not in entry:
                    self.problem(path, f"a generic source needs `{key}` (no vendor defaults)")
        service = self.rule(desk.service, entry.get("service"), (*path, "service"))
        customer = self.rule(desk.customer, entry.get("customer"), (*path, "customer"))
        emit = self.names(entry.get("emit", []), (*path, "emit"), EXTRA_EVENTS)
        staff = self.names(entry.get("staff", list(desk.staff)), (*path, "staff"), None)
        if phases is None or priorities is None or service is None or customer is None:
            return None
        return SourceMapping.build(dict(phases), priorities, service, customer,
                                   default_priority if isinstance(default_priority, str)
                                   else None, emit, staff)

    def phases(self, desk: Desk, value: Any, path: Path,
               ) -> dict[Phase, list[str]] | None:
        """Each phase given replaces its defaults; a status given moves out of the others."""
        phases: dict[Phase, list[str]] = {p: list(desk.phases.get(p, ())) for p in PHASES}
        if value is None:
            return phases
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of phases ({', '.join(PHASES)}) to lists "
                               "of status names")
            return None
        given: dict[str, tuple[str, ...]] = {}
        ok = True
        for phase, names in value.items():
            where = (*path, str(phase))
            if phase not in PHASES:
                self.problem(where, f"unknown phase (known: {', '.join(PHASES)})")
                ok = False
                continue
            if not isinstance(names, list) or not all(text(n) is not None for n in names):
                self.problem(where, "expected a list of status names")
                ok = False
                continue
            for index, name in enumerate(names):
                key = normalise(str(text(name)))
                if key in given:
                    self.problem((*where, index), f"status {name!r} is also listed under "
                                                  f"{given[key][0]}")
                    ok = False
                given[key] = (str(phase),)
            phases[phase] = [str(text(n)) for n in names]
        if not ok:
            return None
        for phase in PHASES:
            if phase not in value:
                phases[phase] = [s for s in phases[phase] if normalise(s) not in given]
        return phases

    def priorities(self, desk: Desk, value: Any, path: Path) -> dict[str, str] | None:
        if value is None:
            return dict(desk.priorities)
        if not isinstance(value, dict) or not value:
            self.problem(path, "expected a mapping of vendor priorities to policy priorities")
            return None
        found = {}
        for vendor, ours in value.items():
            if not isinstance(ours, str) or not ours.strip():
                self.problem((*path, str(vendor)), "expected a policy priority such as P1")
                return None
            found[str(vendor)] = ours.strip()
        return found

    def rule(self, default: FieldRule, value: Any, path: Path) -> FieldRule | None:
        if value is None:
            return default
        if isinstance(value, str):
            return FieldRule((), MappingProxyType({}), value)  # a fixed value
        if not isinstance(value, dict):
            self.problem(path, "expected a fixed name or {path, values, default}")
            return None
        for key in value:
            if key not in _RULE_KEYS:
                self.problem((*path, str(key)), f"unknown key (known: {', '.join(_RULE_KEYS)})")
                return None
        paths = value.get("paths", [value["path"]] if "path" in value else list(default.paths))
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            self.problem((*path, "paths" if "paths" in value else "path"),
                         "expected a dotted field path (or a list of them)")
            return None
        values = value.get("values", {})
        if not isinstance(values, dict):
            self.problem((*path, "values"), "expected a mapping of vendor values to names")
            return None
        fallback = value.get("default", default.default)
        if fallback is not None and text(fallback) is None:
            self.problem((*path, "default"), "expected a name")
            return None
        return FieldRule(tuple(paths), MappingProxyType({str(k): str(v) for k, v in
                                                         values.items()}),
                         None if fallback is None else str(text(fallback)))

    def names(self, value: Any, path: Path, allowed: tuple[str, ...] | None,
              ) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(path, "expected a list of names")
            return []
        if allowed is not None:
            for index, name in enumerate(value):
                if name not in allowed:
                    self.problem((*path, index), f"must be one of {', '.join(allowed)}")
        return list(value)

    def fields(self, desk: Desk, value: Any, path: Path) -> dict[str, str]:
        if desk.name != "generic":
            if value is not None:
                self.problem(path, f"only a generic source takes fields (this is {desk.name})")
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"a generic source needs fields: at least "
                               f"{', '.join(REQUIRED_FIELDS)}")
            return {}
        found = {}
        for role, where in value.items():
            if role not in FIELD_ROLES:
                self.problem((*path, str(role)), f"unknown field (known: {', '.join(FIELD_ROLES)})")
            elif not isinstance(where, str) or not where:
                self.problem((*path, str(role)), "expected a dotted field path")
            else:
                found[str(role)] = where
        for role in REQUIRED_FIELDS:
            if role not in value:
                self.problem(path, f"missing field {role}")
        return found
