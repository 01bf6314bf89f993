"""How slamon connects to Kafka: the security settings checked together, and every client's
configuration built from them in this one place.

`client_options(settings)` is what kafka-python and aiokafka clients take (they share the
key names: bootstrap servers, security protocol, SASL mechanism and credentials, TLS
context); `faust_credentials(settings)` is the worker's `broker_credentials`. One TLS context
builder serves both, so every client verifies the broker alike: against `ssl_cafile` (or
the system's CAs), host name checked, with the client certificate when one is set.

A password reaches a client only as a `MaskedPassword`, a str that prints as `**********`:
kafka-python logs its whole configuration at debug level, Faust prints its credentials.
`security_problems` is the cross-field check `agents.settings.load_settings` runs.

`check_access` connects once and says plainly why Kafka refused: clients retry a refused
login until their timeout and then report only "unable to bootstrap".
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.settings import ENV_VARS, SASL_MECHANISMS, Secret, Settings, SettingsError
from sla.errors import SlamonError

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = [
    "KafkaAccessError",
    "MaskedPassword",
    "check_access",
    "client_options",
    "faust_credentials",
    "security_problems",
    "ssl_context",
]

SASL_KEYS = ("sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file")
SSL_KEYS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password")
MASK = "**********"


class MaskedPassword(str):
    """A password for a Kafka client: the real text to encode, `**********` to print."""

    def __repr__(self) -> str:
        return repr(MASK)

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)


def _sasl(protocol: str) -> bool:
    return protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _tls(protocol: str) -> bool:
    return protocol in ("SSL", "SASL_SSL")


# --- checks -------------------------------------------------------------------------------------


def security_problems(values: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    """The parsed security settings in `values`, checked together; one message per problem.

    `name(key)` says where a key was given (file:line or variable) for messages, which never
    contain a password. Reads `sasl_password_file` into `values["sasl_password"]`.
    """
    protocol = values.get("security_protocol") or "PLAINTEXT"
    problems = []
    if _sasl(protocol):
        for key, what in (("sasl_mechanism", f": one of {', '.join(SASL_MECHANISMS)}"),
                          ("sasl_username", "")):
            if values.get(key) is None:
                problems.append(f"{name(key)}: required when security_protocol is "
                                f"{protocol}{what}")
        password, password_file = values.get("sasl_password"), values.get("sasl_password_file")
        if password is not None and password_file is not None:
            problems.append(f"{name('sasl_password')}: give either sasl_password or "
                            f"sasl_password_file ({name('sasl_password_file')}), not both")
        elif password_file is not None:
            problems += _read_password(password_file, name("sasl_password_file"), values)
        elif password is None:
            problems.append(f"{name('sasl_password')}: required when security_protocol is "
                            f"{protocol} (or sasl_password_file, "
                            f"{ENV_VARS['sasl_password_file']})")
    else:
        problems += [f"{name(key)}: applies only when security_protocol is SASL_PLAINTEXT or "
                     f"SASL_SSL (it is {protocol})" for key in SASL_KEYS
                     if values.get(key) is not None]
    if _tls(protocol):
        for key in ("ssl_keyfile", "ssl_key_password"):
            if values.get(key) is not None and values.get("ssl_certfile") is None:
                problems.append(f"{name(key)}: needs ssl_certfile, the client certificate "
                                f"({ENV_VARS['ssl_certfile']})")
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = values.get(key)
            if path is not None and not path.is_file():
                problems.append(f"{name(key)}: no such file: {path}")
    else:
        problems += [f"{name(key)}: applies only when security_protocol is SSL or SASL_SSL "
                     f"(it is {protocol})" for key in SSL_KEYS if values.get(key) is not None]
    return problems


def _read_password(path: Path, where: str, values: dict[str, Any]) -> list[str]:
    """sasl_password from its file, one trailing newline dropped; problems never show it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [f"{where}: cannot read {path}: {exc.strerror or type(exc).__name__}"]
    except UnicodeDecodeError:
        return [f"{where}: {path} is not UTF-8 text"]
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        return [f"{where}: {path} is empty"]
    values["sasl_password"] = Secret(text)
    return []


# --- client configuration -----------------------------------------------------------------------


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of every client, or None when the protocol has no TLS.

    Raises SettingsError naming the setting when a file is not a usable PEM certificate or
    key (a wrong `ssl_key_password` included).
    """
    if not _tls(settings.security_protocol):
        return None
    cafile = settings.ssl_cafile
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError([f"ssl_cafile ({ENV_VARS['ssl_cafile']}): {cafile}: not usable "
                             f"as CA certificates: {_reason(exc)}"]) from None
    if settings.ssl_certfile is not None:
        password = settings.ssl_key_password
        try:
            context.load_cert_chain(str(settings.ssl_certfile),
                                    str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
                                    password=password.reveal() if password else None)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError([
                f"ssl_certfile ({ENV_VARS['ssl_certfile']}): {settings.ssl_certfile}: cannot "
                f"load the client certificate with its key (ssl_keyfile "
                f"{settings.ssl_keyfile or 'unset'}; a wrong ssl_key_password?): "
                f"{_reason(exc)}"]) from None
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    return str(getattr(exc, "reason", None) or exc.strerror or type(exc).__name__)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for a kafka-python or aiokafka client: servers and security.

    Add the client's own options beside them: `KafkaConsumer(**client_options(s), ...)`.
    """
    protocol = settings.security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers,
                               "security_protocol": protocol}
    if _tls(protocol):
        options["ssl_context"] = ssl_context(settings)
    if _sasl(protocol):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = _password(settings)
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """`broker_credentials` of the Faust app: SASL (with TLS or not), TLS alone, or None."""
    import faust

    protocol = settings.security_protocol
    if _sasl(protocol):
        return faust.SASLCredentials(username=settings.sasl_username,
                                     password=_password(settings),
                                     ssl_context=ssl_context(settings),
                                     mechanism=settings.sasl_mechanism)
    if _tls(protocol):
        return faust.SSLCredentials(ssl_context(settings))
    return None


def _password(settings: Settings) -> MaskedPassword:
    secret = settings.sasl_password
    if secret is None:  # load_settings refuses SASL without one; a hand-built Settings may not
        raise SettingsError([f"sasl_password ({ENV_VARS['sasl_password']}): required when "
                             f"security_protocol is {settings.security_protocol}"])
    return MaskedPassword(secret.reveal())


# --- access check -------------------------------------------------------------------------------


class KafkaAccessError(SlamonError):
    """No bootstrap server let this client in; `refused` when retrying cannot help (the
    credentials, the certificate or the protocol are wrong), else it could not be reached."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


def check_access(settings: Settings, timeout: float = 10.0) -> None:
    """Connect to each bootstrap server until one answers a metadata request, as these
    settings say (TLS, SASL login); raise KafkaAccessError saying why none did.

    Runs its own event loop: call it before the application's loop starts.
    """
    failures = asyncio.run(_try_servers(settings, timeout))
    if failures is not None:
        refused = any(refused for _, refused in failures)
        raise KafkaAccessError(f"cannot use Kafka at {settings.broker}: " + "; ".join(
            reason for reason, _ in failures), refused)


async def _try_servers(settings: Settings, timeout: float) -> list[tuple[str, bool]] | None:
    options = client_options(settings)
    servers: list[str] = options.pop("bootstrap_servers")
    failures = []
    for server in servers:
        failure = await _try_server(server, options, settings, timeout)
        if failure is None:
            return None
        failures.append(failure)
    return failures


async def _try_server(server: str, options: dict[str, Any], settings: Settings,
                      timeout: float) -> tuple[str, bool] | None:
    """None when `server` lets us in, else (reason, refused)."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import (
        AuthenticationFailedError,
        IllegalSaslStateError,
        KafkaConnectionError,
        KafkaError,
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )
    from aiokafka.protocol.metadata import MetadataRequest

    host, _, port = server.rpartition(":")
    protocol = settings.security_protocol
    try:
        async with asyncio.timeout(timeout):
            connection = await create_conn(host, int(port), client_id="slamon-access-check",
                                           request_timeout_ms=int(timeout * 1000), **options)
            try:
                await connection.send(MetadataRequest([]))
            finally:
                connection.close()
    except (SaslAuthenticationFailed, AuthenticationFailedError, IllegalSaslStateError,
            UnsupportedSaslMechanismError) as exc:
        return (f"{server} refused the login of sasl_username {settings.sasl_username!r} with "
                f"{settings.sasl_mechanism}: {_message(exc)}", True)
    except ssl.SSLCertVerificationError as exc:
        return (f"{server}: its certificate is not trusted ({exc.verify_message}); ssl_cafile "
                f"({ENV_VARS['ssl_cafile']}) names the CA that signed it", True)
    except ssl.SSLError as exc:
        return (f"{server}: the TLS handshake failed ({exc.reason or exc}): does this port "
                f"speak TLS? security_protocol is {protocol}", True)
    except TimeoutError:
        return f"{server}: no answer within {timeout:g} s", False
    except (KafkaConnectionError, ConnectionResetError, asyncio.IncompleteReadError) as exc:
        # Connected, then dropped unanswered: what a listener does to a client speaking
        # another protocol (plaintext at a TLS port, or TLS at a plaintext one).
        return (f"{server} closed the connection unanswered ({_message(exc)}): does its "
                f"listener use security_protocol {protocol}?", True)
    except (OSError, KafkaError) as exc:
        return f"{server}: cannot connect: {_message(exc)} (is the broker running?)", False
    return None


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"
