"""The sources file: defaults per desk, every problem at once as `file:line: path: reason`,
secrets from the environment or a file and never in a message; check-config on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents.ingest.sources import SourcesError, load_sources

ROOT = Path(__file__).resolve().parents[3]
GOOD = """\
sources:
  zendesk:
    type: zendesk
    secret: {env: ZD_SECRET}
    statuses:
      pause: [pending, hold]
  snow:
    type: servicenow
    secret: {file: SECRET_FILE}
    signature: {scheme: basic, username: slamon}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text.replace("SECRET_FILE", str(tmp_path / "snow.secret")))
    return path


def _problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(SourcesError) as caught:
        load_sources(path, environ or {})
    return [p.removeprefix(f"{path}:") for p in caught.value.problems]


def test_a_good_file_loads_with_each_desk_s_defaults(tmp_path: Path) -> None:
    (tmp_path / "snow.secret").write_text("from-a-file\n")
    sources = load_sources(_write(tmp_path, GOOD), {"ZD_SECRET": "from-env"})
    zendesk, snow = sources["zendesk"], sources["snow"]
    assert zendesk.secret is not None and zendesk.secret.reveal() == "from-env"
    assert snow.secret is not None and snow.secret.reveal() == "from-a-file"
    assert dict(zendesk.mapping.phases) == {
        "new": "open", "open": "open", "pending": "pause", "hold": "pause",
        "solved": "resolve", "closed": "close", "deleted": "cancel"}
    assert zendesk.mapping.priority("URGENT") == "P1"
    assert zendesk.signature.scheme == "zendesk"
    assert (snow.signature.scheme, snow.signature.header) == ("basic", "Authorization")
    assert zendesk.ticket_id("35436") == "zendesk-35436"


def test_the_shipped_example_is_valid(tmp_path: Path) -> None:
    sources = load_sources(ROOT / "config" / "sources.yaml", {}, read_secrets=False)
    assert set(sources) == {"zendesk", "jira", "servicenow", "github"}


def test_a_secret_that_cannot_be_read_disables_only_that_source(tmp_path: Path) -> None:
    sources = load_sources(_write(tmp_path, GOOD), {})
    assert sources["zendesk"].secret is None
    assert sources["zendesk"].secret_problem == "environment variable ZD_SECRET is not set"
    assert sources["snow"].secret_problem is not None
    assert sources["snow"].secret_problem.startswith("cannot read secret file ")


def test_an_inline_secret_is_refused_without_repeating_it(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "sources:\n  zd:\n    type: zendesk\n    secret: hunter2\n")
    assert problems == ["4: sources.zd.secret: an inline secret is not allowed: use "
                        "{env: VARIABLE} or {file: PATH}"]
    assert "hunter2" not in "".join(problems)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
sources:
  zd:
    type: zendesk
    secret: {env: X}
    statuses:
      pause: [pending]
      resolve: [solved, pending]
      waiting: [pending]
    colour: blue
  "bad name":
    type: jira
  gh:
    type: gihtub
  gen:
    type: generic
    secret: {env: G}
    fields: {ticket_id: id}
"""
    assert _problems(tmp_path, text) == [
        "9: sources.zd.colour: unknown key (known: type, secret, signature, max_body_bytes, "
        "ticket_prefix, statuses, priorities, default_priority, service, customer, staff, emit, "
        "fields, delivery_header)",
        "7: sources.zd.statuses.resolve[1]: status 'pending' is also listed under pause",
        "8: sources.zd.statuses.waiting: unknown phase (known: open, pause, resolve, close, "
        "cancel)",
        "10: sources.bad name: a source name may hold only letters, digits, '_' and '-' (it is "
        "part of the URL /ingest/<source>)",
        "13: sources.gh.type: type must be one of jira, zendesk, servicenow, freshservice, "
        "zammad, github, gitlab, generic, not 'gihtub'",
        "14: sources.gen: a generic source needs `statuses` (no vendor defaults)",
        "14: sources.gen: a generic source needs `priorities` (no vendor defaults)",
        "17: sources.gen.fields: missing field ts",
    ]


def test_a_status_listed_moves_out_of_its_default_phase(tmp_path: Path) -> None:
    text = "sources:\n  zd:\n    type: zendesk\n    secret: {env: X}\n" \
           "    statuses: {pause: [hold]}\n"
    phases = load_sources(_write(tmp_path, text), {"X": "x"})["zd"].mapping.phases
    assert phases["hold"] == "pause" and "pending" not in phases and phases["open"] == "open"


def test_the_top_level_must_be_sources(tmp_path: Path) -> None:
    assert _problems(tmp_path, "desks: {}\n") == [
        "1: expected one top-level key, `sources`, mapping names to desks"]


def _check_config(*paths: Path, env: dict[str, str] | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agents.cli", "check-config", *map(str, paths)],
                          cwd=ROOT, capture_output=True, text=True, env=env)


def test_check_config_accepts_the_shipped_sources_file() -> None:
    result = _check_config(ROOT / "config" / "sources.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"{ROOT / 'config' / 'sources.yaml'}: OK (sources, 4 desks: "
                             "github, jira, servicenow, zendesk)\n")


def test_check_config_reports_priorities_the_policies_do_not_serve_and_unmapped_statuses(
        tmp_path: Path) -> None:
    path = _write(tmp_path, """\
sources:
  zd:
    type: zendesk
    secret: {env: ZD}
    statuses:
      open: [new, open]
      pause: [pending, pendng]
    priorities: {urgent: P0, high: P2, normal: P3, low: P4}
""")
    import os

    env = os.environ | {"SLAMON_POLICIES": str(ROOT / "config" / "policies.yaml")}
    result = _check_config(path, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}:8: sources.zd.priorities.urgent: priority 'P0' is not served by the policies "
        "(their priorities: P1, P2, P3, P4)",
        f"{path}:7: sources.zd.statuses.pause[1]: unknown status 'pendng': zendesk has new, "
        "open, pending, hold, solved, closed, deleted",
        f"{path}:5: sources.zd.statuses: zendesk status 'hold' is in no phase: its tickets "
        "would be dead letters (unknown_status)",
        f"{path}: invalid (3 problems)",
    ]
