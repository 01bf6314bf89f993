"""A local single-node Apache Kafka broker (KRaft mode) run from the Maven jars in deploy/kafka/.

For development, the demo and the tests: `slamon kafka start|stop|status` and the pytest
fixture call this module. Production needs none of it; there SLAMON_BROKER names a cluster.

One broker's state lives in its own directory, `<home>/<port>/` (home defaults to `.kafka/`
at the repository root):

    server.properties   the broker's configuration, rewritten on every start
    data/               the KRaft log dir, formatted once with kafka.tools.StorageTool
    logs/server.log     the broker's Log4j log (deploy/kafka/log4j2.xml)
    logs/console.log    the JVM's own stdout and stderr (crashes before logging starts)
    broker.pid          the pid of the running `kafka.Kafka` process

Only the standard library is imported at module level; kafka-python is imported by the
readiness probe when it runs.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sla.errors import SlamonError

__all__ = [
    "REPO_ROOT",
    "BrokerConfig",
    "BrokerStatus",
    "LocalKafkaError",
    "BrokerAlreadyRunning",
    "ensure_jars",
    "find_java",
    "kafka_version",
    "render_properties",
    "start",
    "stop",
    "status",
    "instances",
    "probe",
    "log_tail",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
MIN_JAVA = 17
Say = Callable[[str], None]


class LocalKafkaError(SlamonError):
    """The local broker cannot be fetched, started or stopped; the message says why."""


class BrokerAlreadyRunning(LocalKafkaError):
    """`start` found this broker already running."""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how one local broker runs. `controller_port` 0 means `port + 1`."""

    port: int = 9092
    controller_port: int = 0
    host: str = "127.0.0.1"
    home: Path = REPO_ROOT / ".kafka"
    deploy_dir: Path = DEPLOY_DIR
    heap: str = "512m"
    partitions: int = 1  # num.partitions: the partition count of auto-created topics
    start_timeout: float = 90.0
    extra: dict[str, str] = field(default_factory=dict)  # more server.properties entries

    @property
    def controller(self) -> int:
        return self.controller_port or self.port + 1

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.home / str(self.port)

    @property
    def lib_dir(self) -> Path:
        return self.deploy_dir / "lib"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "broker.pid"


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What `status` finds: the pid when the broker runs, else None."""

    config: BrokerConfig
    pid: int | None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def describe(self) -> str:
        where = f"{self.config.bootstrap} (state {self.config.state_dir})"
        if self.pid is None:
            return f"not running: {where}"
        return f"running: pid {self.pid} on {where}"


# --- prerequisites: java and the jars ---------------------------------------------------------


def find_java() -> str:
    """The `java` to run the broker with (JAVA_HOME first, then PATH); it must be Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise LocalKafkaError(
            "java not found: the local Kafka broker needs a Java 17+ runtime on PATH "
            "(Debian: apt-get install openjdk-17-jre-headless), or set SLAMON_BROKER to use "
            "an existing broker"
        )
    major = _java_major(java)
    if major is not None and major < MIN_JAVA:
        raise LocalKafkaError(f"{java} is Java {major}; Kafka 4 needs Java {MIN_JAVA} or newer")
    return java


def _java_major(java: str) -> int | None:
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def kafka_version(deploy_dir: Path = DEPLOY_DIR) -> str:
    """The Kafka version the POM in `deploy_dir` pins (property `kafka.version`)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(deploy_dir / "pom.xml").getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise LocalKafkaError(f"{deploy_dir / 'pom.xml'}: no <kafka.version> property")
    return (node.text or "").strip()


def _broker_jar(cfg: BrokerConfig) -> Path:
    return cfg.lib_dir / f"kafka_2.13-{kafka_version(cfg.deploy_dir)}.jar"


def ensure_jars(cfg: BrokerConfig, say: Say = print) -> None:
    """Fetch the broker's jars with Maven unless lib/ already holds the pinned version."""
    if _broker_jar(cfg).is_file():
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            f"mvn not found: the Kafka jars in {cfg.lib_dir} are fetched with Maven "
            "(Debian: apt-get install maven); or set SLAMON_BROKER to use an existing broker"
        )
    for stale in cfg.lib_dir.glob("*.jar"):  # another version's jars must not mix in
        stale.unlink()
    say(f"fetching Kafka {kafka_version(cfg.deploy_dir)} jars with Maven into {cfg.lib_dir} ...")
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(cfg.deploy_dir / "pom.xml"),
        "dependency:copy-dependencies",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not _broker_jar(cfg).is_file():
        output = _last_lines(result.stdout + result.stderr, 30)
        raise LocalKafkaError(f"`{' '.join(command)}` failed ({result.returncode}):\n{output}")


# --- configuration and formatting ---------------------------------------------------------------


def render_properties(cfg: BrokerConfig) -> str:
    """server.properties for a combined broker+controller node, tuned for a small machine."""
    listeners = f"PLAINTEXT://{cfg.host}:{cfg.port},CONTROLLER://{cfg.host}:{cfg.controller}"
    entries = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{cfg.host}:{cfg.controller}",
        "listeners": listeners,
        "advertised.listeners": f"PLAINTEXT://{cfg.host}:{cfg.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(cfg.data_dir),
        "num.partitions": str(cfg.partitions),
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.retention.hours": "168",
    } | cfg.extra
    lines = ["# Written by `slamon kafka start` on every start; edit BrokerConfig, not this file."]
    return "\n".join(lines + [f"{key}={value}" for key, value in entries.items()]) + "\n"


def _java_command(cfg: BrokerConfig, java: str, main: str, *args: str) -> list[str]:
    return [
        java, f"-Xmx{cfg.heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={cfg.deploy_dir / 'log4j2.xml'}",
        f"-Dkafka.logs.dir={cfg.log_dir}",
        "-cp", str(cfg.lib_dir / "*"), main, *args,
    ]  # fmt: skip


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _format_storage(cfg: BrokerConfig, java: str) -> None:
    if (cfg.data_dir / "meta.properties").is_file():
        return
    command = _java_command(
        cfg, java, "kafka.tools.StorageTool", "format", "--ignore-formatted",
        "-t", _new_cluster_id(), "-c", str(cfg.properties_file),
    )  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = _last_lines(result.stdout + result.stderr, 30)
        raise LocalKafkaError(f"formatting {cfg.data_dir} failed ({result.returncode}):\n{output}")


# --- processes ------------------------------------------------------------------------------------

_children: dict[int, subprocess.Popen[bytes]] = {}  # brokers this process started, to reap them


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False  # a zombie: exited, not yet reaped by its parent
    return True


def _is_this_broker(pid: int, cfg: BrokerConfig) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists() and _alive(pid)  # no procfs: trust the pid
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(cfg.properties_file).encode() in cmdline


def _running_pid(cfg: BrokerConfig) -> int | None:
    try:
        pid = int(cfg.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) and _is_this_broker(pid, cfg) else None


def status(cfg: BrokerConfig) -> BrokerStatus:
    """Whether the broker of `cfg` runs, by its pid file and the process it names."""
    return BrokerStatus(cfg, _running_pid(cfg))


def instances(home: Path = REPO_ROOT / ".kafka") -> list[BrokerStatus]:
    """Every broker whose state lies under `home` (running or not), by port."""
    found = []
    for pid_file in sorted(home.glob("*/broker.pid")):
        if pid_file.parent.name.isdigit():
            found.append(status(BrokerConfig(port=int(pid_file.parent.name), home=home)))
    return found


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _death_signal_setter() -> Callable[[], None] | None:
    """A function for the child (between fork and exec) that asks Linux for SIGTERM when
    its parent dies; resolved here in the parent, so the child imports nothing."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    sigterm = int(signal.SIGTERM)
    return lambda: prctl(1, sigterm)  # 1 = PR_SET_PDEATHSIG


def _launch(cfg: BrokerConfig, java: str, tie_to_parent: bool) -> subprocess.Popen[bytes]:
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    command = _java_command(cfg, java, "kafka.Kafka", str(cfg.properties_file))
    with open(cfg.log_dir / "console.log", "ab") as console:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            cwd=cfg.state_dir, start_new_session=True,
            preexec_fn=_death_signal_setter() if tie_to_parent else None,
        )  # fmt: skip
    _children[process.pid] = process
    cfg.pid_file.write_text(f"{process.pid}\n")
    return process


def start(cfg: BrokerConfig, say: Say = print, tie_to_parent: bool = False) -> BrokerStatus:
    """Start the broker and wait until it answers Kafka requests.

    Raises BrokerAlreadyRunning when it runs already, LocalKafkaError when a port is taken,
    java or the jars are missing, or it does not come up in time (the log tail attached).
    With `tie_to_parent` the broker gets SIGTERM when the calling process dies (Linux).
    """
    running = status(cfg)
    if running.running:
        raise BrokerAlreadyRunning(f"a local Kafka broker is already {running.describe()}")
    for port in (cfg.port, cfg.controller):
        if _port_in_use(cfg.host, port):
            raise LocalKafkaError(
                f"{cfg.host}:{port} is already in use by another process; choose other ports "
                "(--port, --controller-port) or point SLAMON_BROKER at that broker"
            )
    java = find_java()
    ensure_jars(cfg, say)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    cfg.properties_file.write_text(render_properties(cfg))
    _format_storage(cfg, java)
    process = _launch(cfg, java, tie_to_parent)
    try:
        _wait_until_ready(cfg, process)
    except BaseException:  # not ready, or interrupted: leave nothing running
        stop(cfg, timeout=10.0)
        raise
    return BrokerStatus(cfg, process.pid)


def _wait_until_ready(cfg: BrokerConfig, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + cfg.start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalKafkaError(
                f"the broker exited with status {process.returncode} while starting; "
                f"log tail:\n{log_tail(cfg)}"
            )
        if probe(cfg.bootstrap):
            return
        time.sleep(0.25)
    raise LocalKafkaError(
        f"the broker did not answer on {cfg.bootstrap} within {cfg.start_timeout:.0f} s; "
        f"log tail:\n{log_tail(cfg)}"
    )


def stop(cfg: BrokerConfig, timeout: float = 30.0) -> int | None:
    """Stop the broker: SIGTERM, wait up to `timeout` s, then SIGKILL. Its pid, or None."""
    pid = _running_pid(cfg)
    if pid is None:
        cfg.pid_file.unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 10.0)
    _children.pop(pid, None)
    cfg.pid_file.unlink(missing_ok=True)
    return pid


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


# --- readiness and logs ---------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_kafka_logging() -> Iterator[None]:
    logger = logging.getLogger("kafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def probe(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when a broker at `bootstrap` (host:port) answers a metadata request (lists topics)."""
    host, _, port = bootstrap.rpartition(":")
    if not _port_in_use(host, int(port)):
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "client_id": "slamon-probe",
        "request_timeout_ms": int(timeout * 1000),
    }
    for key in ("bootstrap_timeout_ms", "api_version_auto_timeout_ms"):  # kafka-python 3 / 2
        if key in KafkaAdminClient.DEFAULT_CONFIG:
            options[key] = int(timeout * 1000)
    with _quiet_kafka_logging():
        try:
            admin = KafkaAdminClient(**options)
        except (KafkaError, OSError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()


def log_tail(cfg: BrokerConfig, lines: int = 40) -> str:
    """The last lines of the broker's console output and Log4j log, for error messages."""
    parts = []
    for path in (cfg.log_dir / "console.log", cfg.log_dir / "server.log"):
        with contextlib.suppress(OSError):
            text = _last_lines(path.read_text(errors="replace"), lines)
            if text.strip():
                parts.append(f"--- {path} ---\n{text}")
    return "\n".join(parts) or f"(no log in {cfg.log_dir})"


def _last_lines(text: str, count: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-count:])
