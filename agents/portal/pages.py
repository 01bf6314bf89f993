"""The portal's HTML: a customer's report (`agents.portal.view`) rendered on the server.

One self-contained page, no script, a small inline style (allowed by its hash in the
Content-Security-Policy that `page_headers()` gives). The pages are Jinja2 templates in
`templates/` with autoescape on, so every value from a record is escaped without a
hand-written `escape()` at each use; the filters below format numbers, durations and
times. The templates are indented for reading: a newline and the indentation after it are
dropped as a template loads (`_Compact`), so a page is one line of HTML as before, and text
that needs a space at a line break is kept on one line in the template.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.ext import Extension
from markupsafe import Markup

from agents.reports.render import duration, percent, when
from agents.reports.trends import daily_chart

__all__ = ["render_report", "render_message", "page_headers"]

REFRESH_SECONDS = 30
_KIND_TITLES = {"month": "Monthly", "day": "Daily", "hour": "Hourly"}

STYLE = """
:root{--ink:#1c2330;--muted:#5b6576;--line:#dde2ea;--bg:#f5f7fa;--ok:#17803d;--warn:#b45309;
--bad:#b91c1c;--accent:#1d4ed8}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#14213d;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#c7d0e0;font-size:13px}
main{padding:20px 32px 40px;max-width:1200px}
.cards{display:flex;flex-wrap:wrap;gap:14px;margin-bottom:18px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;
min-width:200px}
.card h3{margin:0 0 4px;font-size:14px;color:var(--muted);font-weight:600}
.card .big{font-size:26px;font-weight:700}
.card .sub{font-size:13px;color:var(--muted)}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;
margin-bottom:18px}
h2{margin:0 0 6px;font-size:18px}
h3{margin:14px 0 6px;font-size:15px}
.tiers{color:var(--muted);font-size:13px;margin:0 0 6px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{color:var(--muted);font-weight:600;background:#fafbfc}
th:first-child,td:first-child,.l{text-align:left}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad);font-weight:600}
.owed{color:var(--bad);font-weight:700}
.note{color:var(--muted);font-size:13px}
.banner{background:#fff7e6;border:1px solid #f3c969;border-radius:6px;padding:8px 12px;
margin-bottom:14px}
.links{margin:0 0 14px;font-size:14px}.links a{color:var(--accent);margin-right:18px}
.chart{max-width:100%;height:auto}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def page_headers(style: str | None = None) -> dict[str, str]:
    """Security headers of every portal page: no scripts, no framing, no caching, no referrer.

    `style`: the page's inline stylesheet when it is not the portal's own (the printable
    monthly report's), allowed by its hash."""
    digest = _STYLE_HASH if style is None else \
        base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    return {
        "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{digest}'; "
                                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def render_message(status: int, title: str, text: str) -> str:
    """A small page for 401, 403 and 404."""
    return _environment().get_template("message.html").render(
        status=status, title=title, text=text, refresh_seconds=None)


def render_report(report: Mapping[str, Any], generated_at: str) -> str:
    """A customer's page: `report` as `PortalView.report` builds it, stamped `generated_at`."""
    return _environment().get_template("report.html").render(
        report=report, generated_at=generated_at, refresh_seconds=REFRESH_SECONDS)


class _Compact(Extension):
    """Drops each newline of a template's source with the indentation after it."""

    _BREAK = re.compile(r"\n[ \t]*")

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return self._BREAK.sub("", source)


@cache
def _environment() -> Environment:
    """The templates of this package, autoescaped, with the page's filters; built once."""
    environment = Environment(loader=PackageLoader("agents.portal", "templates"),
                              autoescape=True, undefined=StrictUndefined,
                              extensions=[_Compact])
    environment.filters.update(percent=percent, duration=duration, when=when, period=_period)
    environment.filters.update(segment=_segment)
    environment.globals.update(style=Markup(STYLE), ratio_class=_ratio_class,
                               kind_titles=_KIND_TITLES, trend_chart=daily_chart)
    return environment


def _ratio_class(value: Any, tiers: Sequence[Mapping[str, float]]) -> str:
    """The colour of a compliance ratio: "bad" below every tier, "warn" below one, else "ok"."""
    ratio = float(value)
    if not tiers:
        return "ok" if ratio >= 1.0 else "warn"
    if ratio < min(t["below"] for t in tiers):
        return "bad"
    return "warn" if ratio < max(t["below"] for t in tiers) else "ok"


def _segment(value: Any) -> str:
    """A value as one URL path segment (a customer or period in a link)."""
    return quote(str(value), safe="")


def _period(kind: Any, start: Any) -> str:
    text = str(start)
    if kind == "month":
        return text[:7]
    if kind == "day":
        return text[:10]
    if kind == "hour":
        return f"{text[:10]} {text[11:16]} UTC"
    return text
