"""Fixtures for every test folder: one real Kafka broker per session, unique topic names.

`kafka_bootstrap` (host:port) provides the broker by this rule, first that works:

1. `KAFKA_BOOTSTRAP_SERVERS`, when set: that broker, which must answer;
2. a local broker from deploy/kafka's Maven jars (`agents.devkit.localkafka`) on free ports,
   stopped at the end of the session (and killed with pytest if pytest dies);
3. testcontainers' Kafka, where a Docker engine answers.

When none can be had the requesting test FAILS with every reason: integration tests are
never skipped and the broker is never mocked. Unit tests do not request it and need nothing.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from agents.devkit import localkafka

# Property tests judge behaviour, never speed: no per-example deadline (a busy machine made
# the default 200 ms one fail at random).
hypothesis_settings.register_profile("slamon", deadline=None)
hypothesis_settings.load_profile("slamon")

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python 3 loads its protocol schemas with a deprecated importlib.resources call,
    # once per schema: hundreds of identical warnings that hide ours.
    for message in ("read_text is deprecated", "open_text is deprecated"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _external_broker() -> str | None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not bootstrap:
        return None
    if not localkafka.probe(bootstrap.split(",")[0], timeout=10.0):
        pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} is set but no broker answers there")
    return bootstrap


def _local_broker(stack: ExitStack, tmp: pytest.TempPathFactory) -> str:
    home = tmp.mktemp("kafka")
    cfg = localkafka.BrokerConfig(
        port=_free_port(), controller_port=_free_port(), home=home, heap="512m"
    )
    localkafka.start(cfg, say=lambda line: print(f"kafka_bootstrap: {line}"), tie_to_parent=True)
    stack.callback(localkafka.stop, cfg)
    return cfg.bootstrap


def _docker_broker(stack: ExitStack) -> str:
    import docker  # from testcontainers

    docker.from_env(timeout=5).ping()  # raises when no engine answers
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.14
        from testcontainers.kafka import KafkaContainer

    container = KafkaContainer().with_kraft()
    stack.enter_context(container)
    return str(container.get_bootstrap_server())


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a real Kafka broker for this test session (see the module docstring)."""
    external = _external_broker()
    if external is not None:
        yield external
        return
    reasons = []
    with ExitStack() as stack:
        providers: list[tuple[str, Callable[[], str]]] = [
            ("local broker from deploy/kafka", lambda: _local_broker(stack, tmp_path_factory)),
            ("testcontainers Kafka", lambda: _docker_broker(stack)),
        ]
        for name, provide in providers:
            try:
                bootstrap = provide()
            except Exception as exc:  # every reason is reported below
                reasons.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            yield bootstrap
            return
        pytest.fail(
            "no Kafka broker for the integration tests; set KAFKA_BOOTSTRAP_SERVERS, or install "
            "Java 17 and Maven, or run a Docker engine. Tried:\n  " + "\n  ".join(reasons)
        )


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A factory of topic names unique to this test: `topic_name("events")`."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:60]

    def make(suffix: str = "t") -> str:
        return f"test.{stem}.{suffix}.{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A factory of TCP ports on 127.0.0.1 that nothing listens on right now."""
    return _free_port
