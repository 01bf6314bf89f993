"""agents.devkit.localkafka and `slamon kafka` without a JVM: config, checks and messages."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.cli import kafka as cmd_kafka
from agents.cli import main
from agents.devkit import localkafka

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def listening_socket() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _properties(cfg: localkafka.BrokerConfig) -> dict[str, str]:
    lines = localkafka.render_properties(cfg).splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_kafka_version_comes_from_the_pom() -> None:
    assert localkafka.kafka_version().startswith("4.")


def test_properties_single_node_kraft_on_loopback(tmp_path: Path) -> None:
    cfg = localkafka.BrokerConfig(port=19092, home=tmp_path, partitions=4)
    props = _properties(cfg)
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == str(tmp_path / "19092" / "data")
    assert props["num.partitions"] == "4"


def test_properties_tuned_for_one_small_broker(tmp_path: Path) -> None:
    props = _properties(localkafka.BrokerConfig(home=tmp_path, controller_port=7000))
    assert props["controller.quorum.voters"].endswith(":7000")
    expected = {
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
    }
    assert {key: props[key] for key in expected} == expected


def test_status_without_a_broker(tmp_path: Path) -> None:
    found = localkafka.status(localkafka.BrokerConfig(port=19092, home=tmp_path))
    assert not found.running
    assert found.describe() == f"not running: 127.0.0.1:19092 (state {tmp_path / '19092'})"


def test_a_stale_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    cfg = localkafka.BrokerConfig(port=19092, home=tmp_path)
    cfg.state_dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cfg.pid_file.write_text(f"{dead.pid}\n")
    assert not localkafka.status(cfg).running
    assert localkafka.stop(cfg) is None
    assert not cfg.pid_file.exists()


def test_a_pid_file_naming_another_process_is_not_a_running_broker(tmp_path: Path) -> None:
    cfg = localkafka.BrokerConfig(port=19092, home=tmp_path)
    cfg.state_dir.mkdir(parents=True)
    cfg.pid_file.write_text("1\n")  # init: alive, but not this broker
    assert not localkafka.status(cfg).running


def test_start_refuses_a_port_in_use(tmp_path: Path, listening_socket: int) -> None:
    cfg = localkafka.BrokerConfig(port=listening_socket, home=tmp_path)
    with pytest.raises(localkafka.LocalKafkaError, match="is already in use by another process"):
        localkafka.start(cfg, say=lambda _: None)


def test_missing_java_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(localkafka.LocalKafkaError, match=r"java not found: .*Java 17"):
        localkafka.find_java()


def test_missing_mvn_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "kafka" / "pom.xml", deploy / "pom.xml")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    cfg = localkafka.BrokerConfig(home=tmp_path, deploy_dir=deploy)
    with pytest.raises(localkafka.LocalKafkaError, match=r"mvn not found: .*Maven"):
        localkafka.ensure_jars(cfg, say=lambda _: None)


def test_probe_is_false_where_nothing_listens(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert localkafka.probe(f"127.0.0.1:{port}", timeout=1.0) is False


def test_log_tail_without_logs(tmp_path: Path) -> None:
    cfg = localkafka.BrokerConfig(home=tmp_path)
    assert localkafka.log_tail(cfg) == f"(no log in {cfg.log_dir})"


@pytest.mark.parametrize(
    ("broker", "port"),
    [
        ("kafka://127.0.0.1:9300", 9300),
        ("kafka://localhost:9301;kafka://other:9092", 9301),
        ("kafka://kafka.example.com:9092", 9092),
    ],
)
def test_cli_default_port_follows_a_local_broker_setting(broker: str, port: int) -> None:
    assert cmd_kafka._default_port(broker) == port


def test_cli_status_exits_3_when_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kafka", "status", "--port", "19092", "--dir", str(tmp_path)]) == 3
    assert capsys.readouterr().out.startswith("not running: 127.0.0.1:19092")


def test_cli_stop_when_not_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kafka", "stop", "--all", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"no local Kafka broker under {tmp_path}\n"


def test_cli_start_error_is_one_line_and_exit_1(
    tmp_path: Path, listening_socket: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["kafka", "start", "--port", str(listening_socket), "--dir", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"slamon kafka start: 127.0.0.1:{listening_socket} is already in use")
