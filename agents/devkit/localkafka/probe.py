"""Does a Kafka broker answer at host:port? A TCP check, then a real metadata request.

kafka-python is imported only when a probe runs.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["port_in_use", "probe"]


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts TCP connections at host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


@contextlib.contextmanager
def _quiet_kafka_logging() -> Iterator[None]:
    logger = logging.getLogger("kafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def probe(bootstrap: str, timeout: float = 3.0, options: Mapping[str, Any] | None = None,
          ) -> bool:
    """True when a broker at `bootstrap` (host:port) answers a metadata request (lists topics).

    `options`: more client options, the security of a secure broker (`secure.client_options`).
    """
    host, _, port = bootstrap.rpartition(":")
    if not port_in_use(host, int(port)):
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    config: dict[str, object] = {
        "client_id": "slamon-probe",
        "request_timeout_ms": int(timeout * 1000),
    } | dict(options or {}) | {"bootstrap_servers": bootstrap}
    for key in (
        "bootstrap_timeout_ms",
        "api_version_auto_timeout_ms",
    ):  # kafka-python 3 / 2
        if key in KafkaAdminClient.DEFAULT_CONFIG:
            config[key] = int(timeout * 1000)
    with _quiet_kafka_logging():
        try:
            admin = KafkaAdminClient(**config)
        except (KafkaError, OSError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()
