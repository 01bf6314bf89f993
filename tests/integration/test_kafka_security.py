"""slamon against a broker that demands SASL over TLS: `slamon kafka start --secure`'s broker.

One secure local broker for this module (SASL_SSL client listener, SCRAM and PLAIN user
`slamon`, certificates of its own CA), on free ports. The worker, `slamon produce` and
`slamon tail` work with the settings it prints; an outside client without TLS, a wrong
password, an unknown user or an untrusted CA are refused, each with a message saying why
that never contains a password.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.devkit import localkafka
from agents.devkit.localkafka.secure import client_env, client_settings, tls_file
from agents.kafkaclients import client_options
from tests.integration.monitorkit import REPO_ROOT, Reader, Worker, keyed, produce, worker_env

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-Password-42"
POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  targets:
    P1: {response: 3s, resolution: 1h}
    P2: {response: 8s, resolution: 1h}
"""


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory,
                  ) -> Iterator[localkafka.BrokerConfig]:
    from tests.conftest import _free_port

    cfg = localkafka.BrokerConfig(port=_free_port(), controller_port=_free_port(),
                                  internal_port=_free_port(), secure=True,
                                  home=tmp_path_factory.mktemp("secure-kafka"))
    localkafka.start(cfg, say=lambda line: print(f"secure_broker: {line}"), tie_to_parent=True)
    yield cfg
    localkafka.stop(cfg)


@pytest.fixture
def password(secure_broker: localkafka.BrokerConfig) -> str:
    return tls_file(secure_broker, "client.password").read_text().strip()


def _client(cfg: localkafka.BrokerConfig) -> dict[str, Any]:
    """Options of an outside kafka-python client with the broker's credentials."""
    options = client_options(client_settings(cfg))
    del options["bootstrap_servers"]
    return options


def _slamon(*args: str, env: dict[str, str], stdin: bytes = b"",
            timeout: float = 90) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], input=stdin, env=env,
                          cwd=REPO_ROOT, capture_output=True, timeout=timeout, check=False)


def _env(**settings: str) -> dict[str, str]:
    """The test's environment without any SLAMON_* it may carry, plus `settings`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")} | settings


@pytest.fixture
def secure_worker(secure_broker: localkafka.BrokerConfig, tmp_path: Path,
                  free_port: Callable[[], int]) -> Iterator[Worker]:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    env = worker_env(secure_broker.bootstrap, tmp_path, free_port(), policies,
                     **client_env(secure_broker), SLAMON_LOG_LEVEL="debug")
    worker = Worker(_env(**{k: v for k, v in env.items() if k.startswith("SLAMON_")}),
                    tmp_path / "worker.log")
    yield worker
    if worker.process is not None:
        worker.stop()


def test_worker_produce_and_tail_over_sasl_ssl(secure_broker, secure_worker, password):
    worker = secure_worker.start()
    opened = int(time.time() * 1000)
    events = b"".join(orjson.dumps(e) + b"\n" for e in [
        {"event_id": "s1", "ticket_id": "secure-1", "type": "opened", "ts": opened,
         "service": "email", "customer": "acme", "priority": "P1"},
        {"event_id": "s2", "ticket_id": "secure-2", "type": "opened", "ts": opened,
         "service": "email", "customer": "acme", "priority": "P2"},
        {"event_id": "s3", "ticket_id": "secure-2", "type": "responded", "ts": opened + 500},
    ])
    sent = _slamon("produce", "-", env=worker.env, stdin=events)
    assert sent.returncode == 0, sent.stderr.decode()
    assert f"3 events sent to {worker.prefix}events" in sent.stderr.decode()

    # An outside client with the same credentials sees the breach on the worker's topic.
    reader = Reader(secure_broker.bootstrap, [worker.prefix + "breaches"],
                    client=_client(secure_broker))
    records = reader.until(lambda rs: any(r.get("ticket_id") == "secure-1" for r in rs), 60)
    reader.close()
    assert [r["id"] for r in records if r.get("kind") == "breach"] == [
        "secure-1:response:0:breach"]

    tailed = _slamon("tail", "breaches", "--from-beginning", "--count", "1", "--timeout", "30",
                     env=worker.env)
    assert tailed.returncode == 0, tailed.stderr.decode()
    assert orjson.loads(tailed.stdout.splitlines()[0])["id"] == "secure-1:response:0:breach"
    outcomes = _slamon("tail", "outcomes", "--from-beginning", "--count", "1", "--timeout",
                       "30", env=worker.env)
    assert orjson.loads(outcomes.stdout.splitlines()[0])["ticket_id"] == "secure-2"

    assert worker.stop() == 0, worker.tail()
    log = worker.log.read_text(errors="replace")
    assert "sasl_plain_password': '**********'" in log  # kafka-python's debug line, masked
    for output in (log, sent.stdout, sent.stderr, tailed.stderr):
        text = output if isinstance(output, str) else output.decode(errors="replace")
        assert password not in text


def test_a_plaintext_client_is_refused(secure_broker):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    with pytest.raises(KafkaError):  # an outside client without TLS gets no metadata
        KafkaAdminClient(bootstrap_servers=secure_broker.bootstrap, bootstrap_timeout_ms=5000,
                         request_timeout_ms=5000).list_topics()

    plaintext = _env(SLAMON_BROKER=f"kafka://{secure_broker.bootstrap}")
    tailed = _slamon("tail", "breaches", "--count", "1", "--timeout", "5", env=plaintext)
    assert tailed.returncode == 2
    assert (f"slamon tail: cannot use Kafka at kafka://{secure_broker.bootstrap}: "
            f"{secure_broker.bootstrap} closed the connection unanswered") in tailed.stderr.decode()
    assert "does its listener use security_protocol PLAINTEXT?" in tailed.stderr.decode()

    began = time.monotonic()
    worker = _slamon("worker", env=plaintext | {"SLAMON_STORE": "memory://"}, timeout=60)
    assert worker.returncode == 2, worker.stderr.decode()[-2000:]
    assert "slamon worker: refusing to start: cannot use Kafka" in worker.stderr.decode()
    assert time.monotonic() - began < 30


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        ({"SLAMON_SASL_PASSWORD": WRONG_PASSWORD},
         "refused the login of sasl_username 'slamon' with SCRAM-SHA-512"),
        ({"SLAMON_SASL_PASSWORD": WRONG_PASSWORD, "SLAMON_SASL_MECHANISM": "PLAIN"},
         "refused the login of sasl_username 'slamon' with PLAIN"),
        ({"SLAMON_SASL_PASSWORD": WRONG_PASSWORD, "SLAMON_SASL_USERNAME": "mallory"},
         "refused the login of sasl_username 'mallory' with SCRAM-SHA-512"),
    ],
    ids=["wrong-password", "wrong-password-plain", "unknown-user"],
)
def test_wrong_credentials_are_refused_without_showing_them(secure_broker, password, settings,
                                                             refusal):
    env = _env(**client_env(secure_broker)) | settings
    del env["SLAMON_SASL_PASSWORD_FILE"]
    produced = _slamon("produce", "-", env=env, stdin=b'{"ticket_id": "x"}\n')
    assert produced.returncode == 2
    assert refusal in produced.stderr.decode(), produced.stderr.decode()
    worker = _slamon("worker", env=env | {"SLAMON_STORE": "memory://"}, timeout=60)
    assert worker.returncode == 2
    assert "slamon worker: refusing to start" in worker.stderr.decode()
    assert refusal in worker.stderr.decode()
    for output in (produced.stdout, produced.stderr, worker.stdout, worker.stderr):
        assert WRONG_PASSWORD.encode() not in output and password.encode() not in output

    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    options = _client(secure_broker) | {"sasl_plain_password": WRONG_PASSWORD}
    if "SLAMON_SASL_USERNAME" in settings:
        options["sasl_plain_username"] = settings["SLAMON_SASL_USERNAME"]
    if "SLAMON_SASL_MECHANISM" in settings:
        options["sasl_mechanism"] = settings["SLAMON_SASL_MECHANISM"]
    with pytest.raises(KafkaError):  # an outside client with these credentials is kept out
        KafkaProducer(bootstrap_servers=secure_broker.bootstrap, bootstrap_timeout_ms=5000,
                      max_block_ms=5000, **options).send("anything", b"x").get(timeout=5)


def test_a_broker_certificate_from_an_unknown_ca_is_refused(secure_broker):
    env = _env(**client_env(secure_broker))
    del env["SLAMON_SSL_CAFILE"]  # the system's CAs do not know the broker's own CA
    tailed = _slamon("tail", "breaches", "--count", "1", "--timeout", "5", env=env)
    assert tailed.returncode == 2
    assert "its certificate is not trusted" in tailed.stderr.decode(), tailed.stderr.decode()


def test_plain_with_a_client_certificate_and_an_encrypted_key(secure_broker, topic_name):
    topic = topic_name("secure")
    env = _env(**client_env(secure_broker)) | {
        "SLAMON_SASL_MECHANISM": "PLAIN",
        "SLAMON_SSL_CERTFILE": str(tls_file(secure_broker, "client.pem")),
        "SLAMON_SSL_KEYFILE": str(tls_file(secure_broker, "client.key")),
        "SLAMON_SSL_KEY_PASSWORD": tls_file(secure_broker, "client-key.password").read_text(),
    }
    produce(secure_broker.bootstrap, topic, keyed([{"ticket_id": "T", "n": 1}]),
            **_client(secure_broker))
    tailed = _slamon("tail", topic, "--from-beginning", "--count", "1", "--timeout", "30",
                     env=env)
    assert tailed.returncode == 0, tailed.stderr.decode()
    assert orjson.loads(tailed.stdout) == {"ticket_id": "T", "n": 1}


def test_the_demo_uses_the_secure_settings_and_says_why_it_is_refused(secure_broker):
    env = _env(**client_env(secure_broker)) | {"SLAMON_SASL_PASSWORD": WRONG_PASSWORD}
    del env["SLAMON_SASL_PASSWORD_FILE"]
    demo = _slamon("demo", "--duration", "5", env=env)
    assert demo.returncode == 2
    assert "refused the login of sasl_username 'slamon'" in demo.stderr.decode()
    assert b"starting a local one" not in demo.stdout  # no plaintext broker instead
    assert WRONG_PASSWORD.encode() not in demo.stdout + demo.stderr
