"""The portal's trend charts and printable report in headless Chromium (screenshot:
portal-trends.png, the one in docs/), with assertions on the numbers the browser shows.

The worker's real web application (its portal routes) runs on a local port in a thread of
its own; its view is fed a month of windows the test writes, so the figures are known
here. Chromium follows the token link (redirect into the cookie) like a customer.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from agents.app import create_app
from agents.portal.view import PortalView
from agents.settings import Settings
from tests.integration.browser import Browser, save_screenshot

pytestmark = pytest.mark.integration

ACME = "acme-trends-token-0123456789"
POLICIES = """\
version: 1
corporate:
  targets: {P1: {response: 15m}, P2: {response: 1h}}
customers:
  acme:
    credits: [{below: 0.99, credit: 0.05}, {below: 0.95, credit: 0.10}]
"""
# Weekdays of November 2026 up to the 20th: met of 20 per day for payments P1.
MET = {2: 20, 3: 19, 4: 20, 5: 17, 6: 20, 9: 20, 10: 20, 11: 12, 12: 20, 13: 19,
       16: 20, 17: 20, 18: 20, 19: 18, 20: 20}


def _window(day: str, met: int, total: int, window: str, service: str = "payments",
            **extra: object) -> dict:
    return {"id": f"{service}:acme:P1:response:{window}:{day}T00:00:00Z", "kind": "compliance",
            "service": service, "customer": "acme", "priority": "P1", "metric": "response",
            "window": window, "window_start": f"{day}T00:00:00Z",
            "window_end": f"{day}T23:59:59Z", "met": met, "breached": total - met,
            "total": total, "compliance_ratio": met / total, "p50_seconds": 240.0,
            "p90_seconds": 700.0, "p99_seconds": 1100.0, **extra}


def _csat(met: int) -> dict:
    """Ten surveys a day; fewer positive on a bad day (met of 20, halved)."""
    positive = met // 2
    return {"surveys": 10, "positive": positive, "csat_ratio": positive / 10,
            "score_mean": positive / 10, "surveys_met": 10, "positive_met": positive,
            "csat_met_ratio": positive / 10, "surveys_breached": 0, "positive_breached": 0,
            "csat_breached_ratio": None}


def _view() -> PortalView:
    view = PortalView()
    for day, met in MET.items():
        view.apply(_window(f"2026-11-{day:02d}", met, 20, "day", credit=0.0, **_csat(met)))
        view.apply(_window(f"2026-11-{day:02d}", 10, 10, "day", service="email", credit=0.0))
    view.apply(_window("2026-11-01", sum(MET.values()), 20 * len(MET), "month", credit=0.05))
    view.loaded = True
    return view


@pytest.fixture
def portal_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_port) -> Iterator[str]:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    tokens = tmp_path / "portal.yaml"
    tokens.write_text(f"customers:\n  acme: {ACME}\n")
    view = _view()
    monkeypatch.setattr("agents.portal.routes.PortalView", lambda: view)
    app = create_app(Settings(store="memory://", data_dir=tmp_path / "data", policies=policies,
                              portal_tokens=tokens))
    web_app = app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(web_app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(30)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def test_chromium_shows_the_daily_trend_and_the_printable_report(portal_url: str,
                                                                  tmp_path: Path) -> None:
    with Browser(width=1200, height=900) as browser:
        seen = browser.visit(f"{portal_url}/portal?token={ACME}", screenshot=True)
        report = browser.visit(f"{portal_url}/portal/acme/report/2026-11")  # the cookie
    assert seen.status == 200 and seen.statuses[0] == 303
    save_screenshot(seen.screenshot, tmp_path, "portal-trends.png")
    html = seen.html
    section = html[html.index('<section data-service="payments"'):]
    chart = section[section.index("<svg"):section.index("</svg>")]
    points = dict(re.findall(r'data-day="2026-11-(\d\d)" data-series="compliance_ratio" '
                             r'data-value="([\d.]+)"', chart))
    assert {int(day): float(value) for day, value in points.items()} == {
        day: met / 20 for day, met in MET.items()}
    assert "<title>2026-11-11: Compliance 60% (12 of 20 met)</title>" in chart
    assert "Compliance by day: 11-02 100%, 11-03 95%, 11-04 100%, 11-05 85%" in chart
    assert 'role="img"' in chart
    csat = dict(re.findall(r'data-day="2026-11-(\d\d)" data-series="csat_ratio" '
                           r'data-value="([\d.]+)"', chart))
    assert {int(day): float(value) for day, value in csat.items()} == {
        day: (met // 2) / 10 for day, met in MET.items()}
    assert "<title>2026-11-11: CSAT 60% (6 of 10 surveys positive)</title>" in chart
    assert 'href="/portal/acme/data.csv"' in html and 'href="/portal/acme/report/2026-11"' in html
    assert report.status == 200
    assert re.search(r'data-id="row:payments:P1:response">.*?data-field="met">285<.*?'
                     r'data-field="total">300<.*?data-field="compliance_ratio">95%<',
                     report.html, re.S)
