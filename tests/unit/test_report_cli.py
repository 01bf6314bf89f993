"""`slamon report --from-file`: the month's figures of `slamon replay` output, checked against
the expectations tests/unit/reportkit.py works out from its own table."""

from __future__ import annotations

import csv
import io
import re

import orjson
import pytest

from agents.cli import main
from tests.unit import reportkit


def replay(tmp_path, as_of: str):
    """`slamon replay` of reportkit's month up to `as_of`, into a file."""
    (tmp_path / "p.yaml").write_text(reportkit.POLICIES)
    (tmp_path / "h.jsonl").write_bytes(reportkit.history())
    out = tmp_path / "replay.jsonl"
    assert main(["replay", "--policies", str(tmp_path / "p.yaml"), "--events",
                 str(tmp_path / "h.jsonl"), "--as-of", as_of, "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return replay(tmp_path_factory.mktemp("report"), "2026-12-01T00:00:00Z")


def report(capsys, path, *extra: str, customer: str = "acme", period: str = "2026-11"):
    status = main(["report", "--customer", customer, "--period", period, "--from-file",
                   str(path), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_month_per_service_and_priority(records, capsys):
    status, out, _ = report(capsys, records, "--format", "json")
    data = orjson.loads(out)
    assert status == 0 and data["complete"] is True
    found = {(r["service"], r["priority"]): (r["met"], r["total"])
             for s in data["services"] for r in s["rows"]}
    assert found == reportkit.expected() == {("payments", "P1"): (16, 20),
                                             ("payments", "P2"): (16, 20),
                                             ("email", "P2"): (20, 20)}
    services = {s["service"]: s for s in data["services"]}
    # 80% is below both of acme's tiers (99%: 5%, 90%: 10%); email at 100% owes nothing.
    assert services["payments"]["credit"] == 0.1 and services["email"]["credit"] == 0.0
    assert data["totals"] == {"met": 52, "breached": 8, "total": 60, "compliance_ratio": 52 / 60,
                              "credit": 0.1, "surveys": 60, "positive": 56,
                              "csat_ratio": 56 / 60}
    csat = {(r["service"], r["priority"]): (r["positive"], r["surveys"])
            for s in data["services"] for r in s["rows"]}
    assert csat == reportkit.expected_csat() == {("payments", "P1"): (16, 20),
                                                 ("payments", "P2"): (20, 20),
                                                 ("email", "P2"): (20, 20)}
    rows = {(r["service"], r["priority"]): r for s in data["services"] for r in s["rows"]}
    # Does breaching hurt satisfaction? For payments P1, every met clock's survey is
    # positive and no breached one's; payments P2's customers are content either way.
    assert (rows["payments", "P1"]["csat_met_ratio"],
            rows["payments", "P1"]["csat_breached_ratio"]) == (1.0, 0.0)
    assert (rows["payments", "P2"]["csat_met_ratio"],
            rows["payments", "P2"]["csat_breached_ratio"]) == (1.0, 1.0)
    assert services["payments"]["csat_ratio"] == 36 / 40
    tickets = {b["ticket_id"] for s in data["services"] for b in s["breaches"]}
    assert tickets == reportkit.breached_tickets() and len(tickets) == 8
    p1 = next(r for r in services["payments"]["rows"] if r["priority"] == "P1")
    # Four each of 5, 10, 20, 25 and 45 min; nearest rank: p50 the 10th (20m), p90 the 18th.
    assert (p1["p50_seconds"], p1["p90_seconds"], p1["p99_seconds"]) == (1200.0, 2700.0, 2700.0)
    days = {d["day"]: d for d in services["payments"]["daily"]}
    assert len(days) == 20 and days["2026-11-04"]["compliance_ratio"] == 0.5  # a Wednesday
    assert days["2026-11-05"]["compliance_ratio"] == 1.0


def test_another_customer_is_never_shown(records, capsys):
    _, out, _ = report(capsys, records, "--format", "json", customer="globex")
    data = orjson.loads(out)
    assert {s["service"] for s in data["services"]} == {"payments"}
    assert all(b["ticket_id"].startswith("G-") for s in data["services"] for b in s["breaches"])
    _, page, _ = report(capsys, records)
    assert "G-2026" not in page


def test_csv_lines_rows_and_breaches(records, capsys):
    status, out, _ = report(capsys, records, "--format", "csv")
    lines = list(csv.DictReader(io.StringIO(out)))
    rows = [r for r in lines if r["section"] == "row"]
    assert {(r["service"], r["priority"], r["met"], r["total"]) for r in rows} == {
        ("payments", "P1", "16", "20"), ("payments", "P2", "16", "20"), ("email", "P2", "20", "20")}
    breaches = [r["ticket_id"] for r in lines if r["section"] == "breach"]
    assert sorted(breaches) == sorted(reportkit.breached_tickets())
    assert all(r["customer"] == "acme" and r["period"] == "2026-11" for r in lines)


def test_html_is_printable_and_shows_the_numbers(records, capsys):
    status, page, _ = report(capsys, records)
    assert status == 0 and page.startswith("<!doctype html>")
    assert "@media print" in page and "<script" not in page
    assert re.search(r'data-id="row:payments:P1:response">.*?data-field="met">16<', page, re.S)
    assert '<svg class="chart" role="img"' in page and "<desc id=" in page
    assert 'data-field="csat_ratio">93.33%<' in page  # the card: 56 of 60 positive
    assert re.search(r'data-id="row:payments:P1:response">.*?data-field="csat_breached_ratio">'
                     r'0%<', page, re.S)
    assert "Compliance by day: 11-02 100%" in page
    assert 'data-day="2026-11-04" data-series="compliance_ratio" data-value="0.5000"' in page


def test_a_month_not_closed_yet_is_provisional(tmp_path, capsys):
    path = replay(tmp_path, as_of="2026-11-12T00:00:00Z")
    status, out, _ = report(capsys, path, "--format", "json")
    data = orjson.loads(out)
    assert data["complete"] is False
    p1 = next(r for s in data["services"] for r in s["rows"]
              if (r["service"], r["priority"]) == ("payments", "P1"))
    # Closed days 2..11: 8 weekdays, two Wednesdays breached; no percentile or credit yet.
    assert (p1["met"], p1["total"], p1["provisional"], p1["credit"]) == (6, 8, True, None)


def test_retracted_breaches_are_dropped(records, capsys, tmp_path):
    lines = records.read_bytes().splitlines()
    breach = next(orjson.loads(x) for x in lines if b'"kind":"breach"' in x)
    withdrawn = {"kind": "retraction", "id": f"{breach['id']}:retracted",
                 "retracts": breach["id"], "retracts_kind": "breach",
                 "ticket_id": breach["ticket_id"], "metric": "response",
                 "service": breach["service"], "customer": "acme", "at": "2026-11-30T00:00:00Z"}
    path = tmp_path / "more.jsonl"
    path.write_bytes(b"\n".join([*lines, orjson.dumps(withdrawn)]) + b"\n")
    _, out, _ = report(capsys, path, "--format", "json")
    tickets = {b["ticket_id"] for s in orjson.loads(out)["services"] for b in s["breaches"]}
    assert tickets == reportkit.breached_tickets() - {breach["ticket_id"]}


def test_nothing_for_the_customer_names_who_has_records(records, capsys):
    status, out, err = report(capsys, records, customer="acne")
    assert status == 1 and out == ""
    assert "no records for customer 'acne' in 2026-11" in err and "acme, globex" in err
    status, _, err = report(capsys, records, period="2026-10")
    assert status == 1 and "customers with records then: none" in err


def test_bad_period_and_bad_lines_are_named(records, capsys, tmp_path):
    status, _, err = report(capsys, records, period="2026-13")
    assert status == 2 and "--period '2026-13' is not a month" in err
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(records.read_bytes()[:400] + b"\n{oops\n")
    status, _, err = report(capsys, broken)
    assert status == 2 and re.search(r"broken\.jsonl:\d+: not JSON", err)
