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

Modules: `config` (BrokerConfig, server.properties), `prereqs` (java, the jars), `process`
(start, stop, status), `probe` (does a broker answer) and `secure` (secure mode: a SASL_SSL
listener, certificates made with openssl in `<home>/<port>/tls/`, SCRAM users). Only the
standard library is imported at module level; kafka-python is imported by the probe when
it runs.
"""

from __future__ import annotations

from agents.devkit.localkafka.config import (
    DEPLOY_DIR,
    REPO_ROOT,
    BrokerAlreadyRunning,
    BrokerConfig,
    BrokerStatus,
    LocalKafkaError,
    render_properties,
)
from agents.devkit.localkafka.prereqs import MIN_JAVA, ensure_jars, find_java, kafka_version
from agents.devkit.localkafka.probe import port_in_use, probe
from agents.devkit.localkafka.process import instances, log_tail, start, status, stop

__all__ = [
    "DEPLOY_DIR",
    "MIN_JAVA",
    "REPO_ROOT",
    "BrokerAlreadyRunning",
    "BrokerConfig",
    "BrokerStatus",
    "LocalKafkaError",
    "ensure_jars",
    "find_java",
    "instances",
    "kafka_version",
    "log_tail",
    "port_in_use",
    "probe",
    "render_properties",
    "start",
    "status",
    "stop",
]
