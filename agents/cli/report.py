"""`slamon report`: a customer's monthly SLA report, as a printable HTML page, CSV or JSON.

The records come from the compliance and breach topics (names from the settings' topic
catalogue; read once, from the beginning to their current end, with the settings'
security options) or, with `--from-file`, from `slamon replay` output. The figures are
the records' own (agents.reports.monthly): per service, priority and metric, the month's
compliance, breaches with their tickets, percentiles, the credit owed and CSAT when the
records carry it, and each service's daily trend.

Exit status 0; 1 when nothing was found for the customer in the month (the customers that
have records then are listed: a misspelt name shows at once); 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from agents.settings import add_config_argument

HELP = "a customer's monthly SLA report (HTML, CSV or JSON) from the compliance topic or a file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--customer", required=True, help="the customer, as in the policies")
    parser.add_argument("--period", required=True, metavar="YYYY-MM", help="the month (UTC)")
    parser.add_argument("--format", choices=("html", "csv", "json"), default="html")
    parser.add_argument("--from-file", metavar="FILE",
                        help="read `slamon replay` output (JSON lines; - for stdin) instead "
                             "of the topics")
    parser.add_argument("--output", default="-", help="where to write it (default stdout)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="give up reading the topics after this long (default 60)")


def run(args: argparse.Namespace) -> int:
    from agents.reports.monthly import MonthlyReport
    from agents.reports.report_output import render_report
    from agents.reports.sources import records_from_file, records_from_topics

    report = MonthlyReport(args.customer, args.period)  # PeriodError: reported by main
    if args.from_file is not None:
        source = f"file {'<stdin>' if args.from_file == '-' else args.from_file}"
        try:
            for record in records_from_file(args.from_file):
                report.add(record)
        except OSError as error:
            print(f"slamon report: cannot read --from-file: {error}", file=sys.stderr)
            return 2
    else:
        from agents.settings import settings_from_args

        settings = settings_from_args(args)
        reader = records_from_topics(settings, args.timeout)
        source = f"topics {', '.join(reader.topics)} on {settings.broker}"
        for record in reader:
            report.add(record)
        if reader.skipped:
            print(f"slamon report: {reader.skipped} messages were not records (skipped)",
                  file=sys.stderr)
    if report.empty:
        others = ", ".join(sorted(report.customers_in_period)) or "none"
        print(f"slamon report: no records for customer {args.customer!r} in {args.period} "
              f"({report.records} records read; customers with records then: {others})",
              file=sys.stderr)
        return 1
    generated = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = render_report(report.build(generated, source), args.format)
    try:
        if args.output == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            with open(args.output, "w", encoding="utf-8") as sink:
                sink.write(text)
    except OSError as error:
        print(f"slamon report: cannot write the report: {error}", file=sys.stderr)
        return 2
    return 0
