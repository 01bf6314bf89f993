"""Secure mode of the local broker: a TLS listener with generated certificates, SASL users.

`slamon kafka start --secure` and the security tests need a broker that refuses what a
production broker refuses: plaintext clients, wrong passwords, unknown CAs. On first start
`prepare` writes into `<state>/tls/`, with the machine's `openssl`:

    ca.pem, ca.key           a CA made for this broker only
    broker.pem, broker.key   the broker's certificate for 127.0.0.1 and localhost
    broker-keystore.pem      key + chain: Kafka's PEM keystore
    client.pem, client.key   a client certificate signed by the CA, its key encrypted
    client-key.password      ... with this password
    client.password          the password of the SASL user `slamon`

The client listener is SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, and asks for
(does not require) a client certificate. SCRAM credentials go into the log dir at format
time, salted here, so the password is never on a command line. The broker's own listener
(INTERNAL) and the controller's stay PLAINTEXT on loopback. Files holding secrets are
readable by their owner only.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.devkit.localkafka.config import BrokerConfig, LocalKafkaError, Say

if TYPE_CHECKING:
    from agents.settings import Settings

__all__ = [
    "SASL_USER",
    "client_env",
    "client_options",
    "client_settings",
    "prepare",
    "scram_arguments",
    "secure_properties",
    "tls_file",
]

SASL_USER = "slamon"
SCRAM_ITERATIONS = 4096  # Kafka's minimum; the client repeats the work on every connection
_MECHANISMS = {"SCRAM-SHA-512": "sha512", "SCRAM-SHA-256": "sha256"}
_DAYS = "3650"


def tls_file(cfg: BrokerConfig, name: str) -> Path:
    """A file of secure mode by name: `tls_file(cfg, "ca.pem")`."""
    return cfg.tls_dir / name


def prepare(cfg: BrokerConfig, say: Say = print) -> str:
    """Certificates and the user's password, made once per broker; returns the password."""
    cfg.tls_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.tls_dir, 0o700)
    if not tls_file(cfg, "broker-keystore.pem").is_file():
        say(f"secure mode: generating a CA and certificates in {cfg.tls_dir} ...")
        _make_certificates(cfg)
    password_file = tls_file(cfg, "client.password")
    if not password_file.is_file():
        _write_private(password_file, secrets.token_urlsafe(18))
    return password_file.read_text(encoding="utf-8").strip()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _openssl(cfg: BrokerConfig, *args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise LocalKafkaError("openssl not found: the secure local broker generates its "
                              "certificates with it (Debian: apt-get install openssl)")
    result = subprocess.run([openssl, *args], cwd=cfg.tls_dir, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise LocalKafkaError(f"`openssl {' '.join(args[:2])}` failed ({result.returncode}) "
                              f"in {cfg.tls_dir}:\n{(result.stderr or result.stdout).strip()}")


def _alt_names(host: str) -> str:
    names = {"IP:127.0.0.1", "DNS:localhost"}
    try:
        names.add(f"IP:{ipaddress.ip_address(host)}")
    except ValueError:
        names.add(f"DNS:{host}")
    return ",".join(sorted(names))


def _sign(cfg: BrokerConfig, name: str, extensions: list[str]) -> None:
    """`<name>.csr` -> `<name>.pem`, signed by the CA with `extensions`."""
    ext = tls_file(cfg, f"{name}.ext")
    ext.write_text("\n".join(["basicConstraints = CA:FALSE",
                              "authorityKeyIdentifier = keyid", "subjectKeyIdentifier = hash",
                              *extensions]) + "\n")
    _openssl(cfg, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", str(secrets.randbits(63)), "-days", _DAYS, "-sha256",
             "-extfile", ext.name, "-out", f"{name}.pem")
    tls_file(cfg, f"{name}.csr").unlink()
    ext.unlink()


def _make_certificates(cfg: BrokerConfig) -> None:
    _openssl(cfg, "req", "-x509", "-newkey", "rsa:2048", "-noenc", "-sha256", "-days", _DAYS,
             "-subj", f"/CN=slamon local Kafka CA {cfg.host}:{cfg.port}",
             "-keyout", "ca.key", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl(cfg, "req", "-newkey", "rsa:2048", "-noenc", "-subj", f"/CN={cfg.host}",
             "-keyout", "broker.key", "-out", "broker.csr")
    _sign(cfg, "broker", ["keyUsage = critical, digitalSignature, keyEncipherment",
                          "extendedKeyUsage = serverAuth",
                          f"subjectAltName = {_alt_names(cfg.host)}"])
    _write_private(tls_file(cfg, "client-key.password"), secrets.token_urlsafe(12))
    _openssl(cfg, "req", "-newkey", "rsa:2048", "-subj", f"/CN={SASL_USER}",
             "-passout", "file:client-key.password", "-keyout", "client.key",
             "-out", "client.csr")
    _sign(cfg, "client", ["keyUsage = critical, digitalSignature",
                          "extendedKeyUsage = clientAuth"])
    parts = [tls_file(cfg, name).read_text() for name in ("broker.key", "broker.pem", "ca.pem")]
    _write_private(tls_file(cfg, "broker-keystore.pem"), "".join(parts))
    for name in ("ca.key", "broker.key", "client.key"):
        os.chmod(tls_file(cfg, name), 0o600)


def secure_properties(cfg: BrokerConfig, password: str) -> dict[str, str]:
    """server.properties entries of secure mode (they replace the plaintext listeners)."""
    host = cfg.host
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    plain = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
             f'user_{SASL_USER}="{password}";')
    return {
        "listeners": f"SASL_SSL://{host}:{cfg.port},INTERNAL://{host}:{cfg.internal},"
                     f"CONTROLLER://{host}:{cfg.controller}",
        "advertised.listeners": f"SASL_SSL://{host}:{cfg.port},INTERNAL://{host}:{cfg.internal}",
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,"
                                          "CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": plain,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls_file(cfg, "broker-keystore.pem")),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls_file(cfg, "ca.pem")),
        "listener.name.sasl_ssl.ssl.client.auth": "requested",
    }


def scram_arguments(password: str, salt: bytes | None = None) -> list[str]:
    """`kafka-storage format` arguments adding user `slamon`'s SCRAM credentials, salted."""
    arguments = []
    for mechanism, digest in _MECHANISMS.items():
        grain = salt or secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac(digest, password.encode(), grain, SCRAM_ITERATIONS)
        encode = base64.b64encode
        arguments += ["--add-scram",
                      f"{mechanism}=[name={SASL_USER},iterations={SCRAM_ITERATIONS},"
                      f'salt="{encode(grain).decode()}",saltedpassword="{encode(salted).decode()}"]']
    return arguments


def client_env(cfg: BrokerConfig) -> dict[str, str]:
    """The SLAMON_* settings of a client of this broker; the password by its file."""
    return {
        "SLAMON_BROKER": f"kafka://{cfg.bootstrap}",
        "SLAMON_SECURITY_PROTOCOL": "SASL_SSL",
        "SLAMON_SASL_MECHANISM": "SCRAM-SHA-512",
        "SLAMON_SASL_USERNAME": SASL_USER,
        "SLAMON_SASL_PASSWORD_FILE": str(tls_file(cfg, "client.password")),
        "SLAMON_SSL_CAFILE": str(tls_file(cfg, "ca.pem")),
    }


def client_settings(cfg: BrokerConfig) -> Settings:
    """`Settings` of a client of this broker, as `client_env` would load them."""
    from agents.settings import load_settings

    return load_settings(Path(os.devnull), environ=client_env(cfg))


def client_options(cfg: BrokerConfig) -> dict[str, Any]:
    """kafka-python options (servers and security) for this broker, e.g. for the probe."""
    from agents.kafkaclients import client_options as options

    return options(client_settings(cfg))
