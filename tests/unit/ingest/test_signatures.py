"""Signature checks per scheme: a valid delivery passes; a tampered body, a wrong secret, a
missing header and (Zendesk) a stale timestamp are refused, each with its reason."""

from __future__ import annotations

import base64
import time

import pytest

from agents.ingest.desks import DESKS
from agents.ingest.fields import Headers
from agents.ingest.signatures import SignatureSpec, sign, verify
from agents.settings import Secret

BODY = b'{"ticket": {"id": 1, "status": "open"}}'
SECRET = "s3cret-value"
NOW = 1_772_442_000.0  # 2026-03-02T09:00:00Z
STAMP = "2026-03-02T09:00:00Z"

SPECS = {
    "jira": DESKS["jira"].signature,
    "github": DESKS["github"].signature,
    "zammad": DESKS["zammad"].signature,
    "zendesk": DESKS["zendesk"].signature,
    "gitlab": DESKS["gitlab"].signature,
    "servicenow-token": DESKS["servicenow"].signature,
    "servicenow-basic": SignatureSpec("basic", "Authorization", username="slamon"),
}


def _check(spec: SignatureSpec, headers: dict[str, str], body: bytes = BODY,
           secret: str = SECRET, now: float = NOW) -> str | None:
    return verify(spec, Secret(secret), Headers(headers), body, now)


@pytest.mark.parametrize("name", SPECS)
def test_a_validly_signed_delivery_passes(name: str) -> None:
    spec = SPECS[name]
    assert _check(spec, sign(spec, SECRET, BODY, STAMP)) is None


@pytest.mark.parametrize("name", SPECS)
def test_header_names_match_in_any_case(name: str) -> None:
    spec = SPECS[name]
    headers = {key.lower(): value for key, value in sign(spec, SECRET, BODY, STAMP).items()}
    assert _check(spec, headers) is None


@pytest.mark.parametrize("name", [n for n in SPECS if n not in ("gitlab", "servicenow-token",
                                                                  "servicenow-basic")])
def test_a_tampered_body_is_refused(name: str) -> None:
    spec = SPECS[name]
    headers = sign(spec, SECRET, BODY, STAMP)
    assert _check(spec, headers, body=BODY.replace(b"open", b"shut")) == "bad_signature"


@pytest.mark.parametrize("name", SPECS)
def test_a_wrong_secret_is_refused(name: str) -> None:
    spec = SPECS[name]
    assert _check(spec, sign(spec, "another-secret", BODY, STAMP)) == "bad_signature"


@pytest.mark.parametrize("name", SPECS)
def test_a_missing_signature_is_refused(name: str) -> None:
    assert _check(SPECS[name], {}) == "missing_signature"


def test_the_expected_digest_format_is_the_vendors() -> None:
    jira = sign(SPECS["jira"], SECRET, BODY)["X-Hub-Signature"]
    github = sign(SPECS["github"], SECRET, BODY)["X-Hub-Signature-256"]
    zammad = sign(SPECS["zammad"], SECRET, BODY)["X-Hub-Signature"]
    assert jira.startswith("sha256=") and len(jira) == 7 + 64 and jira == github
    assert zammad.startswith("sha1=") and len(zammad) == 5 + 40
    assert _check(SPECS["jira"], {"X-Hub-Signature": jira.removeprefix("sha256=")}) \
        == "bad_signature"


def test_zendesk_signs_timestamp_then_body_in_base64() -> None:
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), STAMP.encode() + BODY, hashlib.sha256).digest()
    headers = {"X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
               "X-Zendesk-Webhook-Signature-Timestamp": STAMP}
    assert _check(SPECS["zendesk"], headers) is None


@pytest.mark.parametrize("offset", [-301.0, 301.0, 3600.0 * 24])
def test_zendesk_refuses_a_stale_or_future_timestamp(offset: float) -> None:
    spec = SPECS["zendesk"]
    assert _check(spec, sign(spec, SECRET, BODY, STAMP), now=NOW + offset) == "stale_timestamp"


def test_zendesk_accepts_a_timestamp_inside_the_window_and_in_epoch_seconds() -> None:
    spec = SPECS["zendesk"]
    assert _check(spec, sign(spec, SECRET, BODY, STAMP), now=NOW + 299) is None
    epoch = str(int(NOW))
    assert _check(spec, sign(spec, SECRET, BODY, epoch)) is None


def test_zendesk_a_replayed_timestamp_cannot_be_swapped() -> None:
    spec = SPECS["zendesk"]
    headers = sign(spec, SECRET, BODY, STAMP)
    headers["X-Zendesk-Webhook-Signature-Timestamp"] = "2026-03-02T09:00:01Z"
    assert _check(spec, headers, now=NOW) == "bad_signature"


def test_basic_refuses_another_user_and_garbage() -> None:
    spec = SPECS["servicenow-basic"]
    other = SignatureSpec("basic", "Authorization", username="mallory")
    assert _check(spec, sign(other, SECRET, BODY)) == "bad_signature"
    assert _check(spec, {"Authorization": "Basic !!!notbase64"}) == "bad_signature"
    assert _check(spec, {"Authorization": "Bearer abc"}) == "missing_signature"


def test_a_secret_never_shows_in_its_repr() -> None:
    assert SECRET not in repr(Secret(SECRET)) and SECRET not in str(Secret(SECRET))


def test_verify_uses_the_clock_it_is_given() -> None:
    spec = SPECS["zendesk"]
    now_stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert _check(spec, sign(spec, SECRET, BODY, now_stamp), now=time.time()) is None
