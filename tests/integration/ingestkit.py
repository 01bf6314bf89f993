"""Desk webhooks for the ingest integration tests and the benchmark: signed payloads of a
ticket's life, posted over real HTTP to a worker's /ingest/<source>."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from agents.ingest.desks import DESKS
from agents.ingest.signatures import sign

ZENDESK_SECRET = "zd-webhook-secret"
GITHUB_SECRET = "gh-webhook-secret"
SOURCES = """\
sources:
  zendesk:
    type: zendesk
    secret: {env: TEST_ZENDESK_SECRET}
    service: {path: detail.group_id, values: {"360001": payments}, default: support}
    customer: {path: detail.organization_id, values: {"360009": acme}, default: unassigned}
  github:
    type: github
    secret: {env: TEST_GITHUB_SECRET}
"""
POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: []
  targets:
    P1: {response: 15m, resolution: 2h}
    P2: {response: 30m, resolution: 4h}
    P3: {response: 2h, resolution: 8h}
    P4: {response: 1d, resolution: 3d}
"""


def write_config(folder: Path) -> tuple[Path, Path, dict[str, str]]:
    """(sources file, policies file, environment with the secrets)."""
    sources, policies = folder / "sources.yaml", folder / "policies.yaml"
    sources.write_text(SOURCES)
    policies.write_text(POLICIES)
    return sources, policies, {"SLAMON_SOURCES": str(sources),
                               "TEST_ZENDESK_SECRET": ZENDESK_SECRET,
                               "TEST_GITHUB_SECRET": GITHUB_SECRET}


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def zendesk_event(event_id: str, ticket: str, kind: str, at: float, status: str = "OPEN",
                  priority: str = "HIGH", event: dict | None = None,
                  created: float | None = None) -> bytes:
    return json.dumps({
        "type": f"zen:event-type:ticket.{kind}", "account_id": 1, "id": event_id,
        "time": iso(at), "zendesk_event_version": "2022-11-06", "subject": f"zen:ticket:{ticket}",
        "detail": {"id": ticket, "status": status, "priority": priority, "group_id": "360001",
                   "organization_id": "360009", "created_at": iso(created or at),
                   "updated_at": iso(at)},
        "event": event or {},
    }).encode()


def zendesk_headers(body: bytes, secret: str = ZENDESK_SECRET,
                    stamp: float | None = None) -> dict[str, str]:
    return sign(DESKS["zendesk"].signature, secret, body, iso(stamp or time.time())) | {
        "Content-Type": "application/json"}


def post(web: str, source: str, body: bytes, headers: dict[str, str],
         timeout: float = 30.0) -> tuple[int, dict]:
    request = urllib.request.Request(f"{web}/ingest/{source}", data=body, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
