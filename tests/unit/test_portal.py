"""The portal without a broker: tokens, the view fed with records, the HTML, the pages."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.app import create_app
from agents.portal.pages import render_report
from agents.portal.tokens import PortalTokensError, TokenSource, load_tokens
from agents.portal.view import PortalView
from agents.settings import Settings
from sla.model import CreditTier

ACME = "acme-token-0123456789"
GLOBEX = "globex-token-0123456789"
TIERS = (CreditTier(below=0.99, credit=0.05), CreditTier(below=0.95, credit=0.10))
POLICIES = """\
version: 1
corporate:
  targets: {P1: {response: 15m}, P2: {response: 1h}}
customers:
  acme:
    credits: [{below: 0.99, credit: 0.05}, {below: 0.95, credit: 0.10}]
"""


def _window(customer: str = "acme", service: str = "payments", priority: str = "P1",
            start: str = "2026-05-01T10:00:00Z", met: int = 9, total: int = 10,
            credit: float = 0.10, window: str = "hour", **extra: object) -> dict:
    ratio = met / total
    return {"id": f"{service}:{customer}:{priority}:response:{window}:{start}",
            "kind": "compliance", "service": service, "customer": customer,
            "priority": priority, "metric": "response", "window": window,
            "window_start": start, "window_end": "2026-05-01T11:00:00Z", "met": met,
            "breached": total - met, "total": total, "compliance_ratio": ratio,
            "p50_seconds": 300.0, "p90_seconds": 800.0, "p99_seconds": 1000.0, "credit": credit,
            **extra}


def _breach(ticket: str, customer: str = "acme", at: str = "2026-05-01T10:15:00Z") -> dict:
    return {"id": f"{ticket}:response:0:breach", "kind": "breach", "ticket_id": ticket,
            "metric": "response", "cycle": 0, "service": "payments", "customer": customer,
            "priority": "P1", "policy_version": 1, "target_seconds": 900.0,
            "started_at": "2026-05-01T10:00:00Z", "elapsed_seconds": 900.0, "deadline": at,
            "breached_at": at, "detected_at": at}


def _tiers(customer: str, service: str) -> tuple[CreditTier, ...]:
    return TIERS if customer == "acme" else ()


# -- tokens ------------------------------------------------------------------------------------


def _tokens_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portal.yaml"
    path.write_text(text)
    return path


def test_a_token_opens_its_customer_only(tmp_path: Path) -> None:
    (tmp_path / "globex.token").write_text(GLOBEX + "\n")
    tokens = load_tokens(_tokens_file(
        tmp_path, f"customers:\n  acme: {ACME}\n  globex: [{{file: globex.token}}]\n"))
    assert tokens.customers == {"acme", "globex"}
    assert tokens.customer_for(ACME) == "acme"
    assert tokens.customer_for(GLOBEX) == "globex"
    assert tokens.customer_for(ACME[:-1]) is None
    assert tokens.customer_for("") is None and tokens.customer_for(None) is None


def test_every_problem_of_a_tokens_file_is_reported_without_the_tokens(tmp_path: Path) -> None:
    path = _tokens_file(tmp_path, (
        "customers:\n"
        "  acme: short\n"
        f"  globex: {ACME}\n"
        f"  initech: {ACME}\n"
        "  umbrella: {file: missing.token}\n"
        "  hooli: 42\n"))
    with pytest.raises(PortalTokensError) as caught:
        load_tokens(path)
    problems = caught.value.problems
    assert problems == [
        f"{path}:2: customers.acme: a token needs at least 16 characters, each a letter, "
        "a digit, '-', '_', '.' or '~'",
        f"{path}:5: customers.umbrella: cannot read token file {tmp_path / 'missing.token'}: "
        "No such file or directory",
        f"{path}:6: customers.hooli: expected a token, {{file: PATH}} or a list of those",
        f"{path}: customers globex and initech share a token",
    ]
    assert ACME not in str(caught.value) and "short" not in str(caught.value)


def test_a_bad_file_keeps_the_last_good_tokens(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    path = _tokens_file(tmp_path, f"customers:\n  acme: {ACME}\n")
    source = TokenSource(path, check_seconds=0)
    assert source.current().customer_for(ACME) == "acme"
    path.write_text("customers:\n  acme: [\n")
    with caplog.at_level(logging.INFO, logger="agents.portal.tokens"):
        assert source.current().customer_for(ACME) == "acme"
        path.write_text(f"customers:\n  globex: {GLOBEX}\n")
        assert source.current().customer_for(ACME) is None
    assert "keeping the last good tokens" in caplog.text
    assert ACME not in caplog.text and GLOBEX not in caplog.text
    assert repr(next(iter(load_tokens(path)._pairs))[1]) == "Secret('**********')"


def test_without_a_tokens_file_nobody_gets_in() -> None:
    assert TokenSource(None).current().customer_for(ACME) is None


# -- the view ----------------------------------------------------------------------------------


def test_the_view_keeps_the_latest_record_per_id_and_one_customer_apart() -> None:
    view = PortalView()
    view.apply(_window(met=5))
    view.apply(_window(met=9))  # the same window again (a redelivery or a later record)
    view.apply(_window(customer="globex", met=1))
    view.apply_bytes(b"not json")
    report = view.report("acme", _tiers)
    (service,) = report["services"]
    assert service["service"] == "payments"
    assert [r["met"] for r in service["windows"]["hour"]] == [9]
    assert service["credit_tiers"] == [{"below": 0.99, "credit": 0.05},
                                       {"below": 0.95, "credit": 0.10}]
    assert view.skipped == 1
    assert "globex" not in orjson.dumps(report).decode()


def test_credits_are_owed_per_period_of_the_longest_window_reported() -> None:
    view = PortalView()
    view.apply(_window(priority="P1", met=9, total=10, credit=0.10))
    view.apply(_window(priority="P2", met=10, total=10, credit=0.0))
    view.apply(_window(priority="P1", start="2026-05-01T11:00:00Z", met=10, credit=0.0))
    service = view.report("acme", _tiers)["services"][0]
    assert service["latest"]["window_start"] == "2026-05-01T11:00:00Z"
    assert service["credits_owed"] == [{
        "window": "hour", "window_start": "2026-05-01T10:00:00Z",
        "window_end": "2026-05-01T11:00:00Z", "met": 19, "total": 20,
        "compliance_ratio": 0.95, "credit": 0.10}]
    view.apply(_window(window="day", start="2026-05-01T00:00:00Z", met=30, total=30, credit=0.0))
    service = view.report("acme", _tiers)["services"][0]
    assert (service["latest"]["window"], service["credits_owed"]) == ("day", [])


def test_a_retracted_breach_is_dropped_and_stays_dropped() -> None:
    view = PortalView()
    view.apply(_breach("T1"))
    view.apply(_breach("T2", at="2026-05-01T10:20:00Z"))
    view.apply({"kind": "retraction", "id": "T1:response:0:breach:retracted",
                "retracts": "T1:response:0:breach", "retracts_kind": "breach",
                "ticket_id": "T1", "metric": "response", "service": "payments",
                "customer": "acme", "at": "2026-05-01T10:30:00Z"})
    view.apply(_breach("T1"))  # redelivered after its retraction
    report = view.report("acme", _tiers)
    assert [b["ticket_id"] for b in report["breaches"]] == ["T2"]
    assert report["breach_count"] == 1


def test_the_view_forgets_old_windows_and_breaches() -> None:
    view = PortalView(max_breaches=10)
    for hour in range(24 * 9):
        day, rest = divmod(hour, 24)
        view.apply(_window(start=f"2026-05-{day + 1:02d}T{rest:02d}:00:00Z"))
    view.prune()
    kept = view.report("acme", _tiers)["services"][0]["windows"]["hour"]
    assert len(kept) == 24 and kept[0]["window_start"] == "2026-05-09T23:00:00Z"
    assert len(view._windows["acme"]) == 24 * 7 + 1
    for n in range(30):
        view.apply(_breach(f"T{n}", at=f"2026-05-01T10:{n:02d}:00Z"))
    assert len(view._breaches["acme"]) <= 11


# -- the page ----------------------------------------------------------------------------------


class _Cells(HTMLParser):
    """data-id rows -> {data-field: text}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._row: str | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        row = found.get("data-id")
        if tag == "tr" and row:
            self._row = row
            self.rows[row] = {}
        self._field = found.get("data-field") if tag == "td" else None

    def handle_data(self, data: str) -> None:
        if self._row and self._field:
            self.rows[self._row][self._field] = self.rows[self._row].get(self._field, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None


def test_the_page_shows_the_numbers_and_escapes_everything() -> None:
    view = PortalView()
    view.apply(_window(service="<script>alert(1)</script>", met=9, total=10, credit=0.10))
    view.apply(_breach('T"><img src=x>'))
    html = render_report(view.report("acme", _tiers), "2026-05-01T12:00:00Z")
    assert "<script>alert" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    cells = _Cells()
    cells.feed(html)
    row = cells.rows["<script>alert(1)</script>:acme:P1:response:hour:2026-05-01T10:00:00Z"]
    assert row == {"priority": "P1", "metric": "response", "met": "9", "breached": "1",
                   "total": "10", "compliance_ratio": "90%", "credit": "10%"}
    assert cells.rows['T"><img src=x>:response:0:breach']["ticket_id"] == 'T"><img src=x>'
    assert "below 99%: 5% credit; below 95%: 10% credit" in html
    assert cells.rows["credit:<script>alert(1)</script>:hour:2026-05-01T10:00:00Z"
                      ]["credit"] == "10%"


# -- the pages on the worker's web server ------------------------------------------------------


@contextlib.asynccontextmanager
async def _client(tmp_path: Path) -> AsyncIterator[TestClient]:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    tokens = _tokens_file(tmp_path, f"customers:\n  acme: {ACME}\n  globex: {GLOBEX}\n")
    app = create_app(Settings(store="memory://", data_dir=tmp_path / "data", policies=policies,
                              portal_tokens=tokens))
    web_app = app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's
    async with TestClient(TestServer(web_app)) as test_client:
        yield test_client


async def test_no_token_is_401_and_another_customers_token_is_403(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        await _refusals(client)


async def _refusals(client: TestClient) -> None:
    for path in ("/portal/acme", "/portal/acme/data.json", "/portal"):
        response = await client.get(path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await client.get("/portal/acme", headers={"Authorization": "Bearer nope-" + ACME})
    assert response.status == 401
    response = await client.get("/portal/acme?token=" + GLOBEX)
    assert response.status == 403
    assert 'data-status="403"' in await response.text()
    response = await client.get("/portal/acme/data.json",
                                headers={"Authorization": f"Bearer {GLOBEX}"})
    assert response.status == 403
    assert await response.json() == {"error": "Your token does not open this customer's page."}


async def test_a_token_in_the_link_moves_into_a_cookie(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        await _cookie_flow(client)


async def _cookie_flow(client: TestClient) -> None:
    response = await client.get(f"/portal?token={ACME}", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/portal/acme")
    assert response.headers["Set-Cookie"].startswith(f"slamon_portal={ACME}; Path=/portal; "
                                                     "HttpOnly")
    response = await client.get("/portal/acme")  # the cookie
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "Service levels for acme" in await response.text()
    behind_tls = await client.get(f"/portal?token={ACME}", allow_redirects=False,
                                  headers={"X-Forwarded-Proto": "https"})
    assert behind_tls.headers["Set-Cookie"].endswith("; Secure")


async def test_the_api_answers_a_bearer_token(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        response = await client.get("/portal/acme/data.json",
                                    headers={"Authorization": f"Bearer {ACME}"})
        body = await response.json()
    assert response.status == 200
    assert (body["customer"], body["services"], body["breaches"]) == ("acme", [], [])


@pytest.mark.parametrize("with_tokens", [True, False])
async def test_the_feed_reads_the_topics_only_where_a_token_can_open_a_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_tokens: bool) -> None:
    followed: list[PortalView] = []

    async def follow(view: PortalView, settings: Settings) -> None:
        followed.append(view)

    monkeypatch.setattr("agents.portal.routes.follow", follow)
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    tokens = _tokens_file(tmp_path, f"customers:\n  acme: {ACME}\n") if with_tokens else None
    app = create_app(Settings(store="memory://", data_dir=tmp_path / "data", policies=policies,
                              portal_tokens=tokens))
    feeds = [task for task in app._app_tasks if task.__name__ == "portal_feed"]
    assert len(feeds) == 1
    await feeds[0]()
    assert len(followed) == (1 if with_tokens else 0)
