"""The portal's HTML: a customer's report (`agents.portal.view`) rendered on the server.

One self-contained page, no script, a small inline style (allowed by its hash in the
Content-Security-Policy that `page_headers()` gives). Every value from a record is
escaped. Cells carry `data-field` and rows `data-id`, for tests and scrapers.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

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
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def page_headers() -> dict[str, str]:
    """Security headers of every portal page: no scripts, no framing, no caching, no referrer."""
    return {
        "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
                                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="referrer" content="no-referrer">{meta}<title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def render_message(status: int, title: str, text: str) -> str:
    """A small page for 401, 403 and 404."""
    return _page(f"{status} {title}", f"<header><h1>{escape(title)}</h1></header><main>"
                 f'<section><p data-status="{status}">{escape(text)}</p></section></main>')


def render_report(report: Mapping[str, Any], generated_at: str) -> str:
    customer = str(report["customer"])
    services = report["services"]
    parts = [f"<header><h1>Service levels for {escape(customer)}</h1>"
             f"<p>Generated {escape(_when(generated_at))} · figures of closed windows · "
             f"refreshes every {REFRESH_SECONDS} s</p></header><main>"]
    if not report["loaded"]:
        parts.append('<div class="banner">Still reading the history: figures may be '
                     "incomplete for a moment.</div>")
    if not services:
        parts.append('<section><p class="note">No compliance window has closed and no '
                     "breach has been recorded for you yet.</p></section>")
    parts.append('<div class="cards">' + "".join(_card(s) for s in services) + "</div>")
    reported = [s for s in services if s["windows"]]
    if reported:
        parts.append(_credits_section(reported))
        parts += [_service_section(s) for s in reported]
    elif services:
        parts.append('<section id="credits"><p class="note">No compliance window has closed '
                     "yet: an hour's figures appear once the hour is over (and the events that "
                     "may still arrive late for it are in).</p></section>")
    parts.append(_breaches_section(report["breaches"], int(report["breach_count"])))
    parts.append('<p class="note">A window appears once it has closed. The credit of a period '
                 "is the largest credit your tiers give any of its priorities and metrics, as a "
                 "fraction of the period's fee.</p></main>")
    return _page(f"{customer} · service levels", "".join(parts), refresh=True)


def _card(service: Mapping[str, Any]) -> str:
    owed = service["latest"]
    name = escape(str(service["service"]))
    if owed is None:
        return f'<div class="card"><h3>{name}</h3><div class="sub">no window closed yet</div></div>'
    ratio = float(owed["compliance_ratio"])
    credit = float(owed["credit"])
    klass = _ratio_class(ratio, service["credit_tiers"])
    owed_text = (f'<span class="owed">credit {_percent(credit)}</span>' if credit
                 else "no credit")
    return (f'<div class="card" data-service="{name}"><h3>{name}</h3>'
            f'<div class="big {klass}" data-field="compliance_ratio">{_percent(ratio)}</div>'
            f'<div class="sub">{owed["met"]} of {owed["total"]} met · {escape(owed["window"])} '
            f"{escape(_period(owed['window'], owed['window_start']))}</div>"
            f'<div class="sub" data-field="credit">{owed_text}</div></div>')


def _credits_section(services: Iterable[Mapping[str, Any]]) -> str:
    rows = [(str(s["service"]), p) for s in services for p in s["credits_owed"]]
    if not rows:
        return ('<section id="credits"><h2>Credits owed</h2><p class="note">None in the '
                "periods shown.</p></section>")
    head = ("<tr><th class=l>Service</th><th>Period</th><th>Met</th><th>Total</th>"
            "<th>Compliance</th><th>Credit owed</th></tr>")
    body = "".join(
        f'<tr data-id="credit:{escape(service)}:{escape(str(p["window"]))}:'
        f'{escape(str(p["window_start"]))}"><td class=l data-field="service">{escape(service)}'
        f"</td><td>{escape(_period(p['window'], p['window_start']))}</td>"
        f'<td data-field="met">{int(p["met"])}</td><td data-field="total">{int(p["total"])}</td>'
        f'<td data-field="compliance_ratio">{_percent(p["compliance_ratio"])}</td>'
        f'<td data-field="credit" class=owed>{_percent(p["credit"])}</td></tr>'
        for service, p in rows)
    return (f'<section id="credits"><h2>Credits owed</h2><table>{head}{body}</table>'
            '<p class="note">Per period of the longest window reported so far (months once one '
            "has closed).</p></section>")


def _service_section(service: Mapping[str, Any]) -> str:
    name = str(service["service"])
    tiers = service["credit_tiers"]
    tier_text = ("; ".join(f"below {_percent(t['below'])}: {_percent(t['credit'])} credit"
                           for t in tiers) if tiers else "no service credits agreed")
    parts = [f'<section data-service="{escape(name)}"><h2>{escape(name)}</h2>'
             f'<p class="tiers">Credit tiers: {escape(tier_text)}</p>']
    for kind, rows in service["windows"].items():
        parts.append(f"<h3>{_KIND_TITLES.get(kind, escape(kind))}</h3>"
                     + _windows_table(rows, tiers))
    return "".join(parts) + "</section>"


def _windows_table(rows: Iterable[Mapping[str, Any]], tiers: list) -> str:
    head = ("<tr><th>Period</th><th class=l>Priority</th><th class=l>Metric</th><th>Met</th>"
            "<th>Breached</th><th>Total</th><th>Compliance</th><th>p50</th><th>p90</th>"
            "<th>p99</th><th>Credit</th></tr>")
    body = []
    for r in rows:
        ratio = float(r["compliance_ratio"])
        credit = float(r["credit"] or 0)
        body.append(
            f'<tr data-id="{escape(str(r["id"]))}">'
            f"<td>{escape(_period(r['window'], r['window_start']))}</td>"
            f'<td class=l data-field="priority">{escape(str(r["priority"]))}</td>'
            f'<td class=l data-field="metric">{escape(str(r["metric"]))}</td>'
            f'<td data-field="met">{int(r["met"])}</td>'
            f'<td data-field="breached">{int(r["breached"])}</td>'
            f'<td data-field="total">{int(r["total"])}</td>'
            f'<td data-field="compliance_ratio" class="{_ratio_class(ratio, tiers)}">'
            f"{_percent(ratio)}</td>"
            + "".join(f"<td>{_duration(r[f])}</td>"
                      for f in ("p50_seconds", "p90_seconds", "p99_seconds"))
            + f'<td data-field="credit"{" class=owed" if credit else ""}>'
            f"{_percent(credit) if credit else '—'}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _breaches_section(rows: list[Mapping[str, Any]], count: int) -> str:
    shown = f" (latest {len(rows)} of {count})" if count > len(rows) else ""
    if not rows:
        return '<section id="breaches"><h2>Breaches</h2><p class="note">None.</p></section>'
    head = ("<tr><th class=l>Ticket</th><th class=l>Service</th><th class=l>Priority</th>"
            "<th class=l>Metric</th><th>Target</th><th>Started</th><th>Deadline</th>"
            "<th>Detected</th></tr>")
    body = "".join(
        f'<tr data-id="{escape(str(r["id"]))}">'
        f'<td class=l data-field="ticket_id">{escape(str(r["ticket_id"]))}</td>'
        f'<td class=l data-field="service">{escape(str(r["service"]))}</td>'
        f'<td class=l>{escape(str(r["priority"]))}</td>'
        f'<td class=l data-field="metric">{escape(str(r["metric"]))}</td>'
        f"<td>{_duration(r['target_seconds'])}</td><td>{escape(_when(r['started_at']))}</td>"
        f'<td class="bad">{escape(_when(r["deadline"]))}</td>'
        f"<td>{escape(_when(r['detected_at']))}</td></tr>" for r in rows)
    return (f'<section id="breaches"><h2>Breaches{escape(shown)}</h2>'
            f"<table>{head}{body}</table></section>")


def _ratio_class(ratio: float, tiers: list) -> str:
    if not tiers:
        return "ok" if ratio >= 1.0 else "warn"
    if ratio < min(t["below"] for t in tiers):
        return "bad"
    return "warn" if ratio < max(t["below"] for t in tiers) else "ok"


def _percent(value: Any, digits: int = 2) -> str:
    number = float(value) * 100
    text = f"{number:.{digits}f}"
    if digits and "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def _duration(seconds: Any) -> str:
    """Seconds as the largest two units that matter: 4.2s, 45s, 12m 30s, 30m, 2h 05m, 3d 4h."""
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


def _when(ts: Any) -> str:
    """RFC 3339 UTC -> "2026-05-01 14:03:07 UTC" (milliseconds dropped)."""
    if not ts:
        return "—"
    text = str(ts)
    return f"{text[:10]} {text[11:19]} UTC" if len(text) >= 19 and text.endswith("Z") else text


def _period(kind: Any, start: Any) -> str:
    text = str(start)
    if kind == "month":
        return text[:7]
    if kind == "day":
        return text[:10]
    if kind == "hour":
        return f"{text[:10]} {text[11:16]} UTC"
    return text
