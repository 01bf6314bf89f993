"""Signature checks of webhook deliveries, one per scheme the desks use.

    hmac-sha256  header = [prefix]hex(HMAC-SHA256(secret, body))   Jira `X-Hub-Signature:
                 sha256=...`, GitHub `X-Hub-Signature-256: sha256=...`
    hmac-sha1    the same with SHA-1                                Zammad `X-Hub-Signature`
    zendesk      header = base64(HMAC-SHA256(secret, timestamp + body)), the timestamp in
                 `X-Zendesk-Webhook-Signature-Timestamp`; refused outside `tolerance` seconds
                 of our clock, so a captured request cannot be replayed later
    token        header = the secret itself                          GitLab `X-Gitlab-Token`,
                 a shared-secret header for ServiceNow and Freshservice
    basic        `Authorization: Basic base64(username:secret)`      ServiceNow REST messages

Every comparison is `hmac.compare_digest`. `verify` returns None for a valid delivery or a
reason (`missing_signature`, `bad_signature`, `stale_timestamp`); it never says what the
expected value was, and never sees the secret except as a `Secret`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from agents.ingest.fields import vendor_ms
from agents.settings import Secret

__all__ = ["Scheme", "SCHEMES", "SignatureSpec", "SignatureFailure", "verify", "sign"]

Scheme = Literal["hmac-sha256", "hmac-sha1", "zendesk", "token", "basic"]
SCHEMES: tuple[Scheme, ...] = get_args(Scheme)
SignatureFailure = Literal["missing_signature", "bad_signature", "stale_timestamp"]
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"


@dataclass(frozen=True, slots=True)
class SignatureSpec:
    """How one source signs: the scheme, the header it travels in, and scheme details."""

    scheme: Scheme
    header: str
    prefix: str = ""  # e.g. "sha256=" before the hex digest
    timestamp_header: str = ZENDESK_TIMESTAMP  # zendesk only
    tolerance: float = 300.0  # seconds a zendesk timestamp may differ from our clock
    username: str | None = None  # basic only; None accepts any user name


def verify(spec: SignatureSpec, secret: Secret, headers: Mapping[str, str], body: bytes,
           now: float) -> SignatureFailure | None:
    """None when the delivery is signed with `secret`; else why not. `headers` must look
    names up case-insensitively (aiohttp's do); `now` is epoch seconds."""
    given = headers.get(spec.header)
    if not given:
        return "missing_signature"
    key = secret.reveal().encode()
    if spec.scheme in ("hmac-sha256", "hmac-sha1"):
        algorithm = hashlib.sha256 if spec.scheme == "hmac-sha256" else hashlib.sha1
        expected = spec.prefix + hmac.new(key, body, algorithm).hexdigest()
        return None if hmac.compare_digest(expected.encode(), given.strip().encode()) \
            else "bad_signature"
    if spec.scheme == "zendesk":
        stamp = headers.get(spec.timestamp_header)
        if not stamp:
            return "missing_signature"
        expected = base64.b64encode(
            hmac.new(key, stamp.encode() + body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected.encode(), given.strip().encode()):
            return "bad_signature"
        signed_ms = vendor_ms(stamp)
        if signed_ms is None or abs(now - signed_ms / 1000) > spec.tolerance:
            return "stale_timestamp"
        return None
    if spec.scheme == "token":
        return None if hmac.compare_digest(key, given.strip().encode()) else "bad_signature"
    return _basic(spec, key, given)


def _basic(spec: SignatureSpec, key: bytes, given: str) -> SignatureFailure | None:
    scheme, _, encoded = given.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return "missing_signature"
    try:
        user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return "bad_signature"
    user_ok = spec.username is None or hmac.compare_digest(user, spec.username.encode())
    password_ok = hmac.compare_digest(password, key)
    return None if user_ok and password_ok else "bad_signature"


def sign(spec: SignatureSpec, secret: str, body: bytes, timestamp: str | None = None,
         ) -> dict[str, str]:
    """The headers a vendor would send with `body`: for tests, the benchmark and docs."""
    key = secret.encode()
    if spec.scheme in ("hmac-sha256", "hmac-sha1"):
        algorithm = hashlib.sha256 if spec.scheme == "hmac-sha256" else hashlib.sha1
        return {spec.header: spec.prefix + hmac.new(key, body, algorithm).hexdigest()}
    if spec.scheme == "zendesk":
        stamp = timestamp or ""
        digest = hmac.new(key, stamp.encode() + body, hashlib.sha256).digest()
        return {spec.header: base64.b64encode(digest).decode(), spec.timestamp_header: stamp}
    if spec.scheme == "token":
        return {spec.header: secret}
    user = spec.username or "slamon"
    return {spec.header: "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}
