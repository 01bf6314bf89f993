"""The portal's trends, CSV download and printable report link, without a broker.

The view is fed a month of daily windows (and a monthly one) for acme; the routes run on
the worker's real web server (aiohttp test client), with that view in place of the one the
feed would fill.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.app import create_app
from agents.portal.pages import render_report
from agents.portal.view import PortalView
from agents.settings import Settings
from sla.model import CreditTier

ACME = "acme-token-0123456789"
GLOBEX = "globex-token-0123456789"
POLICIES = """\
version: 1
corporate:
  targets: {P1: {response: 15m}}
customers:
  acme:
    credits: [{below: 0.99, credit: 0.05}, {below: 0.95, credit: 0.10}]
"""
# November days 2..6 for acme's payments: met of 10 per day; day 4 is bad.
DAYS = {"2026-11-02": 10, "2026-11-03": 9, "2026-11-04": 5, "2026-11-05": 10,
        "2026-11-06": 10}


def _window(day: str, met: int, total: int = 10, window: str = "day",
            customer: str = "acme", priority: str = "P1", **extra: object) -> dict:
    return {"id": f"payments:{customer}:{priority}:response:{window}:{day}T00:00:00Z",
            "kind": "compliance", "service": "payments", "customer": customer,
            "priority": priority, "metric": "response", "window": window,
            "window_start": f"{day}T00:00:00Z", "window_end": f"{day}T23:59:59Z",
            "met": met, "breached": total - met, "total": total,
            "compliance_ratio": met / total, "p50_seconds": 300.0, "p90_seconds": 800.0,
            "p99_seconds": 900.0, "credit": 0.0, **extra}


def _view() -> PortalView:
    view = PortalView()
    for day, met in DAYS.items():
        view.apply(_window(day, met))
    view.apply(_window("2026-10-30", 1))  # October: not in November's trend
    view.apply(_window("2026-11-01", 44, total=50, window="month", credit=0.10))
    view.apply(_window("2026-11-02", 1, customer="globex"))
    view.apply({"id": "T9:response:0:breach", "kind": "breach", "ticket_id": "T9",
                "metric": "response", "cycle": 0, "service": "payments", "customer": "acme",
                "priority": "P1", "policy_version": 1, "target_seconds": 900.0,
                "started_at": "2026-11-04T10:00:00Z", "elapsed_seconds": 900.0,
                "deadline": "2026-11-04T10:15:00Z", "breached_at": "2026-11-04T10:15:00Z",
                "detected_at": "2026-11-04T10:15:00Z"})
    view.loaded = True
    return view


def _tiers(customer: str, service: str) -> tuple[CreditTier, ...]:
    return (CreditTier(0.99, 0.05), CreditTier(0.95, 0.10)) if customer == "acme" else ()


def test_the_view_gives_the_newest_months_daily_trend_per_service() -> None:
    report = _view().report("acme", _tiers)
    assert report["trend_month"] == "2026-11" and report["months"] == ["2026-11", "2026-10"]
    trend = report["services"][0]["trend"]
    assert [(p["day"], p["met"], p["total"]) for p in trend] == [
        (day, met, 10) for day, met in DAYS.items()]
    assert trend[2]["compliance_ratio"] == 0.5


def test_the_page_draws_the_trend_as_an_accessible_svg_with_links() -> None:
    html = render_report(_view().report("acme", _tiers), "2026-11-07T00:00:00Z")
    chart = html[html.index("<svg"):html.index("</svg>")]
    assert 'role="img"' in chart and "aria-labelledby=" in chart
    assert "payments: daily compliance and CSAT, 2026-11</title>" in chart
    assert "Compliance by day: 11-02 100%, 11-03 90%, 11-04 50%, 11-05 100%, 11-06 100%." in chart
    values = re.findall(r'data-day="([\d-]+)" data-series="compliance_ratio" '
                        r'data-value="([\d.]+)"', chart)
    assert values == [(day, f"{met / 10:.4f}") for day, met in DAYS.items()]
    assert "<title>2026-11-04: Compliance 50% (5 of 10 met)</title>" in chart
    assert 'href="/portal/acme/data.csv"' in html
    assert 'href="/portal/acme/report/2026-11"' in html and "<script" not in html


def test_a_customer_name_is_escaped_in_links_and_chart() -> None:
    view = PortalView()
    view.apply(_window("2026-11-02", 9, customer='a"c/me'))
    html = render_report(view.report('a"c/me', _tiers), "2026-11-07T00:00:00Z")
    assert 'href="/portal/a%22c%2Fme/data.csv"' in html and 'a"c/me' not in html


@contextlib.asynccontextmanager
async def _client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TestClient]:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    tokens = tmp_path / "portal.yaml"
    tokens.write_text(f"customers:\n  acme: {ACME}\n  globex: {GLOBEX}\n")
    view = _view()
    monkeypatch.setattr("agents.portal.routes.PortalView", lambda: view)
    app = create_app(Settings(store="memory://", data_dir=tmp_path / "data", policies=policies,
                              portal_tokens=tokens))
    web_app = app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's
    async with TestClient(TestServer(web_app)) as test_client:
        yield test_client


async def test_csv_download_of_the_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with _client(tmp_path, monkeypatch) as client:
        assert (await client.get("/portal/acme/data.csv")).status == 401
        other = await client.get("/portal/acme/data.csv",
                                 headers={"Authorization": f"Bearer {GLOBEX}"})
        assert other.status == 403
        response = await client.get("/portal/acme/data.csv",
                                    headers={"Authorization": f"Bearer {ACME}"})
        text = await response.text()
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(text)))
    days = [(r["day"], r["met"], r["total"]) for r in lines if r["section"] == "day"]
    assert days == [(day, str(met), "10") for day, met in DAYS.items()]
    month = [r for r in lines if r["section"] == "window" and r["window"] == "month"]
    assert (month[0]["met"], month[0]["total"], month[0]["credit"]) == ("44", "50", "0.1")
    assert [r["ticket_id"] for r in lines if r["section"] == "breach"] == ["T9"]
    assert {r["customer"] for r in lines} == {"acme"}


async def test_the_report_link_opens_the_printable_monthly_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = {"Authorization": f"Bearer {ACME}"}
    async with _client(tmp_path, monkeypatch) as client:
        assert (await client.get("/portal/acme/report/2026-11")).status == 401
        assert (await client.get("/portal/acme/report/2026-11",
                                 headers={"Authorization": f"Bearer {GLOBEX}"})).status == 403
        response = await client.get("/portal/acme/report/2026-11", headers=auth)
        page = await response.text()
        missing = await client.get("/portal/acme/report/2026-09", headers=auth)
        bad = await client.get("/portal/acme/report/november", headers=auth)
    assert response.status == 200 and "Service level report: acme, 2026-11" in page
    assert "@media print" in page and "T9" in page
    assert re.search(r'data-id="row:payments:P1:response">.*?data-field="met">44<', page, re.S)
    # The page's inline style is allowed by its hash, and nothing else is.
    style = page[page.index("<style>") + 7:page.index("</style>")]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert (missing.status, bad.status) == (404, 404)


def test_csat_beside_compliance_on_the_page_and_in_the_trend() -> None:
    view = PortalView()
    csat = {"surveys": 4, "positive": 3, "csat_ratio": 0.75, "score_mean": 0.7,
            "surveys_met": 3, "positive_met": 3, "csat_met_ratio": 1.0, "surveys_breached": 1,
            "positive_breached": 0, "csat_breached_ratio": 0.0}
    view.apply(_window("2026-11-02", 9, **csat))
    view.apply(_window("2026-11-03", 10))  # no surveys that day
    view.apply(_window("2026-11-01", 19, total=20, window="month", credit=0.05, **csat))
    report = view.report("acme", _tiers)
    html = render_report(report, "2026-11-07T00:00:00Z")
    assert "CSAT 75% (3 of 4 surveys positive)" in html
    month = re.search(r'data-id="payments:acme:P1:response:month:2026-11-01T00:00:00Z">(.*?)</tr>',
                      html, re.S)
    assert month is not None
    assert 'data-field="csat_met_ratio">100%<' in month.group(1)
    assert 'data-field="csat_breached_ratio">0%<' in month.group(1)
    chart = html[html.index("<svg"):html.index("</svg>")]
    assert "CSAT by day: 11-02 75%." in chart and 'data-series="csat_ratio"' in chart
    days = report["services"][0]["trend"]
    assert [(d["day"], d["csat_ratio"]) for d in days] == [("2026-11-02", 0.75),
                                                          ("2026-11-03", None)]
