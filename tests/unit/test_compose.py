"""docker-compose.yml: the services exist and are wired to each other (no Docker engine needed).

The monitor's environment is validated by the real settings loader; the Prometheus config
mounted into the prometheus service must scrape the monitor where it listens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

from agents.devkit.localkafka import kafka_version
from agents.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"kafka", "monitor", "prometheus", "alertmanager", "grafana"}


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return dict(_yaml(REPO_ROOT / "docker-compose.yml")["services"])


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> repository path of the service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = source[2:]
    return found


def _option(service: dict[str, Any], name: str) -> str:
    for arg in service.get("command", []):
        if arg.startswith(f"--{name}="):
            return str(arg.split("=", 1)[1])
    raise AssertionError(f"no --{name} in {service.get('command')}")


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a container path of the service is mounted from."""
    for target, source in _mounts(service).items():
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return REPO_ROOT / source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted from the repository")


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    found = {}
    for entry in value.split(","):
        url = urlsplit(entry)
        found[url.scheme.upper()] = (url.hostname or "", int(url.port or 0))
    return found


def test_all_services_present(services: dict[str, dict[str, Any]]) -> None:
    assert services.keys() >= SERVICES


def test_kafka_is_kraft_with_the_version_we_run_locally(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    env = _env(kafka)
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    controller = _listeners(env["KAFKA_LISTENERS"])[env["KAFKA_CONTROLLER_LISTENER_NAMES"]]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:{controller[1]}"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "healthcheck" in kafka


def test_monitor_reaches_kafka_on_its_internal_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    monitor, kafka_env = services["monitor"], _env(services["kafka"])
    settings = load_settings(REPO_ROOT / "config" / "slamon.yaml", environ=_env(monitor))
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    internal = advertised[kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert settings.bootstrap_servers == [f"{internal[0]}:{internal[1]}"]
    assert internal[0] in {"kafka", services["kafka"].get("hostname")}
    listening = _listeners(kafka_env["KAFKA_LISTENERS"])
    assert listening[kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]][1] == internal[1]
    assert monitor["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_monitor_is_built_here_and_runs_the_worker(
    services: dict[str, dict[str, Any]],
) -> None:
    monitor = services["monitor"]
    settings = load_settings(REPO_ROOT / "config" / "slamon.yaml", environ=_env(monitor))
    assert monitor["build"] == "."
    assert (REPO_ROOT / "Dockerfile").is_file()
    assert monitor["command"][-1] == "worker"
    assert f"{settings.web_port}:{settings.web_port}" in monitor["ports"]
    assert settings.web_host == "0.0.0.0"
    assert f"EXPOSE {settings.web_port}" in (REPO_ROOT / "Dockerfile").read_text()


def test_prometheus_scrapes_the_monitor_and_alerts_to_alertmanager(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    config_path = _host_path(prometheus, _option(prometheus, "config.file"))
    config = _yaml(config_path)
    web_port = load_settings(
        REPO_ROOT / "config" / "slamon.yaml", environ=_env(services["monitor"])
    ).web_port
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert f"monitor:{web_port}" in targets
    alertmanagers = {
        target
        for am in config["alerting"]["alertmanagers"]
        for static in am["static_configs"]
        for target in static["targets"]
    }
    assert alertmanagers == {"alertmanager:9093"}
    assert "9093:9093" in services["alertmanager"]["ports"]
    for pattern in config.get("rule_files", []):
        assert list(config_path.parent.glob(pattern)), f"rule_files {pattern} matches nothing"


def test_alertmanager_config_is_mounted(services: dict[str, dict[str, Any]]) -> None:
    alertmanager = services["alertmanager"]
    path = _host_path(alertmanager, _option(alertmanager, "config.file"))
    assert "route" in _yaml(path)


def test_grafana_gets_the_provisioning_folder(services: dict[str, dict[str, Any]]) -> None:
    assert _mounts(services["grafana"])["/etc/grafana/provisioning"] == (
        "deploy/grafana/provisioning"
    )


def _published(service: dict[str, Any]) -> set[int]:
    return {int(port.split(":")[-1]) for port in service.get("ports", [])}


def test_grafana_datasources_point_at_services(services: dict[str, dict[str, Any]]) -> None:
    folder = _host_path(services["grafana"], "/etc/grafana/provisioning/datasources")
    urls = [
        urlsplit(source["url"])
        for path in sorted(folder.glob("*.y*ml"))
        for source in _yaml(path).get("datasources", [])
    ]
    assert urls, f"no data sources provisioned in {folder}"
    for url in urls:
        assert url.hostname in services, f"{url.geturl()}: no such service"
        assert url.port in _published(services[url.hostname]), f"{url.geturl()}: wrong port"


def test_grafana_dashboards_are_mounted_where_provisioned(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    folder = _host_path(grafana, "/etc/grafana/provisioning/dashboards")
    paths = [
        provider["options"]["path"]
        for path in sorted(folder.glob("*.y*ml"))
        for provider in _yaml(path).get("providers", [])
    ]
    assert paths, f"no dashboard providers in {folder}"
    for path in paths:
        assert list(_host_path(grafana, path).glob("*.json")), f"no dashboards mounted at {path}"


def test_published_ports_are_distinct(services: dict[str, dict[str, Any]]) -> None:
    published = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published))
