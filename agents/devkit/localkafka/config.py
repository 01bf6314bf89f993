"""The local broker's configuration: where it runs and keeps its state; server.properties."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sla.errors import SlamonError

__all__ = [
    "DEPLOY_DIR",
    "REPO_ROOT",
    "BrokerAlreadyRunning",
    "BrokerConfig",
    "BrokerStatus",
    "LocalKafkaError",
    "Say",
    "render_properties",
]

REPO_ROOT = Path(__file__).resolve().parents[3]
DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
Say = Callable[[str], None]


class LocalKafkaError(SlamonError):
    """The local broker cannot be fetched, started or stopped; the message says why."""


class BrokerAlreadyRunning(LocalKafkaError):
    """`start` found this broker already running."""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how one local broker runs. `controller_port` 0 means `port + 1`.

    `secure`: clients connect with SASL_SSL (SCRAM or PLAIN over TLS, see `secure.py`); the
    broker's own listener stays PLAINTEXT on `internal_port` (0: `port + 2`).
    """

    port: int = 9092
    controller_port: int = 0
    host: str = "127.0.0.1"
    home: Path = REPO_ROOT / ".kafka"
    deploy_dir: Path = DEPLOY_DIR
    heap: str = "512m"
    partitions: int = 1  # num.partitions: the partition count of auto-created topics
    start_timeout: float = 90.0
    extra: dict[str, str] = field(default_factory=dict)  # more server.properties entries
    secure: bool = False
    internal_port: int = 0

    @property
    def controller(self) -> int:
        return self.controller_port or self.port + 1

    @property
    def internal(self) -> int:
        return self.internal_port or self.port + 2

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port the broker listens on."""
        return (self.port, self.controller, self.internal) if self.secure else (
            self.port, self.controller)

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

    @property
    def tls_dir(self) -> Path:
        """Secure mode's certificates and client password (see `secure.py`)."""
        return self.state_dir / "tls"


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


def render_properties(cfg: BrokerConfig, secure: dict[str, str] | None = None) -> str:
    """server.properties for a combined broker+controller node, tuned for a small machine.

    `secure`: the entries of secure mode (`secure.secure_properties`), which replace the
    plaintext listeners.
    """
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
    } | (secure or {}) | cfg.extra
    lines = ["# Written by `slamon kafka start` on every start; edit BrokerConfig, not this file."]
    return "\n".join(lines + [f"{key}={value}" for key, value in entries.items()]) + "\n"
