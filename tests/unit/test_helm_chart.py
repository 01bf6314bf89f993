"""The Helm chart (deploy/helm/slamon): linted, rendered for a few value sets, every manifest
checked against the Kubernetes API schemas, and what matters asserted on the objects.

Tools (installed by scripts/setup; a missing one fails here, naming its install):
- `helm` (Go module helm.sh/helm/v3, `go install`): lint and template;
- kubernetes-validate (PyPI, the test extra): the Kubernetes JSON schemas, strict (unknown
  fields refused), for the chart's oldest supported version and the newest it ships;
- node with scripts/tools (npm `@kubernetes-models/prometheus-operator`): ServiceMonitor and
  PrometheusRule against the Prometheus Operator's API types.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agents.settings import ENV_VARS, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "helm" / "slamon"
TOOLS = REPO_ROOT / "scripts" / "tools"
HELM_VERSION = "v3.22.0"  # scripts/setup installs this one
# The chart's kubeVersion floor and the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
VALUE_SETS = {"default": None, **{p.stem: p for p in sorted((CHART / "ci").glob("*.yaml"))}}
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
SETUP_HINT = "run `bash scripts/setup` (as root in CI) to install it"


# --- tools ---------------------------------------------------------------------------------------


@functools.cache
def helm() -> str:
    """The helm binary: on PATH or in Go's bin directory, where `go install` puts it."""
    found = shutil.which("helm")
    if found is None and shutil.which("go"):
        gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True,
                                check=False).stdout.strip()
        candidate = Path(gopath.split(os.pathsep)[0] or Path.home() / "go") / "bin" / "helm"
        found = str(candidate) if candidate.is_file() else None
    if found is None:
        pytest.fail(f"helm is not installed: `go install helm.sh/helm/v3/cmd/helm@{HELM_VERSION}`"
                    f" (Go module proxy); {SETUP_HINT}", pytrace=False)
    return found


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, check=False,
                          timeout=120)


def template_args(values: Path | None, *sets: str) -> list[str]:
    # helm built with `go install` defaults to Kubernetes v1.20; say which one is meant.
    args = ["template", "rel", str(CHART), "--namespace", "sla",
            "--kube-version", KUBE_VERSIONS[-1]]
    if values is not None:
        args += ["-f", str(values)]
    for assignment in sets:
        args += ["--set", assignment]
    return args


@functools.cache
def render(value_set: str, *sets: str) -> tuple[dict[str, Any], ...]:
    """The manifests `helm template` renders for a value set of VALUE_SETS, plus --set."""
    result = run_helm(*template_args(VALUE_SETS[value_set], *sets))
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in YAML(typ="safe").load_all(result.stdout) if doc)


def render_error(*sets: str) -> str:
    result = run_helm(*template_args(None, *sets))
    assert result.returncode != 0, f"rendered although it should not: {sets}"
    return result.stderr


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def worker(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """The worker container of the StatefulSet."""
    containers = one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "worker")


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is not installed (the Kubernetes JSON schemas): "
                    f"pip install -e '.[test]'; {SETUP_HINT}", pytrace=False)
    return kubernetes_validate


def operator_results(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each Prometheus Operator object checked by scripts/tools/validate-operator.mjs."""
    if shutil.which("node") is None:
        pytest.fail(f"node is not installed (Debian: nodejs); {SETUP_HINT}", pytrace=False)
    if not (TOOLS / "node_modules" / "@kubernetes-models" / "prometheus-operator").is_dir():
        pytest.fail("scripts/tools/node_modules lacks @kubernetes-models/prometheus-operator: "
                    f"npm ci --prefix scripts/tools; {SETUP_HINT}", pytrace=False)
    result = subprocess.run(["node", str(TOOLS / "validate-operator.mjs")],
                            input=json.dumps(objects), capture_output=True, text=True,
                            check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    results: list[dict[str, Any]] = json.loads(result.stdout)
    return results


def read_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


# --- lint and schemas ----------------------------------------------------------------------------


def test_helm_is_the_version_setup_installs() -> None:
    result = run_helm("version", "--short")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(HELM_VERSION.rsplit(".", 1)[0]), result.stdout


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint_passes(value_set: str) -> None:
    values = VALUE_SETS[value_set]
    result = run_helm("lint", str(CHART), "--strict", *(["-f", str(values)] if values else []))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_manifests_match_the_kubernetes_schemas(value_set: str, kube_version: str) -> None:
    validator = kubernetes_validate()
    docs = [d for d in render(value_set) if d["kind"] not in OPERATOR_KINDS]
    assert {d["kind"] for d in docs} >= {"StatefulSet", "Service", "ConfigMap"}
    problems = []
    for doc in docs:
        try:
            validator.validate(doc, kube_version, strict=True)
        except validator.ValidationError as error:
            problems.append(f"{doc['kind']} {doc['metadata']['name']}: {error}")
    assert problems == []


def test_the_schema_check_refuses_a_broken_manifest() -> None:
    """The validation above can fail: a misspelt field and a wrong type are refused."""
    validator = kubernetes_validate()
    statefulset = json.loads(json.dumps(one(render("default"), "StatefulSet")))
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(validator.ValidationError):
        validator.validate(statefulset, KUBE_VERSIONS[-1], strict=True)
    container["readinessProbe"] = container.pop("readinesProbe")
    statefulset["spec"]["replicas"] = "two"
    with pytest.raises(validator.ValidationError):
        validator.validate(statefulset, KUBE_VERSIONS[-1], strict=True)


def test_operator_objects_match_the_prometheus_operator_types() -> None:
    docs = [d for d in render("production-values") if d["kind"] in OPERATOR_KINDS]
    assert sorted(d["kind"] for d in docs) == sorted(OPERATOR_KINDS)
    results = operator_results(docs)
    assert [r["error"] for r in results] == [None, None], results


def test_the_operator_check_refuses_a_broken_object() -> None:
    monitor = json.loads(json.dumps(one(render("production-values"), "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["interval"] = "5 seconds"
    rule = json.loads(json.dumps(one(render("production-values"), "PrometheusRule")))
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    errors = [r["error"] for r in operator_results([monitor, rule])]
    assert "interval" in errors[0] and "expr" in errors[1], errors


# --- one source of truth -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alerts.yml", "recording.yml"])
def test_the_charts_rules_are_deploy_prometheus_rules(name: str) -> None:
    """Helm reads no file outside the chart: files/prometheus is a copy, kept equal here.
    After changing deploy/prometheus/rules: cp deploy/prometheus/rules/*.yml
    deploy/helm/slamon/files/prometheus/"""
    ours = (CHART / "files" / "prometheus" / name).read_bytes()
    assert ours == (REPO_ROOT / "deploy" / "prometheus" / "rules" / name).read_bytes(), (
        f"deploy/helm/slamon/files/prometheus/{name} differs from deploy/prometheus/rules/{name}")


def test_the_prometheus_rule_has_the_groups_of_the_rules_files() -> None:
    rules = REPO_ROOT / "deploy" / "prometheus" / "rules"
    expected = [*read_yaml(rules / "alerts.yml")["groups"],
                *read_yaml(rules / "recording.yml")["groups"]]
    rule = one(render("default", "metrics.prometheusRule.enabled=true"), "PrometheusRule")
    assert rule["spec"]["groups"] == expected


def test_the_default_policies_are_config_policies() -> None:
    ours = (CHART / "files" / "policies.yaml").read_bytes()
    assert ours == (REPO_ROOT / "config" / "policies.yaml").read_bytes(), (
        "deploy/helm/slamon/files/policies.yaml differs from config/policies.yaml: copy it")
    config = one(render("default"), "ConfigMap", "rel-slamon-config")
    assert config["data"]["policies.yaml"] == ours.decode().rstrip("\n") + "\n"


# --- the workers ---------------------------------------------------------------------------------


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def test_probes_ready_on_readyz_alive_on_healthz() -> None:
    container = worker(render("default"))
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"name": "http", "containerPort": 6066, "protocol": "TCP"} in container["ports"]


def test_each_worker_has_its_own_volume_for_rocksdb() -> None:
    docs = render("default")
    statefulset = one(docs, "StatefulSet")
    container = worker(docs)
    env = env_of(container)
    assert env["SLAMON_STORE"]["value"] == "rocksdb://"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["data"]["mountPath"] == env["SLAMON_DATA_DIR"]["value"] == "/var/lib/slamon"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    volumes = {v["name"] for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert "data" not in volumes  # the claim template provides it
    # Without persistence the data directory is an emptyDir, rebuilt from changelogs.
    minimal = one(render("minimal-values"), "StatefulSet")
    assert "volumeClaimTemplates" not in minimal["spec"]
    assert {"name": "data", "emptyDir": {}} in minimal["spec"]["template"]["spec"]["volumes"]


def test_config_is_mounted_as_a_directory_so_updates_reach_the_workers() -> None:
    docs = render("production-values")
    container = worker(docs)
    env = env_of(container)
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all("subPath" not in m for m in mounts.values())  # subPath mounts never update
    assert mounts["config"]["mountPath"] == "/etc/slamon/config"
    config = one(docs, "ConfigMap", "rel-slamon-config")
    for variable, key in [("SLAMON_POLICIES", "policies.yaml"), ("SLAMON_SOURCES", "sources.yaml"),
                          ("SLAMON_PORTAL_TOKENS", "portal.yaml")]:
        assert env[variable]["value"] == f"/etc/slamon/config/{key}"
        assert key in config["data"]
    tokens = YAML(typ="safe").load(config["data"]["portal.yaml"])
    assert tokens == {"customers": {"acme": {"file": "/run/secrets/slamon/portal/acme"},
                                    "globex": {"file": "/run/secrets/slamon/portal/globex"}}}


def test_a_policy_change_keeps_the_pods_and_a_settings_change_rolls_them() -> None:
    def annotations(*sets: str) -> dict[str, str]:
        statefulset = one(render("default", *sets), "StatefulSet")
        return dict(statefulset["spec"]["template"]["metadata"]["annotations"])

    base = annotations()
    assert annotations("policies=version: 99") == base  # reloaded by the running workers
    assert annotations("portal.customers={acme}", "portal.tokens.acme=t0123456789abcdef") == base
    assert annotations("settings.lateness=120") != base  # settings are read at start
    assert annotations("sources=sources: {}") != base  # so are the sources
    assert annotations("webhooks.secrets.SLAMON_X=y") != base


def test_the_worker_runs_unprivileged_on_a_read_only_root() -> None:
    docs = render("default")
    pod = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    container = worker(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user (Dockerfile)
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/var/lib/slamon", "/tmp"}
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp


def test_resources_and_graceful_shutdown() -> None:
    docs = render("default")
    pod = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    assert worker(docs)["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"},
                                         "limits": {"memory": "2Gi"}}
    # Faust gives each stage of its shutdown up to 60 s; the grace must outlast that.
    assert pod["terminationGracePeriodSeconds"] > 60


def test_the_worker_id_is_the_pods_name() -> None:
    env = env_of(worker(render("default")))
    assert ENV_VARS["worker_id"] == "SLAMON_WORKER_ID"
    assert env["SLAMON_WORKER_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    statefulset = one(render("default"), "StatefulSet")
    assert statefulset["spec"]["serviceName"] == "rel-slamon-headless"


def _environment(container: dict[str, Any], secrets: dict[tuple[str, str], str],
                 pod_name: str) -> Iterator[tuple[str, str]]:
    for name, entry in env_of(container).items():
        if "value" in entry:
            yield name, entry["value"]
        elif "fieldRef" in entry["valueFrom"]:
            yield name, pod_name
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            yield name, secrets[(ref["name"], ref["key"])]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_slamon_accepts_the_settings_the_chart_gives(value_set: str, tmp_path: Path) -> None:
    """The settings file and SLAMON_* variables of the rendered pod, loaded by slamon itself,
    with the mounted files laid out under tmp_path."""
    docs = render(value_set)
    container = worker(docs)
    known = set(ENV_VARS.values())
    given = {name for name in env_of(container) if name.startswith("SLAMON_")}
    assert given <= known, f"variables slamon does not read: {sorted(given - known)}"
    settings_map = one(docs, "ConfigMap", "rel-slamon-settings")
    settings_file = tmp_path / "slamon.yaml"
    settings_file.write_text(settings_map["data"]["slamon.yaml"])
    environ = {name: value.replace("/run/secrets/", f"{tmp_path}/secrets/")
               for name, value in _environment(container, {("slamon-kafka-tls", "key-password"):
                                                           "key-secret"}, "rel-slamon-2")
               if name in ENV_VARS.values()}
    for value in environ.values():  # the Secrets' files, as the volumes would mount them
        if value.startswith(f"{tmp_path}/secrets/"):
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            Path(value).write_text("not-a-real-secret\n")
    settings = load_settings(settings_file, environ)
    assert settings.worker_id == "rel-slamon-2"
    assert str(settings.data_dir) == "/var/lib/slamon" and settings.store == "rocksdb://"
    defaults = read_yaml(CHART / "values.yaml")
    values = read_yaml(VALUE_SETS[value_set]) if VALUE_SETS[value_set] else {}
    assert settings.partitions == values.get("partitions", defaults["partitions"])
    kafka = {**defaults["kafka"], **values.get("kafka", {})}
    assert (settings.broker, settings.security_protocol) == (kafka["broker"],
                                                             kafka["securityProtocol"])
    sources = Path("/etc/slamon/config/sources.yaml") if values.get("sources") else None
    assert settings.sources == sources  # not the image's example file when none is given


def test_secrets_are_mounted_as_files_and_never_in_the_pod_spec() -> None:
    docs = render("production-values")
    container = worker(docs)
    env = env_of(container)
    assert env["SLAMON_SASL_PASSWORD_FILE"]["value"] == "/run/secrets/slamon/kafka-sasl/password"
    assert "SLAMON_SASL_PASSWORD" not in env
    assert env["SLAMON_SSL_CAFILE"]["value"] == "/run/secrets/slamon/kafka-tls/ca.crt"
    assert env["SLAMON_SSL_KEY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "slamon-kafka-tls", "key": "key-password"}
    assert container["envFrom"] == [{"secretRef": {"name": "slamon-webhooks"}}]
    pod = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["kafka-sasl"]["secret"]["secretName"] == "slamon-kafka-password"
    assert volumes["portal"]["secret"]["secretName"] == "slamon-portal-tokens"
    assert volumes["webhooks"]["secret"]["secretName"] == "slamon-webhooks"
    assert not [d for d in docs if d["kind"] == "Secret"]  # all existing: the chart makes none


# --- services, disruption, monitoring ------------------------------------------------------------


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_services_and_the_disruption_budget_select_the_workers() -> None:
    docs = render("default")
    pod_labels = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    headless = one(docs, "Service", "rel-slamon-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    web = one(docs, "Service", "rel-slamon")
    for service in (headless, web):
        assert _selects(service["spec"]["selector"], pod_labels)
        assert service["spec"]["ports"][0]["targetPort"] == "http"
    budget = one(docs, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert _selects(budget["spec"]["selector"]["matchLabels"], pod_labels)


def test_the_service_monitor_scrapes_every_worker_as_job_slamon() -> None:
    docs = render("production-values")
    monitor = one(docs, "ServiceMonitor")
    services = [d for d in docs if d["kind"] == "Service"
                and _selects(monitor["spec"]["selector"]["matchLabels"], d["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in services] == ["rel-slamon-headless"]
    # The rules select up{job="slamon"}: the job is the Service's label named by jobLabel.
    assert services[0]["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "slamon"
    assert 'up{job="slamon"}' in (CHART / "files" / "prometheus" / "alerts.yml").read_text()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == services[0]["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    default_kinds = {d["kind"] for d in render("default")}
    assert not default_kinds & OPERATOR_KINDS  # off unless the cluster has the operator


# --- values that are refused ---------------------------------------------------------------------


def test_more_workers_than_partitions_is_refused() -> None:
    error = render_error("replicas=5", "partitions=4")
    assert "replicas (5) exceeds partitions (4)" in error and "1 workers would sit idle" in error
    assert render("default", "replicas=4", "partitions=4")  # equal is fine


@pytest.mark.parametrize(("sets", "message"), [
    (("settings.broker=kafka://x:1",), "settings.broker is set by the chart"),
    (("settings.worker_id=w",), "settings.worker_id is set by the chart"),
    (("kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN",
      "kafka.sasl.username=u"), "needs the password"),
    (("kafka.securityProtocol=SASL_SSL",), "needs kafka.sasl.mechanism and kafka.sasl.username"),
    (("kafka.securityProtocol=TLS",), 'kafka.securityProtocol "TLS" is not one of'),
    (("kafka.tls.certKey=tls.crt",), "certKey and kafka.tls.keyKey go together"),
    (("portal.customers={acme}",), "portal.customers needs the tokens"),
    (("partitions=0", "replicas=0"), "partitions must be at least 1"),
])
def test_inconsistent_values_are_refused_with_what_to_change(sets: tuple[str, ...],
                                                              message: str) -> None:
    assert message in render_error(*sets)


def test_every_value_is_documented_in_the_chart_readme() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    values = read_yaml(CHART / "values.yaml")

    def keys(tree: dict[str, Any], prefix: str = "") -> Iterator[str]:
        for key, value in tree.items():
            if isinstance(value, dict) and value and key not in ("settings", "resources",
                                                                  "podSecurityContext",
                                                                  "securityContext"):
                yield from keys(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    missing = [key for key in keys(values) if f"`{key}`" not in readme]
    assert missing == []
