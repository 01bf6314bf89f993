"""Daily compliance and CSAT over a month as a server-rendered SVG line chart.

No script and no external file: the chart is SVG markup in the page, readable without
JavaScript, with an accessible name (`role="img"`, `<title>`, `<desc>` naming every
plotted value) and a `<title>` per point, so a screen reader and a hover both tell the
figures. Compliance and CSAT share one axis, 0-100%; a day without closed windows has no
point (the line breaks there). Used by the monthly report and the portal's trends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup, escape

__all__ = ["daily_chart", "month_days"]

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 34
SERIES = (("compliance_ratio", "Compliance", "#1d4ed8", ""),
          ("csat_ratio", "CSAT", "#b45309", "6 4"))


def month_days(period: str) -> list[str]:
    """Every date of month "YYYY-MM", as YYYY-MM-DD."""
    year, month = int(period[:4]), int(period[5:7])
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return [(first + timedelta(days=n)).isoformat() for n in range((following - first).days)]


def daily_chart(points: Sequence[dict[str, Any]], period: str, title: str) -> Markup:
    """An SVG chart of `points` (day, compliance_ratio, csat_ratio, met, total, surveys) over
    every day of `period` (YYYY-MM); CSAT is drawn only when some day has surveys."""
    days = month_days(period)
    by_day = {str(p["day"]): p for p in points}
    step = (WIDTH - LEFT - RIGHT) / max(1, len(days) - 1)
    plot_h = HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return round(LEFT + index * step, 1)

    def y(value: float) -> float:
        return round(TOP + (1 - value) * plot_h, 1)

    shown = [s for s in SERIES if any(by_day.get(d, {}).get(s[0]) is not None for d in days)]
    parts = [_grid(y), _day_labels(days, x)]
    for field, label, colour, dash in shown:
        parts.append(_line(days, by_day, field, colour, dash, x, y))
        parts.append(_points(days, by_day, field, label, colour, x, y))
    parts.append(_legend(shown))
    description = _description(days, by_day, shown)
    svg = (f'<svg class="chart" role="img" aria-labelledby="{{id}}-t {{id}}-d" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
           f'xmlns="http://www.w3.org/2000/svg">'
           f'<title id="{{id}}-t">{escape(title)}</title><desc id="{{id}}-d">'
           f'{escape(description)}</desc>{"".join(parts)}</svg>')
    ident = "chart-" + hashlib.sha1(f"{title}|{period}".encode()).hexdigest()[:10]
    return Markup(svg.replace("{id}", ident))


def _grid(y: Any) -> str:
    lines = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        lines.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick)}" y2="{y(tick)}" '
                     f'stroke="#dde2ea" stroke-width="1"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4}" text-anchor="end" font-size="11" '
                     f'fill="#5b6576">{round(tick * 100)}%</text>')
    return "".join(lines)


def _day_labels(days: list[str], x: Any) -> str:
    labels = []
    for index, day in enumerate(days):
        if index % 5 == 0 or index == len(days) - 1:
            labels.append(f'<text x="{x(index)}" y="{HEIGHT - BOTTOM + 16}" font-size="11" '
                          f'text-anchor="middle" fill="#5b6576">{int(day[8:])}</text>')
    return "".join(labels)


def _line(days: list[str], by_day: dict[str, dict[str, Any]], field: str, colour: str,
          dash: str, x: Any, y: Any) -> str:
    """A polyline per run of consecutive days that have a value."""
    runs: list[list[str]] = [[]]
    for index, day in enumerate(days):
        value = by_day.get(day, {}).get(field)
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{x(index)},{y(float(value))}")
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return "".join(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dashes} '
                   f'points="{" ".join(run)}"/>' for run in runs if len(run) > 1)


def _points(days: list[str], by_day: dict[str, dict[str, Any]], field: str, label: str,
            colour: str, x: Any, y: Any) -> str:
    dots = []
    for index, day in enumerate(days):
        point = by_day.get(day, {})
        value = point.get(field)
        if value is None:
            continue
        dots.append(f'<circle cx="{x(index)}" cy="{y(float(value))}" r="3" fill="{colour}" '
                    f'data-day="{day}" data-series="{field}" data-value="{float(value):.4f}">'
                    f'<title>{escape(_point_text(day, label, point, field))}</title></circle>')
    return "".join(dots)


def _point_text(day: str, label: str, point: dict[str, Any], field: str) -> str:
    value = _percent(point[field])
    if field == "csat_ratio":
        return f"{day}: {label} {value} ({point.get('positive')} of {point.get('surveys')} "\
               "surveys positive)"
    return f"{day}: {label} {value} ({point.get('met')} of {point.get('total')} met)"


def _legend(shown: Sequence[tuple[str, str, str, str]]) -> str:
    items = []
    for index, (_, label, colour, dash) in enumerate(shown):
        left = LEFT + index * 130
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        items.append(f'<line x1="{left}" x2="{left + 22}" y1="{HEIGHT - 6}" y2="{HEIGHT - 6}" '
                     f'stroke="{colour}" stroke-width="2"{dashes}/>'
                     f'<text x="{left + 28}" y="{HEIGHT - 2}" font-size="12" '
                     f'fill="#1c2330">{label}</text>')
    return "".join(items)


def _description(days: list[str], by_day: dict[str, dict[str, Any]],
                 shown: Sequence[tuple[str, str, str, str]]) -> str:
    if not shown:
        return "No day of this month has closed windows yet."
    sentences = []
    for field, label, _, _ in shown:
        values = [f"{day[5:]} {_percent(by_day[day][field])}" for day in days
                  if by_day.get(day, {}).get(field) is not None]
        sentences.append(f"{label} by day: {', '.join(values)}.")
    return " ".join(sentences)


def _percent(value: Any) -> str:
    text = f"{float(value) * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"
