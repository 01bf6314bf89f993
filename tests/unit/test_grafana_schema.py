"""The Grafana dashboards against Grafana's own schema: npm `@grafana/schema` (TypeScript types
generated from Grafana's CUE kinds), checked by TypeScript through
scripts/tools/check-dashboards.mjs. Each dashboard must satisfy the Dashboard kind and each
panel's options and custom field config its plugin's panelcfg: an unknown or misspelt field,
a wrong type or a value outside an enum fails. Installed by scripts/setup; a missing install
fails here, naming it.

Grafana's dashboard linter (Go, github.com/grafana/dashboard-linter) is not used: the Go
module proxy reachable here lists no version of it and refused its v0.1.1 (README, "Grafana
dashboards").
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO_ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
TOOLS = REPO_ROOT / "scripts" / "tools"
# What Grafana's own dashboard editor writes in a template variable but its published schema
# does not describe: a query variable's `definition` (its display text, written and read by
# Grafana's frontend) and `allValue: null` ("no custom all value", as Grafana exports it; the
# schema says a string or nothing). The check runs on copies without them, so they cannot
# hide anything else in the same variable.
def without_editor_fields(board: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `board` without those fields, and the JSON paths removed."""
    board = json.loads(json.dumps(board))
    removed = []
    for i, variable in enumerate(board.get("templating", {}).get("list", [])):
        if variable.get("type") == "query" and "definition" in variable:
            del variable["definition"]
            removed.append(f".templating.list[{i}].definition")
        if "allValue" in variable and variable["allValue"] is None:
            del variable["allValue"]
            removed.append(f".templating.list[{i}].allValue")
    return board, removed


def check(*files: Path) -> dict[str, Any]:
    if shutil.which("node") is None:
        pytest.fail("node is not installed (Debian: nodejs); run `bash scripts/setup`",
                    pytrace=False)
    for package in ("@grafana/schema", "typescript"):
        if not (TOOLS / "node_modules" / package).is_dir():
            pytest.fail(f"scripts/tools/node_modules lacks {package}: npm ci --prefix "
                        "scripts/tools; run `bash scripts/setup` (as root in CI)", pytrace=False)
    result = subprocess.run(["node", str(TOOLS / "check-dashboards.mjs"), *map(str, files)],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def messages(errors: list[dict[str, str]]) -> list[str]:
    return [f"{Path(e['file']).name}: {e['where']}: {e['message']}" for e in errors]


class Checked:
    """One run of the checker (TypeScript takes seconds to load the schema) over the
    dashboards, their copies without the editor fields, and a broken copy."""

    def __init__(self, directory: Path) -> None:
        self.copies = directory / "copies"
        self.copies.mkdir()
        self.removed: set[tuple[str, str]] = set()
        for path in DASHBOARDS:
            board, removed = without_editor_fields(json.loads(path.read_text(encoding="utf-8")))
            (self.copies / path.name).write_text(json.dumps(board), encoding="utf-8")
            self.removed |= {(path.name, place) for place in removed}
        # A misspelt panel option, a value outside an enum and a misspelt dashboard field.
        board, _ = without_editor_fields(json.loads(DASHBOARDS[0].read_text(encoding="utf-8")))
        self.first, self.second = [i for i, p in enumerate(board["panels"])
                                   if p["type"] == "stat"][:2]
        board["panels"][self.first]["options"]["colorMod"] = "background"
        board["panels"][self.second]["options"]["graphMode"] = "sparkles"
        board["graphTooltips"] = 1
        self.broken = directory / "broken.json"
        self.broken.write_text(json.dumps(board), encoding="utf-8")
        self.report = check(*DASHBOARDS, *(self.copies / p.name for p in DASHBOARDS),
                            self.broken)

    def errors(self, *files: Path) -> list[dict[str, str]]:
        wanted = {str(f) for f in files}
        return [e for e in self.report["errors"] if e["file"] in wanted]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    return Checked(tmp_path_factory.mktemp("dashboards"))


def test_the_dashboards_satisfy_grafanas_schema(checked: Checked) -> None:
    copies = [checked.copies / p.name for p in DASHBOARDS]
    counted = {c["file"]: c["panels"] for c in checked.report["checked"]}
    assert all(counted[str(c)] > 0 for c in copies)
    assert messages(checked.errors(*copies)) == []


def test_the_editor_fields_are_all_the_schema_finds_in_the_originals(checked: Checked) -> None:
    errors = checked.errors(*DASHBOARDS)
    reported = {(Path(e["file"]).name, e["where"]) for e in errors}
    assert reported and reported <= checked.removed, messages(errors)


def test_the_check_refuses_a_broken_dashboard(checked: Checked) -> None:
    found = messages(checked.errors(checked.broken))
    assert len(found) == 3, found
    assert any(f".panels[{checked.first}]" in m and "colorMod" in m for m in found), found
    assert any(f".panels[{checked.second}]" in m and '"sparkles"' in m for m in found), found
    assert any("graphTooltips" in m for m in found), found


def test_fields_without_a_default_are_present() -> None:
    """The schema check treats every field as optional (Grafana fills in defaults); these
    have none."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
        for panel in board["panels"]:
            assert panel["type"] and set(panel["gridPos"]) >= {"h", "w", "x", "y"}, panel
            for target in panel.get("targets", []):
                assert target["refId"], panel["title"]
