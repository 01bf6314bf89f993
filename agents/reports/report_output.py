"""`slamon report`'s output: a monthly report (agents.reports.monthly) as HTML, CSV or JSON.

The HTML page is printable (the report stylesheet's print part) and draws each service's
daily compliance and CSAT as a server-rendered SVG chart (agents.reports.trends). The CSV
is one table whose `section` column says what a line is: `row` (a service, priority and
metric of the month) or `breach` (one breached clock, with its ticket).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from agents.reports.monthly import CSAT_FIELDS
from agents.reports.render import render_page
from agents.reports.trends import daily_chart

__all__ = ["render_report", "CSV_COLUMNS"]

CSV_COLUMNS = ("section", "customer", "period", "service", "priority", "metric", "met",
               "breached", "total", "compliance_ratio", "p50_seconds", "p90_seconds",
               "p99_seconds", "credit", "provisional", *CSAT_FIELDS, "ticket_id",
               "target_seconds", "elapsed_seconds", "started_at", "deadline", "breached_at")


def render_report(report: dict[str, Any], fmt: str) -> str:
    """The report in format `fmt` (html, csv, json), as text."""
    if fmt == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        return _csv(report)
    charts = {service["service"]: daily_chart(service["daily"], report["period"],
                                              title=f"{service['service']}: daily compliance"
                                              " and CSAT")
              for service in report["services"]}
    return render_page("report.html", report=report, charts=charts)


def _csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    common = {"customer": report["customer"], "period": report["period"]}
    for service in report["services"]:
        for row in service["rows"]:
            writer.writerow({"section": "row", **common, **row})
        for breach in service["breaches"]:
            writer.writerow({"section": "breach", **common, **breach})
    return out.getvalue()
