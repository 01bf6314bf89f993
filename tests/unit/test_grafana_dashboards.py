"""deploy/grafana: dashboard structure, queries that name only metrics slamon exports, provisioning.

Every metric name in a query must be exported by agents/metrics.py or
agents/ingest/metrics.py, or be a recording rule of deploy/prometheus/rules. With promtool
installed, every query is also parsed (as a recording rule, Grafana's variables
substituted); in CI promtool is required.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from ruamel.yaml import YAML

from agents.ingest.metrics import IngestMetrics
from agents.metrics import exported_names

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"(?<![\w:])(slamon[_:][a-zA-Z0-9_:]*)(?=[\s{\[\),]|$)")
_RANGE = re.compile(r"\b(rate|irate|increase)\((?:[^()]|\([^()]*\))*?\[([^\]]+)\]")
_GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "15m", "$customer": "acme",
                 "$service": "payments", "$window": "day"}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, json.loads(path.read_text())) for path in DASHBOARD_FILES]


def _queries(board: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def _recording_rules() -> set[str]:
    names = set()
    for path in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"):
        for group in YAML(typ="safe").load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def _ingest_names() -> set[str]:
    """Every sample name IngestMetrics exposes (as exported_names does for the monitor's)."""
    registry = CollectorRegistry()
    IngestMetrics(registry, ["desk"])
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum",
                                                                "_created")}
    return {family.name + suffix for family in registry.collect()
            for suffix in suffixes[family.type]}


def _process_names() -> set[str]:
    """Every sample name of the process, platform and GC collectors a worker registers."""
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    return {sample.name for family in registry.collect() for sample in family.samples}


def metric_names(expr: str) -> set[str]:
    """slamon metric and recording-rule names in a PromQL query (label values ignored)."""
    return set(_NAME.findall(_STRING.sub('""', expr)))


def test_name_extraction():
    expr = ('sum by (le) (rate(slamon_x_bucket{job="slamon_not_a_metric"}[5m])) '
            '/ slamon:y:rate5m{a="b"} + slamon_z')
    assert metric_names(expr) == {"slamon_x_bucket", "slamon:y:rate5m", "slamon_z"}


def test_committed_json_matches_the_generator():
    generator = _generator()
    assert {path.name for path in DASHBOARD_FILES} == set(generator.DASHBOARDS)
    for path in DASHBOARD_FILES:
        assert path.read_text() == generator.render(generator.DASHBOARDS[path.name]), (
            f"{path.name} is stale: run python deploy/grafana/generate.py")


@pytest.mark.parametrize("name,board", _dashboards())
def test_dashboard_structure(name, board):
    assert board["uid"].startswith("slamon-") and board["title"], name
    assert board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= pos.keys() and pos["x"] + pos["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not area & cells, f"{name}: {panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], f"{panel['title']}: no unit"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            assert target["datasource"] == DATASOURCE, panel["title"]


@pytest.mark.parametrize("name,board", _dashboards())
def test_rates_use_grafana_intervals(name, board):
    for expr in _queries(board):
        for function, window in _RANGE.findall(expr):
            allowed = {"$__rate_interval"} if function != "increase" else {
                "$__rate_interval", "$__range"}
            assert window in allowed, f"{name}: {function}(...[{window}]) in {expr}"


@pytest.mark.parametrize("name,board", _dashboards())
def test_queries_name_only_exported_metrics_and_recording_rules(name, board):
    known = exported_names() | _ingest_names() | _process_names() | _recording_rules()
    used = set()
    for expr in _queries(board):
        unknown = metric_names(expr) - known
        assert not unknown, f"{name}: {sorted(unknown)} in {expr}"
        used |= metric_names(expr)
    assert used, name


def test_queries_parse_as_promql(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool not installed: CI must parse the dashboard queries")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    rules = []
    for _, board in _dashboards():
        for expr in _queries(board):
            if expr.startswith("label_values("):
                continue
            for variable, value in _GRAFANA_VARS.items():
                expr = expr.replace(variable, value)
            rules.append({"record": f"dashboard:query:{len(rules)}", "expr": expr})
    path = tmp_path / "queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning():
    yaml = YAML(typ="safe")
    sources = yaml.load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    prometheus = [s for s in sources["datasources"] if s["type"] == "prometheus"]
    assert len(prometheus) == 1 and prometheus[0]["isDefault"]
    assert prometheus[0]["url"] == "http://prometheus:9090"
    providers = yaml.load((GRAFANA / "provisioning/dashboards/slamon.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    # docker-compose.yml mounts deploy/grafana/dashboards there
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
