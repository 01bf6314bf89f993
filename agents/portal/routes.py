"""The customer portal: compliance, breaches and credits per customer, behind a token.

`add_portal(app, monitor)` adds to the worker's web server:

    GET /portal                      -> 303 to the page of the customer whose token it is
    GET /portal/{customer}           the page (HTML, rendered here, no script)
    GET /portal/{customer}/data.json the same report as JSON

and a task that feeds the view from `<prefix>compliance` and `<prefix>breaches`
(`agents.portal.feed`). A token comes in `Authorization: Bearer TOKEN` (the API), a
`?token=` query parameter (a link: answered with a redirect that moves it into an
HttpOnly cookie, so it leaves the address bar) or that cookie. No token, or one nobody
holds: 401. A valid token on another customer's page: 403. Tokens (`portal_tokens`,
see `agents.portal.tokens`) are never logged; the web server keeps no access log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import faust
import orjson

from agents.portal.feed import follow
from agents.portal.pages import page_headers, render_message, render_report
from agents.portal.tokens import PortalTokens, TokenSource
from agents.portal.view import PortalView
from agents.processor import wall_ms
from sla.events import format_ts
from sla.model import CreditTier
from sla.policy import Policies

__all__ = ["add_portal", "COOKIE", "Portal"]

COOKIE = "slamon_portal"
_AUTHENTICATE = 'Bearer realm="slamon portal"'


class Portal:
    """The view, the tokens and the policies (for credit tiers) behind the pages."""

    def __init__(self, view: PortalView, tokens: TokenSource, monitor: Any) -> None:
        self.view = view
        self.tokens = tokens
        self.monitor = monitor

    def tiers(self, customer: str, service: str) -> tuple[CreditTier, ...]:
        policies = self.monitor.engine.policies
        return policies.credits(customer, service) if isinstance(policies, Policies) else ()

    def report(self, customer: str) -> dict[str, Any]:
        return self.view.report(customer, self.tiers)

    def holder(self, token: str | None) -> str | None:
        tokens: PortalTokens = self.tokens.current()
        return tokens.customer_for(token)


def _presented(request: Any) -> tuple[str | None, str]:
    """The token a request presents and where: "header", "query", "cookie" or "none"."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), "header"
    if request.query.get("token"):
        return request.query["token"], "query"
    if request.cookies.get(COOKIE):
        return request.cookies[COOKIE], "cookie"
    return None, "none"


def _cookie(request: Any, token: str) -> str:
    """The session cookie; `Secure` when the request came over HTTPS (or a proxy says so)."""
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    flags = "; Path=/portal; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return f"{COOKIE}={token}{flags}"


def add_portal(app: faust.App, monitor: Any) -> Portal:
    """Add the portal's feed task and pages to `app`; `monitor` gives settings and policies."""
    settings = monitor.settings
    portal = Portal(PortalView(), TokenSource(settings.portal_tokens), monitor)

    @app.task
    async def portal_feed() -> None:
        portal.tokens.current()  # read (and log) the tokens as the worker starts
        await follow(portal.view, settings)

    def html(web: Any, status: int, body: str, **headers: str) -> Any:
        return web.bytes(body.encode(), status=status, headers={
            "Content-Type": "text/html; charset=utf-8", **page_headers(), **headers})

    def refused(web: Any, status: int, as_json: bool) -> Any:
        text = ("Open this page with your portal token." if status == 401
                else "Your token does not open this customer's page.")
        extra = {"WWW-Authenticate": _AUTHENTICATE} if status == 401 else {}
        if as_json:
            return web.bytes(orjson.dumps({"error": text}), status=status, headers={
                "Content-Type": "application/json", "Cache-Control": "no-store", **extra})
        title = "Sign-in needed" if status == 401 else "Not your page"
        return html(web, status, render_message(status, title, text), **extra)

    @app.page("/portal")
    async def portal_index(web: Any, request: Any) -> Any:
        token, source = _presented(request)
        customer = portal.holder(token)
        if token is None or customer is None:
            return refused(web, 401, as_json=False)
        headers = {"Location": f"/portal/{quote(customer, safe='')}"}
        if source == "query":
            headers["Set-Cookie"] = _cookie(request, token)
        return web.bytes(b"", status=303, headers={**page_headers(), **headers})

    @app.page("/portal/{customer}")
    async def portal_page(web: Any, request: Any, customer: str) -> Any:
        token, source = _presented(request)
        holder = portal.holder(token)
        if holder is None:
            return refused(web, 401, as_json=False)
        if holder != customer:
            return refused(web, 403, as_json=False)
        if source == "query":  # move the token out of the address bar and history
            return web.bytes(b"", status=303, headers={
                **page_headers(), "Location": f"/portal/{quote(customer, safe='')}",
                "Set-Cookie": _cookie(request, token or "")})
        body = render_report(portal.report(customer), format_ts(wall_ms()))
        return html(web, 200, body)

    @app.page("/portal/{customer}/data.json")
    async def portal_data(web: Any, request: Any, customer: str) -> Any:
        token, _ = _presented(request)
        holder = portal.holder(token)
        if holder is None:
            return refused(web, 401, as_json=True)
        if holder != customer:
            return refused(web, 403, as_json=True)
        body = {"generated_at": format_ts(wall_ms()), **portal.report(customer)}
        return web.bytes(orjson.dumps(body), headers={
            "Content-Type": "application/json", "Cache-Control": "no-store"})

    return portal
