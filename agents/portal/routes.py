"""The customer portal: compliance, breaches and credits per customer, behind a token.

`add_portal(app, monitor)` adds to the worker's web server:

    GET /portal                      -> 303 to the page of the customer whose token it is
    GET /portal/{customer}           the page (HTML, rendered here, no script)
    GET /portal/{customer}/data.json the same report as JSON
    GET /portal/{customer}/data.csv  the page's tables as CSV (agents.portal.export)
    GET /portal/{customer}/report/{period}  the printable monthly report (YYYY-MM)

and a task that feeds the view from `<prefix>compliance` and `<prefix>breaches`
(`agents.portal.feed`), on a worker that has a tokens file (without one, every request is
refused and nothing is read). Every route asks `agents.portal.access` who the request is: a
token comes in `Authorization: Bearer TOKEN` (the API), a `?token=` query parameter (a
link: answered with a redirect that moves it into an HttpOnly cookie, so it leaves the
address bar) or that cookie. No token, or one nobody holds: 401. A valid token on another
customer's page: 403. Tokens (`portal_tokens`, see `agents.portal.tokens`) are never
logged; the web server keeps no access log.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import faust
import orjson

from agents.portal.access import COOKIE, Access, read_access, session_cookie
from agents.portal.export import monthly_report, tables_csv
from agents.portal.feed import follow
from agents.portal.pages import page_headers, render_message, render_report
from agents.portal.tokens import TokenSource
from agents.portal.view import PortalView
from agents.processor import wall_ms
from agents.reports.monthly import PeriodError
from agents.reports.render import STYLE as REPORT_STYLE
from sla.events import format_ts
from sla.model import CreditTier

__all__ = ["add_portal", "COOKIE", "Portal"]

logger = logging.getLogger(__name__)

_AUTHENTICATE = 'Bearer realm="slamon portal"'
_REFUSALS = {  # status -> (page title, text)
    401: ("Sign-in needed", "Open this page with your portal token."),
    403: ("Not your page", "Your token does not open this customer's page."),
}


class Portal:
    """The view, the tokens and the policies (for credit tiers) behind the pages."""

    def __init__(self, view: PortalView, tokens: TokenSource, monitor: Any) -> None:
        self.view = view
        self.tokens = tokens
        self.monitor = monitor

    def tiers(self, customer: str, service: str) -> tuple[CreditTier, ...]:
        policies = self.monitor.engine.policies
        return policies.credits(customer, service)

    def report(self, customer: str) -> dict[str, Any]:
        return self.view.report(customer, self.tiers)

    def access(self, request: Any) -> Access:
        """Who `request` is, by the tokens in force now."""
        return read_access(request, self.tokens.current())


def add_portal(app: faust.App, monitor: Any) -> Portal:
    """Add the portal's feed task and pages to `app`; `monitor` gives settings and policies."""
    settings = monitor.settings
    portal = Portal(PortalView(), TokenSource(settings.portal_tokens), monitor)

    @app.task
    async def portal_feed() -> None:
        portal.tokens.current()  # read (and log) the tokens as the worker starts
        if settings.portal_tokens is None:
            # Every request is refused (logged just now) until a restart with tokens: reading
            # every compliance and breach record would cost CPU for a view nobody can see.
            logger.info("portal: no tokens file, so the portal's topics are not read")
            return
        await follow(portal.view, settings)

    def html(web: Any, status: int, body: str, **headers: str) -> Any:
        return web.bytes(body.encode(), status=status, headers={
            "Content-Type": "text/html; charset=utf-8", **page_headers(), **headers})

    def refused(web: Any, status: int, as_json: bool) -> Any:
        title, text = _REFUSALS[status]
        extra = {"WWW-Authenticate": _AUTHENTICATE} if status == 401 else {}
        if as_json:
            return web.bytes(orjson.dumps({"error": text}), status=status, headers={
                "Content-Type": "application/json", "Cache-Control": "no-store", **extra})
        return html(web, status, render_message(status, title, text), **extra)

    def to_page(web: Any, request: Any, access: Access) -> Any:
        """303 to the holder's page; a token from the query moves into the cookie (so it
        leaves the address bar and the history)."""
        headers = {"Location": f"/portal/{quote(access.holder or '', safe='')}"}
        if access.source == "query":
            headers["Set-Cookie"] = session_cookie(request, access.token or "")
        return web.bytes(b"", status=303, headers={**page_headers(), **headers})

    @app.page("/portal")
    async def portal_index(web: Any, request: Any) -> Any:
        access = portal.access(request)
        if (status := access.refusal()) is not None:
            return refused(web, status, as_json=False)
        return to_page(web, request, access)

    @app.page("/portal/{customer}")
    async def portal_page(web: Any, request: Any, customer: str) -> Any:
        access = portal.access(request)
        if (status := access.refusal(customer)) is not None:
            return refused(web, status, as_json=False)
        if access.source == "query":
            return to_page(web, request, access)
        body = render_report(portal.report(customer), format_ts(wall_ms()))
        return html(web, 200, body)

    @app.page("/portal/{customer}/data.json")
    async def portal_data(web: Any, request: Any, customer: str) -> Any:
        access = portal.access(request)
        if (status := access.refusal(customer)) is not None:
            return refused(web, status, as_json=True)
        body = {"generated_at": format_ts(wall_ms()), **portal.report(customer)}
        return web.bytes(orjson.dumps(body), headers={
            "Content-Type": "application/json", "Cache-Control": "no-store"})

    @app.page("/portal/{customer}/data.csv")
    async def portal_csv(web: Any, request: Any, customer: str) -> Any:
        access = portal.access(request)
        if (status := access.refusal(customer)) is not None:
            return refused(web, status, as_json=False)
        name = quote(f"slamon-{customer}.csv", safe="")
        return web.bytes(tables_csv(portal.report(customer)).encode(), headers={
            "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "X-Content-Type-Options": "nosniff"})

    @app.page("/portal/{customer}/report/{period}")
    async def portal_monthly(web: Any, request: Any, customer: str, period: str) -> Any:
        access = portal.access(request)
        if (status := access.refusal(customer)) is not None:
            return refused(web, status, as_json=False)
        try:
            body = monthly_report(portal.view, customer, period, format_ts(wall_ms()))
        except PeriodError:
            body = None
        if body is None:
            return html(web, 404, render_message(
                404, "No report", f"No figures for {period} (a month is written YYYY-MM)."))
        return web.bytes(body.encode(), status=200, headers={
            "Content-Type": "text/html; charset=utf-8", **page_headers(REPORT_STYLE)})

    return portal
