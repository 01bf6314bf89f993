"""The monitor's settings: one frozen model, read from a YAML file and `SLAMON_*` variables.

This is the only module that reads `SLAMON_*` environment variables. Precedence, lowest
first: the defaults below < the YAML file (`--config`, default `config/slamon.yaml`) <
the environment. Every problem found is reported at once, each naming its key or variable
(and the file and line for YAML), as a `SettingsError`.

Relative paths are taken relative to the working directory, as they are given.

Kafka security (`security_protocol`, `sasl_*`, `ssl_*`) is checked as a whole by
`agents.kafkaclients`, which also turns it into client configuration: a SASL protocol needs
a mechanism, a user name and a password; settings the chosen protocol would ignore are
refused rather than silently dropped. Passwords are `Secret`s: they never appear in a repr,
in `describe`, in a log line or in an error message.
"""

from __future__ import annotations

import argparse
import hmac
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from sla.errors import ProblemsError
from streams.topics import TopicCatalogue, catalogue

__all__ = [
    "Settings",
    "SettingsError",
    "Secret",
    "DEFAULT_CONFIG",
    "ENV_VARS",
    "load_settings",
    "add_config_argument",
    "settings_from_args",
    "describe",
]

DEFAULT_CONFIG = Path("config/slamon.yaml")
_NAME = re.compile(r"^[A-Za-z0-9._-]*$")  # what Kafka allows in topic names and group ids
LogLevel = Literal["debug", "info", "warning", "error"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SettingsError(ProblemsError):
    """Invalid settings; `problems` lists each one with the key or variable it concerns."""

    heading = "invalid settings"


class Secret:
    """A password: shows as `**********` in str, repr and format; `reveal()` gives the value.

    Not a str, so it cannot be logged, concatenated or sent anywhere by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker needs to know about its environment; built by `load_settings`."""

    app_id: str = ""  # "": derived from topic_prefix (`default_app_id`)
    broker: str = "kafka://127.0.0.1:9092"  # one or more kafka://host:port, joined by ';'
    policies: Path = Path("config/policies.yaml")
    partitions: int = 12  # of sla.events and every topic co-partitioned with it
    replication_factor: int = 1  # of the topics the monitor creates
    store: str = "rocksdb://"  # table store: rocksdb:// or memory://
    data_dir: Path = Path(".data")  # RocksDB tables and Faust's worker state
    tick_interval: float = 1.0  # seconds between deadline ticks
    lateness: float = 60.0  # seconds of event time an event may arrive late
    max_future: float = 300.0  # seconds an event's ts may lie ahead of the worker's clock
    session_timeout: float = 10.0  # seconds without a heartbeat before the group drops a worker
    heartbeat_interval: float = 3.0  # seconds between a worker's heartbeats
    worker_id: str = ""  # static group member id; "": <hostname>-<web_port>
    broker_unreachable_after: float = 15.0  # seconds without the broker before /readyz is 503
    web_host: str = "0.0.0.0"  # the web server serves /metrics to Prometheus
    web_port: int = 6066
    topic_prefix: str = "sla."
    log_level: LogLevel = "info"
    portal_tokens: Path | None = None  # customer -> token file of the portal; None: no access
    sources: Path | None = Path("config/sources.yaml")  # service desks (agents.ingest); None: none
    # Largest record batch the worker produces; every topic it writes must accept it
    # (max.message.bytes: Kafka's default is 1,048,588). See agents/topiccheck.py.
    producer_batch_bytes: int = 262_144
    # Other workers that keep a warm copy of each partition's tables, to take it over
    # without reading its changelog first; each copy costs its holder CPU (README).
    standby_replicas: int = 1
    # Kafka security, checked together (see the module docstring); None: not set.
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None  # also read from sasl_password_file
    sasl_password_file: Path | None = None  # a mounted secret, e.g. in Kubernetes
    ssl_cafile: Path | None = None  # CA certificates (PEM); None: the system's
    ssl_certfile: Path | None = None  # client certificate (PEM), with ssl_keyfile
    ssl_keyfile: Path | None = None
    ssl_key_password: Secret | None = None

    def __post_init__(self) -> None:
        # Derived defaults: an explicit value (file or environment) always wins.
        if not self.app_id:
            object.__setattr__(self, "app_id", default_app_id(self.topic_prefix))
        if not self.worker_id:
            object.__setattr__(self, "worker_id", default_worker_id(self.web_port))

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker as host:port strings, for kafka-python and aiokafka."""
        return [f"{url.hostname}:{url.port}" for url in map(urlsplit, self.broker.split(";"))]

    @property
    def topics(self) -> TopicCatalogue:
        """The topic catalogue of these settings, the only namer of topics (built once)."""
        return catalogue(self.topic_prefix, self.partitions)


def default_app_id(topic_prefix: str) -> str:
    """The app id (consumer group, changelog prefix) of a deployment with this topic prefix.

    `slamon` for the default `sla.`, else `slamon-<prefix>` without its trailing dots:
    two deployments on one cluster with different prefixes get different consumer groups
    and changelogs unless app_id is set to the same value on purpose.
    """
    if topic_prefix == "sla.":
        return "slamon"
    return f"slamon-{topic_prefix.strip('.') or 'unprefixed'}"


def default_worker_id(web_port: int) -> str:
    """This worker's stable identity in its consumer group: `<hostname>-<web_port>`.

    Stable across restarts on one host (a restarted worker takes its partitions back at
    once, static membership), and distinct for two workers on one host (each needs its
    own web port). Characters Kafka does not allow become `-`.
    """
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{socket.gethostname() or 'worker'}-{web_port}")


# key -> environment variable; keys are Settings fields and the YAML file's keys.
ENV_VARS: dict[str, str] = {
    "app_id": "SLAMON_APP_ID",
    "broker": "SLAMON_BROKER",
    "policies": "SLAMON_POLICIES",
    "partitions": "SLAMON_PARTITIONS",
    "replication_factor": "SLAMON_REPLICATION_FACTOR",
    "store": "SLAMON_STORE",
    "data_dir": "SLAMON_DATA_DIR",
    "tick_interval": "SLAMON_TICK_INTERVAL",
    "lateness": "SLAMON_LATENESS",
    "max_future": "SLAMON_MAX_FUTURE",
    "session_timeout": "SLAMON_SESSION_TIMEOUT",
    "heartbeat_interval": "SLAMON_HEARTBEAT_INTERVAL",
    "worker_id": "SLAMON_WORKER_ID",
    "broker_unreachable_after": "SLAMON_BROKER_UNREACHABLE_AFTER",
    "web_host": "SLAMON_WEB_HOST",
    "web_port": "SLAMON_WEB_PORT",
    "topic_prefix": "SLAMON_TOPIC_PREFIX",
    "log_level": "SLAMON_LOG_LEVEL",
    "portal_tokens": "SLAMON_PORTAL_TOKENS",
    "sources": "SLAMON_SOURCES",
    "producer_batch_bytes": "SLAMON_PRODUCER_BATCH_BYTES",
    "standby_replicas": "SLAMON_STANDBY_REPLICAS",
    "security_protocol": "SLAMON_SECURITY_PROTOCOL",
    "sasl_mechanism": "SLAMON_SASL_MECHANISM",
    "sasl_username": "SLAMON_SASL_USERNAME",
    "sasl_password": "SLAMON_SASL_PASSWORD",
    "sasl_password_file": "SLAMON_SASL_PASSWORD_FILE",
    "ssl_cafile": "SLAMON_SSL_CAFILE",
    "ssl_certfile": "SLAMON_SSL_CERTFILE",
    "ssl_keyfile": "SLAMON_SSL_KEYFILE",
    "ssl_key_password": "SLAMON_SSL_KEY_PASSWORD",
}


# --- parsers: raw value (YAML scalar or env string) -> typed value, ValueError with a reason ---


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool | float):
            raise ValueError(f"{raw!r} is not an integer")
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not an integer") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range {low}..{high}")
        return value

    return parse


def _seconds(minimum: float, inclusive: bool) -> Callable[[Any], float]:
    def parse(raw: Any) -> float:
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not a number of seconds")
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not a number of seconds") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{raw!r} is not a finite number of seconds")
        if value < minimum or (value == minimum and not inclusive):
            raise ValueError(f"{value:g} must be {'>=' if inclusive else '>'} {minimum:g}")
        return value

    return parse


def _text(raw: Any) -> str:
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a string")
    value = str(raw).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _kafka_name(raw: Any) -> str:
    value = _text(raw)
    if not _NAME.match(value):
        raise ValueError(f"{value!r} may contain only letters, digits, '.', '_' and '-'")
    return value


def _topic_prefix(raw: Any) -> str:
    value = "" if raw is None else str(raw).strip()
    if not _NAME.match(value):
        raise ValueError(f"{value!r} may contain only letters, digits, '.', '_' and '-'")
    return value


def _path(raw: Any) -> Path:
    return Path(_text(raw))


def _optional_path(raw: Any) -> Path | None:
    return None if raw is None or str(raw).strip() == "" else _path(raw)


def _broker(raw: Any) -> str:
    """`kafka://h:p;kafka://h2:p`, `h:p,h2:p` or a mix; normalised to `kafka://h:p;...`."""
    urls = []
    for part in re.split(r"[;,]", _text(raw)):
        part = part.strip()
        url = urlsplit(part if "://" in part else f"kafka://{part}")
        try:
            port = url.port
        except ValueError:
            port = None
        if url.scheme != "kafka" or not url.hostname or port is None or url.path not in ("", "/"):
            raise ValueError(f"{part!r} is not kafka://HOST:PORT")
        urls.append(f"kafka://{url.hostname}:{port}")
    return ";".join(urls)


def _store(raw: Any) -> str:
    value = _text(raw)
    if value not in ("rocksdb://", "memory://"):
        raise ValueError(f"{value!r} is not one of rocksdb://, memory://")
    return value


def _log_level(raw: Any) -> str:
    value = _text(raw).lower()
    if value not in ("debug", "info", "warning", "error"):
        raise ValueError(f"{value!r} is not one of debug, info, warning, error")
    return value


def _choice(options: tuple[str, ...], optional: bool = False) -> Callable[[Any], str | None]:
    def parse(raw: Any) -> str | None:
        if optional and (raw is None or str(raw).strip() == ""):
            return None
        value = _text(raw).upper()
        if value not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return value

    return parse


def _optional_text(raw: Any) -> str | None:
    return None if raw is None or str(raw).strip() == "" else _text(raw)


def _secret(raw: Any) -> Secret | None:
    """A password as given (not stripped); the value never goes into a message."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValueError("must be a string (quote it in YAML)")
    return Secret(raw)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "app_id": _kafka_name,
    "broker": _broker,
    "policies": _path,
    "partitions": _integer(1, 10_000),
    "replication_factor": _integer(1, 32),
    "store": _store,
    "data_dir": _path,
    "tick_interval": _seconds(0.0, inclusive=False),
    "lateness": _seconds(0.0, inclusive=True),
    "max_future": _seconds(0.0, inclusive=True),
    "session_timeout": _seconds(0.0, inclusive=False),
    "heartbeat_interval": _seconds(0.0, inclusive=False),
    "worker_id": _kafka_name,
    "broker_unreachable_after": _seconds(0.0, inclusive=False),
    "web_host": _text,
    "web_port": _integer(1, 65535),
    "topic_prefix": _topic_prefix,
    "log_level": _log_level,
    "portal_tokens": _optional_path,
    "sources": _optional_path,
    "producer_batch_bytes": _integer(1024, 64 * 2**20),
    "standby_replicas": _integer(0, 8),
    "security_protocol": _choice(SECURITY_PROTOCOLS),
    "sasl_mechanism": _choice(SASL_MECHANISMS, optional=True),
    "sasl_username": _optional_text,
    "sasl_password": _secret,
    "sasl_password_file": _optional_path,
    "ssl_cafile": _optional_path,
    "ssl_certfile": _optional_path,
    "ssl_keyfile": _optional_path,
    "ssl_key_password": _secret,
}


# --- loading -------------------------------------------------------------------------------------


def _read_yaml(path: Path, problems: list[str]) -> dict[str, tuple[Any, str]]:
    """The file's keys -> (raw value, "file:line: key" for messages); problems appended."""
    from agents.yamlfile import read_yaml_file

    try:
        document = read_yaml_file(path, SettingsError)
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror or exc}")
        return {}
    except SettingsError as exc:
        problems.extend(exc.problems)
        return {}
    if document.tree is None:
        return {}
    if not isinstance(document.tree, Mapping):
        problems.append(f"{path}: expected a mapping of settings, got "
                        f"{type(document.tree).__name__}")
        return {}
    found: dict[str, tuple[Any, str]] = {}
    for key, value in document.tree.items():
        where = document.place((str(key),))
        if key not in _PARSERS:
            problems.append(f"{where}: unknown setting (known: {', '.join(_PARSERS)})")
            continue
        found[str(key)] = (value, where)
    return found


def load_settings(config: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the defaults, the YAML file and the environment, validated.

    `config` None means `config/slamon.yaml` if it exists (defaults otherwise); a file named
    explicitly must exist. `environ` defaults to `os.environ`.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    raw: dict[str, tuple[Any, str]] = {}
    if config is not None or DEFAULT_CONFIG.is_file():
        raw.update(_read_yaml(config if config is not None else DEFAULT_CONFIG, problems))
    for key, variable in ENV_VARS.items():
        if variable in environ:
            raw[key] = (environ[variable], variable)
    values: dict[str, Any] = {}
    for key, (value, where) in raw.items():
        try:
            values[key] = _PARSERS[key](value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if not problems:
        from agents.kafkaclients import security_problems  # it imports this module

        given = {key: where for key, (_, where) in raw.items()}
        problems += security_problems(values, lambda key: given.get(key)
                                      or f"{key} ({ENV_VARS[key]})")
    problems += _group_problems(values, raw)
    if problems:
        raise SettingsError(problems)
    # Built whole, not replace()d: derived defaults (app_id, worker_id) follow the values.
    return Settings(**values)


def _group_problems(values: Mapping[str, Any], raw: Mapping[str, tuple[Any, str]]) -> list[str]:
    """Kafka refuses a heartbeat interval not below the session timeout."""
    default = Settings.__dataclass_fields__
    session = values.get("session_timeout", default["session_timeout"].default)
    heartbeat = values.get("heartbeat_interval", default["heartbeat_interval"].default)
    if "session_timeout" in raw and "session_timeout" not in values:
        return []  # reported already as unparsable
    if "heartbeat_interval" in raw and "heartbeat_interval" not in values:
        return []
    if heartbeat >= session:
        where = raw.get("heartbeat_interval", raw.get("session_timeout", (None, "")))[1]
        return [f"{where}: heartbeat_interval ({heartbeat:g} s) must be below session_timeout "
                f"({session:g} s); a third of it or less is usual"]
    return []


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The `--config FILE` option every command that needs settings takes."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"settings file (default: {DEFAULT_CONFIG} if it exists); "
        "SLAMON_* environment variables override it",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings for a command whose parser got `add_config_argument`."""
    return load_settings(getattr(args, "config", None))


def describe(settings: Settings) -> str:
    """One line per setting, for logs and `--help`-like output."""
    return "\n".join(f"{f.name} = {getattr(settings, f.name)}" for f in fields(settings))
