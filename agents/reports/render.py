"""The HTML of reports: Jinja2 templates (autoescape on) with number and time filters.

Pages are self-contained (no script, no external file): the stylesheet is inline and has
a print part (`@media print`: no background colours, tables that do not split a row, a
page header on each printed page), so that a report prints as the customer reads it on
screen. Every value from a record is escaped by the template engine, never by hand.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

__all__ = ["render_page", "percent", "duration", "when", "STYLE"]

STYLE = """
:root{--ink:#1c2330;--muted:#5b6576;--line:#dde2ea;--bg:#f5f7fa;--ok:#17803d;--warn:#b45309;
--bad:#b91c1c}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#14213d;color:#fff;padding:16px 28px}
header h1{margin:0;font-size:21px;font-weight:600}
header p{margin:4px 0 0;color:#c7d0e0;font-size:13px}
main{padding:18px 28px 36px;max-width:1200px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;
margin-bottom:16px}
h2{margin:0 0 8px;font-size:17px}
h3{margin:12px 0 6px;font-size:15px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
th{color:var(--muted);font-weight:600;background:#fafbfc}
th.l,td.l{text-align:left}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad);font-weight:600}
.muted,.note{color:var(--muted)}.note{font-size:13px}
.verdict{font-size:16px;font-weight:700;padding:8px 12px;border-radius:6px;margin-bottom:14px}
.verdict.ok{background:#e8f5ec}.verdict.bad{background:#fdecec}
.tickets{font-family:ui-monospace,monospace;font-size:12px;white-space:normal}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px;
min-width:180px}
.card h3{margin:0 0 4px;font-size:13px;color:var(--muted)}
.card .big{font-size:24px;font-weight:700}
@media print{
body{background:#fff;font-size:11px}
header{background:none;color:#000;border-bottom:2px solid #000;padding:0 0 6px}
header p{color:#333}
main{padding:8px 0;max-width:none}
section,.card{border:none;border-radius:0;padding:0;margin-bottom:12px;break-inside:auto}
tr{break-inside:avoid}
thead{display:table-header-group}
th{background:none}
.verdict{border:1px solid #000}
a{color:#000;text-decoration:none}
@page{size:A4;margin:14mm}
}
"""


def render_page(template: str, **context: Any) -> str:
    """Render `template` of agents/reports/templates with `context`."""
    return _environment().get_template(template).render(**context)


@cache
def _environment() -> Environment:
    environment = Environment(loader=PackageLoader("agents.reports", "templates"),
                              autoescape=True, undefined=StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(percent=percent, duration=duration, when=when)
    environment.globals.update(style=Markup(STYLE), ratio_class=ratio_class)
    return environment


def ratio_class(value: float, objective: float | None) -> str:
    """The colour of a ratio: "bad" below the objective, "ok" at or above it (or without)."""
    return "bad" if objective is not None and value < objective else "ok"


def percent(value: Any, digits: int = 2) -> str:
    """0.98765 -> "98.77%" (trailing zeros dropped); "—" for None."""
    if value is None:
        return "—"
    text = f"{float(value) * 100:.{digits}f}"
    if digits and "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def duration(seconds: Any) -> str:
    """Seconds as the largest two units that matter: 4.2s, 45s, 12m 30s, 2h 05m, 3d 4h."""
    if seconds is None:
        return "—"
    total = float(seconds)
    if total < 60:
        return f"{total:.3g}s" if total < 10 else f"{total:.0f}s"
    minutes, secs = divmod(round(total), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    return f"{minutes}m {secs:02d}s" if secs else f"{minutes}m"


def when(ts: Any) -> str:
    """RFC 3339 UTC -> "2026-11-05 14:03:07 UTC" (milliseconds dropped); "—" for none."""
    if not ts:
        return "—"
    text = str(ts)
    return f"{text[:10]} {text[11:19]} UTC" if len(text) >= 19 and text.endswith("Z") else text

