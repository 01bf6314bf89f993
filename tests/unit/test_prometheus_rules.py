"""deploy/prometheus: promtool checks the config and rules and runs the rule unit tests.

promtool comes from Debian's `prometheus` package. Without it these tests skip
locally but fail in CI (the `CI` environment variable is set), where they must run.
The structural tests (labels, annotations, runbook anchors, a firing and a quiet
test per alert) need only YAML.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
EXPECTED_ALERTS = {
    "SLABreach", "SLAAtRiskClimbing", "SLAComplianceBurnRate", "SlamonNoEvents",
    "SlamonConsumerLagGrowing", "SlamonRejectsSpiking", "SlamonDetectionDelayHigh", "SlamonDown",
    "SlamonNotReady",
    "SlamonIngestRefusing", "SlamonIngestBrokerUnavailable", "SlamonIngestSourceUnavailable",
    "SlamonIngestDeadLetters",
}


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def _rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for group in _load(path)["groups"]
            for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not installed (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must run the Prometheus rule tests")
        pytest.skip(message)
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([_promtool(), *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    output = f"$ promtool {' '.join(args)}\n{result.stdout}{result.stderr}"
    print(output)
    assert result.returncode == 0, output
    return result


def _relative(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in paths]


def test_promtool_check_config():
    result = _run("check", "config", "deploy/prometheus/prometheus.yml")
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_check_rules():
    assert RULE_FILES
    _run("check", "rules", *_relative(RULE_FILES))


def test_promtool_test_rules():
    assert TEST_FILES
    result = _run("test", "rules", *_relative(TEST_FILES))
    assert result.stdout.count("SUCCESS") == len(TEST_FILES)


def test_every_expected_alert_is_defined():
    assert {rule["alert"] for rule in _alerts()} == EXPECTED_ALERTS


def test_alerts_carry_severity_annotations_and_a_runbook_anchor():
    anchors = {_anchor(line) for line in RUNBOOK.read_text().splitlines()
               if line.startswith("## ")}
    for rule in _alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        url = annotations["runbook_url"]
        assert url == f"docs/runbook.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/runbook.md has no section for {name}"


def test_each_alert_has_a_firing_and_a_quiet_test():
    firing: set[str] = set()
    quiet: set[str] = set()
    burns: set[str] = set()
    for path in TEST_FILES:
        for case in _load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                (firing if expected else quiet).add(check["alertname"])
                burns |= {alert["exp_labels"].get("burn") for alert in expected} - {None}
    assert firing >= EXPECTED_ALERTS, f"no firing test for {EXPECTED_ALERTS - firing}"
    assert quiet >= EXPECTED_ALERTS, f"no quiet test for {EXPECTED_ALERTS - quiet}"
    assert burns == {"fast", "slow"}


def test_recording_rule_names_follow_level_metric_operation():
    for rule in _rules():
        if "record" in rule:
            assert re.fullmatch(r"slamon:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^a-z0-9 _-]", "", text).replace(" ", "-")
