"""The portal's tables as CSV (`/portal/{customer}/data.csv`) and its printable monthly report.

`tables_csv(report)` writes the page's tables (`PortalView.report`) as one CSV whose
`section` column says what a line is: `window` (a compliance window of a service,
priority and metric, as the page lists it), `day` (a point of the daily trend) or
`breach`. `monthly_report(view, customer, period, generated_at)` builds the printable
monthly report (agents.reports) from what the view holds for the customer, so the
portal and `slamon report` render the same page from the same records.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from agents.portal.view import PortalView
from agents.reports.monthly import CSAT_FIELDS, MonthlyReport
from agents.reports.report_output import render_report

__all__ = ["tables_csv", "monthly_report", "CSV_COLUMNS"]

CSV_COLUMNS = ("section", "customer", "service", "window", "window_start", "window_end",
               "day", "priority", "metric", "met", "breached", "total", "compliance_ratio",
               "p50_seconds", "p90_seconds", "p99_seconds", "credit", *CSAT_FIELDS,
               "ticket_id", "target_seconds", "elapsed_seconds", "started_at", "deadline",
               "breached_at", "detected_at")


def tables_csv(report: dict[str, Any]) -> str:
    """The page's windows, daily trend points and breaches, one table."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    customer = report["customer"]
    for service in report["services"]:
        name = service["service"]
        for rows in service["windows"].values():
            for row in rows:
                writer.writerow({"section": "window", "customer": customer, "service": name,
                                 **row})
        for point in service.get("trend", []):
            writer.writerow({"section": "day", "customer": customer, "service": name,
                             **point})
    for breach in report["breaches"]:
        writer.writerow({"section": "breach", "customer": customer, **breach})
    return out.getvalue()


def monthly_report(view: PortalView, customer: str, period: str,
                   generated_at: str) -> str | None:
    """The printable monthly report of `customer` for `period` (YYYY-MM) from the view's
    records; None when the view holds nothing for that month. PeriodError if `period`
    is not a month."""
    report = MonthlyReport(customer, period)
    for record in view.records_of(customer):
        report.add(record)
    if report.empty:
        return None
    return render_report(report.build(generated_at, "the portal"), "html")
