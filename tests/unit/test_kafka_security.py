"""Kafka security settings: checked together, secrets never shown, one client configuration.

`agents.settings` (the fields, `Secret`) and `agents.kafkaclients` (the checks, the options
for kafka-python/aiokafka and Faust, `check_access`) without a broker.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.kafkaclients import (
    KafkaAccessError,
    MaskedPassword,
    check_access,
    client_options,
    faust_credentials,
    ssl_context,
)
from agents.settings import Secret, Settings, SettingsError, describe, load_settings

PASSWORD = "s3cret-Pa55word"
NO_FILE = Path("/dev/null")


def _sasl_env(**more: str) -> dict[str, str]:
    return {"SLAMON_SECURITY_PROTOCOL": "SASL_SSL", "SLAMON_SASL_MECHANISM": "SCRAM-SHA-512",
            "SLAMON_SASL_USERNAME": "slamon", "SLAMON_SASL_PASSWORD": PASSWORD} | more


def _problems(environ: dict[str, str], config: Path = NO_FILE) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(config, environ=environ)
    assert PASSWORD not in str(caught.value)
    return caught.value.problems


# --- settings ----------------------------------------------------------------------------------


def test_the_default_is_plaintext_without_credentials() -> None:
    settings = load_settings(NO_FILE, environ={})
    assert settings.security_protocol == "PLAINTEXT"
    assert (settings.sasl_mechanism, settings.sasl_username, settings.sasl_password) == (
        None, None, None)
    assert client_options(settings) == {"bootstrap_servers": ["127.0.0.1:9092"],
                                        "security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_sasl_ssl_from_the_environment_case_insensitive() -> None:
    settings = load_settings(NO_FILE, environ=_sasl_env(SLAMON_SECURITY_PROTOCOL="sasl_ssl",
                                                        SLAMON_SASL_MECHANISM="scram-sha-256"))
    assert settings.security_protocol == "SASL_SSL"
    assert settings.sasl_mechanism == "SCRAM-SHA-256"
    assert settings.sasl_password == Secret(PASSWORD)
    assert settings.sasl_password is not None and settings.sasl_password.reveal() == PASSWORD


def test_a_secret_never_shows_itself() -> None:
    settings = load_settings(NO_FILE, environ=_sasl_env())
    secret = settings.sasl_password
    shown = [repr(settings), str(settings), describe(settings), repr(secret), str(secret),
             f"{secret}", f"{secret!r}", "%s" % secret]  # noqa: UP031 - as logging does
    assert all(PASSWORD not in text for text in shown)
    assert "sasl_password = **********" in describe(settings).splitlines()
    assert Secret("a") != Secret("b") and Secret("a") == Secret("a") != "a"


def test_the_password_from_a_file_without_its_newline(tmp_path: Path) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text(PASSWORD + "\n")
    env = _sasl_env(SLAMON_SASL_PASSWORD_FILE=str(secret_file))
    del env["SLAMON_SASL_PASSWORD"]
    settings = load_settings(NO_FILE, environ=env)
    assert settings.sasl_password == Secret(PASSWORD)
    assert settings.sasl_password_file == secret_file
    assert PASSWORD not in describe(settings) and PASSWORD not in repr(settings)


def test_sasl_needs_a_mechanism_a_user_and_a_password() -> None:
    assert _problems({"SLAMON_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}) == [
        "sasl_mechanism (SLAMON_SASL_MECHANISM): required when security_protocol is "
        "SASL_PLAINTEXT: one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        "sasl_username (SLAMON_SASL_USERNAME): required when security_protocol is "
        "SASL_PLAINTEXT",
        "sasl_password (SLAMON_SASL_PASSWORD): required when security_protocol is "
        "SASL_PLAINTEXT (or sasl_password_file, SLAMON_SASL_PASSWORD_FILE)",
    ]


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"SLAMON_SECURITY_PROTOCOL": "TLS"},
         "SLAMON_SECURITY_PROTOCOL: 'TLS' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
         "SASL_SSL"),
        (_sasl_env(SLAMON_SASL_MECHANISM="GSSAPI"),
         "SLAMON_SASL_MECHANISM: 'GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        (_sasl_env(SLAMON_SASL_PASSWORD_FILE="/run/secrets/pw"),
         "SLAMON_SASL_PASSWORD: give either sasl_password or sasl_password_file "
         "(SLAMON_SASL_PASSWORD_FILE), not both"),
        ({"SLAMON_SASL_USERNAME": "slamon"},
         "SLAMON_SASL_USERNAME: applies only when security_protocol is SASL_PLAINTEXT or "
         "SASL_SSL (it is PLAINTEXT)"),
        ({"SLAMON_SECURITY_PROTOCOL": "SSL", "SLAMON_SASL_PASSWORD": PASSWORD},
         "SLAMON_SASL_PASSWORD: applies only when security_protocol is SASL_PLAINTEXT or "
         "SASL_SSL (it is SSL)"),
        (_sasl_env(SLAMON_SECURITY_PROTOCOL="SASL_PLAINTEXT", SLAMON_SSL_CAFILE="ca.pem"),
         "SLAMON_SSL_CAFILE: applies only when security_protocol is SSL or SASL_SSL "
         "(it is SASL_PLAINTEXT)"),
        ({"SLAMON_SECURITY_PROTOCOL": "SSL", "SLAMON_SSL_CAFILE": "/nonexistent/ca.pem"},
         "SLAMON_SSL_CAFILE: no such file: /nonexistent/ca.pem"),
        (_sasl_env(SLAMON_SASL_PASSWORD="", SLAMON_SASL_PASSWORD_FILE="/nonexistent/pw"),
         "SLAMON_SASL_PASSWORD_FILE: cannot read /nonexistent/pw: No such file or directory"),
    ],
)
def test_a_bad_combination_is_named(environ: dict[str, str], problem: str) -> None:
    assert _problems(environ) == [problem]


def test_a_key_needs_its_certificate(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("a key\n")
    problems = _problems({"SLAMON_SECURITY_PROTOCOL": "SSL", "SLAMON_SSL_KEYFILE": str(key),
                          "SLAMON_SSL_KEY_PASSWORD": PASSWORD})
    assert problems == [
        "SLAMON_SSL_KEYFILE: needs ssl_certfile, the client certificate (SLAMON_SSL_CERTFILE)",
        "SLAMON_SSL_KEY_PASSWORD: needs ssl_certfile, the client certificate "
        "(SLAMON_SSL_CERTFILE)",
    ]


def test_an_empty_password_file(tmp_path: Path) -> None:
    empty = tmp_path / "pw"
    empty.write_text("\n")
    env = _sasl_env(SLAMON_SASL_PASSWORD_FILE=str(empty))
    del env["SLAMON_SASL_PASSWORD"]
    assert _problems(env) == [f"SLAMON_SASL_PASSWORD_FILE: {empty} is empty"]


def test_yaml_names_file_and_line_and_never_the_value(tmp_path: Path) -> None:
    config = tmp_path / "slamon.yaml"
    config.write_text("security_protocol: SASL_SSL\nsasl_mechanism: PLAIN\n"
                      "sasl_username: slamon\nsasl_password: 123456789\n")
    problems = _problems({}, config)
    assert problems == [f"{config}:4: sasl_password: must be a string (quote it in YAML)"]
    assert "123456789" not in "\n".join(problems)


# --- client configuration ----------------------------------------------------------------------


def test_client_options_carry_sasl_and_tls_with_a_masked_password(
        caplog: pytest.LogCaptureFixture) -> None:
    options = client_options(load_settings(NO_FILE, environ=_sasl_env()))
    password = options.pop("sasl_plain_password")
    context = options.pop("ssl_context")
    assert options == {"bootstrap_servers": ["127.0.0.1:9092"], "security_protocol": "SASL_SSL",
                       "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "slamon"}
    assert isinstance(password, MaskedPassword) and password == PASSWORD
    assert password.encode() == PASSWORD.encode()
    assert "\0".join(["slamon", password]) == f"slamon\0{PASSWORD}"  # how PLAIN sends it
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("kafka.test").debug("config: %s %s", {"p": password}, password)
    assert PASSWORD not in caplog.text and PASSWORD not in f"{password} {password!r}"
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_faust_gets_sasl_credentials_with_the_tls_context() -> None:
    from faust.auth import SASLCredentials, SSLCredentials
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    credentials = faust_credentials(load_settings(NO_FILE, environ=_sasl_env()))
    assert isinstance(credentials, SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("slamon", PASSWORD)
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    assert PASSWORD not in repr(credentials) and PASSWORD not in repr(auth)
    tls_only = faust_credentials(Settings(security_protocol="SSL"))
    assert isinstance(tls_only, SSLCredentials)
    assert credentials_to_aiokafka_auth(tls_only)["security_protocol"] == "SSL"


def test_a_file_that_is_no_certificate_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=r"ssl_cafile \(SLAMON_SSL_CAFILE\): .*ca\.pem: not "
                                            r"usable as CA certificates"):
        ssl_context(Settings(security_protocol="SSL", ssl_cafile=bogus))


def test_a_wrong_key_password_is_named_never_shown(tmp_path: Path) -> None:
    from agents.devkit import localkafka
    from agents.devkit.localkafka.secure import prepare, tls_file

    cfg = localkafka.BrokerConfig(port=19092, home=tmp_path, secure=True)
    prepare(cfg, say=lambda line: None)
    key_password = tls_file(cfg, "client-key.password").read_text()
    good = Settings(security_protocol="SSL", ssl_cafile=tls_file(cfg, "ca.pem"),
                    ssl_certfile=tls_file(cfg, "client.pem"),
                    ssl_keyfile=tls_file(cfg, "client.key"),
                    ssl_key_password=Secret(key_password))
    assert ssl_context(good) is not None
    wrong = Settings(**{**{f: getattr(good, f) for f in good.__dataclass_fields__},
                        "ssl_key_password": Secret(PASSWORD)})
    with pytest.raises(SettingsError) as caught:
        ssl_context(wrong)
    assert "ssl_certfile (SLAMON_SSL_CERTFILE)" in str(caught.value)
    assert "a wrong ssl_key_password?" in str(caught.value)
    assert PASSWORD not in str(caught.value) and key_password not in str(caught.value)


# --- access check ------------------------------------------------------------------------------


@pytest.fixture
def hang_up_port() -> Iterator[int]:
    """A port that accepts connections and closes them unanswered, as a TLS listener does
    to a plaintext client."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    done.set()
    thread.join()
    server.close()


def test_a_listener_speaking_another_protocol_is_a_refusal(hang_up_port: int) -> None:
    settings = Settings(broker=f"kafka://127.0.0.1:{hang_up_port}")
    with pytest.raises(KafkaAccessError) as caught:
        check_access(settings, timeout=5.0)
    assert caught.value.refused
    assert "closed the connection unanswered" in str(caught.value)
    assert "does its listener use security_protocol PLAINTEXT?" in str(caught.value)


def test_no_broker_is_not_a_refusal(free_port: Callable[[], int]) -> None:
    port = free_port()
    with pytest.raises(KafkaAccessError) as caught:
        check_access(Settings(broker=f"kafka://127.0.0.1:{port}"), timeout=5.0)
    assert not caught.value.refused
    assert f"127.0.0.1:{port}: cannot connect" in str(caught.value)


# --- the local broker's secure mode ------------------------------------------------------------


def test_secure_broker_properties_replace_the_plaintext_listener(tmp_path: Path) -> None:
    from agents.devkit import localkafka
    from agents.devkit.localkafka.secure import secure_properties

    cfg = localkafka.BrokerConfig(port=19092, home=tmp_path, secure=True)
    text = localkafka.render_properties(cfg, secure_properties(cfg, PASSWORD))
    props = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert props["listeners"] == ("SASL_SSL://127.0.0.1:19092,INTERNAL://127.0.0.1:19094,"
                                  "CONTROLLER://127.0.0.1:19093")
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:19092,INTERNAL://127.0.0.1:19094"
    assert props["inter.broker.listener.name"] == "INTERNAL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"
    assert props["ssl.keystore.location"] == str(tmp_path / "19092" / "tls" / "broker-keystore.pem")
    assert cfg.ports == (19092, 19093, 19094)


def test_scram_users_are_added_salted_never_in_clear() -> None:
    import base64
    import hashlib

    from agents.devkit.localkafka.secure import scram_arguments

    arguments = scram_arguments(PASSWORD, salt=b"0123456789abcdef")
    assert PASSWORD not in " ".join(arguments)
    assert arguments[0::2] == ["--add-scram", "--add-scram"]
    salted = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), b"0123456789abcdef", 4096)
    assert arguments[1] == ('SCRAM-SHA-512=[name=slamon,iterations=4096,'
                            f'salt="{base64.b64encode(b"0123456789abcdef").decode()}",'
                            f'saltedpassword="{base64.b64encode(salted).decode()}"]')
    assert arguments[3].startswith("SCRAM-SHA-256=[name=slamon,iterations=4096,")


def test_secure_mode_certificates_verify_for_the_loopback_address(tmp_path: Path) -> None:
    from agents.devkit import localkafka
    from agents.devkit.localkafka.secure import client_env, prepare, tls_file

    cfg = localkafka.BrokerConfig(port=19092, home=tmp_path, secure=True)
    password = prepare(cfg, say=lambda line: None)
    assert prepare(cfg, say=lambda line: None) == password  # made once
    assert oct(tls_file(cfg, "client.password").stat().st_mode & 0o777) == "0o600"
    context = ssl.create_default_context(cafile=str(tls_file(cfg, "ca.pem")))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(tls_file(cfg, "broker.pem")), str(tls_file(cfg, "broker.key")))
    left, right = socket.socketpair()
    with left, right:
        result: list[BaseException | None] = []

        def accept() -> None:
            try:
                with server.wrap_socket(right, server_side=True) as tls:
                    tls.recv(1)
                result.append(None)
            except (OSError, ssl.SSLError) as exc:
                result.append(exc)

        thread = threading.Thread(target=accept)
        thread.start()
        with context.wrap_socket(left, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"x")
        thread.join(10)
    assert result == [None]
    settings = load_settings(NO_FILE, environ=client_env(cfg))
    assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert settings.sasl_password == Secret(password)
