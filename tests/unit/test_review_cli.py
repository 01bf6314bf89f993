"""`slamon review` through the real command line, on two policy files whose differences are
worked out by hand below.

The calendar `office` counts Monday to Friday 09:00-17:00 UTC; November 2026 starts on a
Sunday, so 11-02 is a Monday and 11-04 a Wednesday. The old terms give P1 a 1h response
target and P2 4h; the new terms tighten P1 to 30m and make Wednesday 11-04 a holiday.

ticket  customer  prio  opened     responded        old (1h / 4h)     new (30m / 4h, holiday)
A1      acme      P1    Mon 09:00  Mon 09:20 (20m)  met               met
A2      acme      P1    Mon 10:00  Mon 10:45 (45m)  met               breached: added
A3      acme      P1    Mon 11:00  Mon 12:30 (90m)  breached          breached
G1      globex    P1    Mon 09:00  Mon 09:40 (40m)  met               breached: added
B1      acme      P2    Tue 16:00  Wed 13:00        breached (Tue 1h  met: Wed is not counted,
                                                    + Wed 3h by 12:00) Tue 1h: removed
C1      acme      P2    Thu 09:00  Thu 10:00 (1h)   met               met

acme's objective is 90% (its one credit tier: below 0.9, 10%); globex has none.
"""

from __future__ import annotations

import csv
import io
import re

import orjson
import pytest

from agents.cli import main

OLD = """\
version: 1
calendars:
  office:
    timezone: UTC
    hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
            thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
corporate:
  calendar: office
  warn_at: []
  targets:
    P1: {response: 1h}
    P2: {response: 4h}
customers:
  acme:
    credits: [{below: 0.9, credit: 0.1}]
"""
FRIDAY = 'fri: ["09:00-17:00"]}'
WITH_HOLIDAY = FRIDAY + '\n    holidays: ["2026-11-04"]'
NEW = (OLD.replace("version: 1", "version: 2").replace("P1: {response: 1h}", "P1: {response: 30m}")
       .replace(FRIDAY, WITH_HOLIDAY))
HOLIDAY_ONLY = OLD.replace("version: 1", "version: 3").replace(FRIDAY, WITH_HOLIDAY)

TICKETS = [  # ticket, customer, priority, opened, responded
    ("A1", "acme", "P1", "2026-11-02T09:00:00Z", "2026-11-02T09:20:00Z"),
    ("G1", "globex", "P1", "2026-11-02T09:00:00Z", "2026-11-02T09:40:00Z"),
    ("A2", "acme", "P1", "2026-11-02T10:00:00Z", "2026-11-02T10:45:00Z"),
    ("A3", "acme", "P1", "2026-11-02T11:00:00Z", "2026-11-02T12:30:00Z"),
    ("B1", "acme", "P2", "2026-11-03T16:00:00Z", "2026-11-04T13:00:00Z"),
    ("C1", "acme", "P2", "2026-11-05T09:00:00Z", "2026-11-05T10:00:00Z"),
]


def history() -> bytes:
    events = []
    for ticket, customer, priority, opened, responded in TICKETS:
        events.append({"event_id": f"{ticket}-o", "ticket_id": ticket, "type": "opened",
                       "ts": opened, "service": "web", "customer": customer,
                       "priority": priority})
        events.append({"event_id": f"{ticket}-r", "ticket_id": ticket, "type": "responded",
                       "ts": responded})
    events.sort(key=lambda e: e["ts"])
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "new.yaml").write_text(NEW)
    (tmp_path / "holiday.yaml").write_text(HOLIDAY_ONLY)
    (tmp_path / "history.jsonl").write_bytes(history())
    return tmp_path


def review(files, capsys, *extra: str, new: str = "new.yaml", events: str = "history.jsonl"):
    status = main(["review", "--old", str(files / "old.yaml"), "--new", str(files / new),
                   "--events", str(files / events), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def rows_of(data: dict) -> dict[tuple[str, str, str, str], dict]:
    return {(r["customer"], r["service"], r["priority"], r["metric"]): r for r in data["rows"]}


def test_a_tighter_target_adds_exactly_these_breaches_and_a_holiday_removes_that_one(
        files, capsys):
    status, out, err = review(files, capsys, "--format", "json")
    data = orjson.loads(out)
    rows = rows_of(data)
    p1, p2 = rows["acme", "web", "P1", "response"], rows["acme", "web", "P2", "response"]
    assert (p1["breaches_added"], p1["breaches_removed"]) == (["A2"], [])
    assert (p1["old"]["met"], p1["old"]["total"], p1["new"]["met"], p1["new"]["total"]) == (
        2, 3, 1, 3)
    assert (p2["breaches_added"], p2["breaches_removed"]) == ([], ["B1"])
    assert (p2["old"]["met"], p2["new"]["met"], p2["new"]["total"]) == (1, 2, 2)
    globex = rows["globex", "web", "P1", "response"]
    assert (globex["breaches_added"], globex["objective"]) == (["G1"], None)
    assert len(rows) == 3
    # acme's P1 falls from 66.67% to 33.33%, below its 90% objective: the gate fails.
    assert p1["objective"] == 0.9 and p1["lowered_below_objective"] is True
    assert p2["lowered_below_objective"] is False and globex["lowered_below_objective"] is False
    assert status == 1 and data["passes"] is False and "FAILS" in err
    terms = [(t["topic"], t["where"], t["old"], t["new"]) for t in data["terms"]]
    assert terms == [("version", "version", "1", "2"),
                     ("calendars", "calendars.office.holidays", None, "2026-11-04"),
                     ("targets", "corporate.targets.P1.response", "1h", "30m")]
    credits = {(c["priority"], c["customer"]): (c["month"], c["old"], c["new"])
               for c in data["credits"]}
    # P1: 66.67% and 33.33% are both below 90%; P2: 50% owes 10%, 100% nothing.
    assert credits[("P1", "acme")] == ("2026-11", 0.1, 0.1)
    assert credits[("P2", "acme")] == ("2026-11", 0.1, 0.0)
    assert credits[("P1", "globex")] == ("2026-11", 0.0, 0.0)
    customers = {c["customer"]: c for c in data["customers"]}
    assert (customers["acme"]["breaches_added"], customers["acme"]["breaches_removed"]) == (1, 1)
    assert customers["acme"]["rows_below_objective"] == 1


def test_terms_that_lower_no_customer_below_its_objective_exit_0(files, capsys):
    status, out, err = review(files, capsys, "--format", "json", new="holiday.yaml")
    data = orjson.loads(out)
    rows = rows_of(data)
    assert [r["breaches_removed"] for r in rows.values() if r["breaches_removed"]] == [["B1"]]
    assert not any(r["breaches_added"] for r in rows.values())
    assert status == 0 and data["passes"] is True and "passes" in err


def test_the_same_file_twice_changes_nothing(files, capsys):
    status, out, _ = review(files, capsys, "--format", "json", new="old.yaml")
    data = orjson.loads(out)
    assert status == 0 and data["terms"] == []
    assert not any(r["changed"] for r in data["rows"])


def test_the_period_limits_what_is_compared_and_what_is_replayed(files, capsys):
    status, out, _ = review(files, capsys, "--format", "json",
                            "--from", "2026-11-03T00:00:00Z", "--to", "2026-11-04T23:59:59Z")
    data = orjson.loads(out)
    rows = rows_of(data)
    # Monday's P1 outcomes fall before --from; C1 (Thursday) after --to, so is not replayed.
    assert list(rows) == [("acme", "web", "P2", "response")]
    p2 = rows["acme", "web", "P2", "response"]
    assert (p2["old"]["total"], p2["breaches_removed"]) == (1, ["B1"])
    assert data["events"]["after_period"] == 2
    assert data["period"] == {"from": "2026-11-03T00:00:00Z", "to": "2026-11-04T23:59:59Z"}
    assert status == 0
    # --to before B1's old deadline (Wed 12:00): nothing breached yet under either file.
    status, out, _ = review(files, capsys, "--format", "json", "--to", "2026-11-04T11:59:59Z")
    rows = rows_of(orjson.loads(out))
    assert ("acme", "web", "P2", "response") not in rows  # B1 neither stopped nor breached
    assert not any(r["breaches_removed"] for r in rows.values())


def test_table_csv_and_html_say_the_same(files, capsys):
    status, table, _ = review(files, capsys)
    assert status == 1
    assert re.search(r"targets +corporate\.targets\.P1\.response +1h +-> +30m\n", table)
    assert re.search(r"acme +web +P1 +response +66\.67% \(2/3\) +33\.33% \(1/3\) +90% +"
                     r"BELOW OBJECTIVE", table)
    assert "+ acme/web/P1/response: A2" in table and "- acme/web/P2/response: B1" in table
    assert "BELOW OBJECTIVE" in table and "Verdict: FAILS: 1 rows" in table

    _, text, _ = review(files, capsys, "--format", "csv")
    lines = list(csv.DictReader(io.StringIO(text)))
    rows = {(r["customer"], r["priority"]): r for r in lines if r["section"] == "row"}
    assert rows["acme", "P1"]["breaches_added"] == "A2"
    assert rows["acme", "P2"]["breaches_removed"] == "B1"
    assert (rows["acme", "P1"]["old_met"], rows["acme", "P1"]["new_met"]) == ("2", "1")
    assert rows["acme", "P1"]["lowered_below_objective"] == "True"
    terms = [r["where"] for r in lines if r["section"] == "term"]
    assert "calendars.office.holidays" in terms
    credit = [r for r in lines if r["section"] == "credit" and r["priority"] == "P2"]
    assert (credit[0]["old_credit"], credit[0]["new_credit"]) == ("0.1", "0.0")

    _, page, _ = review(files, capsys, "--format", "html")
    assert page.startswith("<!doctype html>") and "@media print" in page
    assert 'data-id="row:acme:web:P1:response"' in page
    assert "Fails: the new terms lower 1 row below" in page
    assert "A2" in page and "B1" in page and "<script" not in page


def test_html_escapes_what_the_history_says(files, capsys):
    (files / "odd.jsonl").write_bytes(history().replace(b'"acme"', b'"<b>acme</b>"'))
    _, page, _ = review(files, capsys, "--format", "html", events="odd.jsonl")
    assert "<b>acme</b>" not in page and "&lt;b&gt;acme&lt;/b&gt;" in page


def test_an_invalid_policy_file_is_named_with_its_line(files, capsys):
    (files / "bad.yaml").write_text("version: 2\ncorporate:\n  targets: {P1: {response: 2x}}\n")
    status, out, err = review(files, capsys, new="bad.yaml")
    assert status == 2 and out == ""
    assert "--new" in err and "bad.yaml:3" in err and "'2x'" in err


def test_history_lines_that_are_not_events_are_refused_naming_file_and_line(files, capsys):
    lines = history().splitlines()
    lines.insert(2, b"{not json")
    lines.insert(5, b'{"event_id": "x", "ticket_id": "A1", "type": "responded"}')
    (files / "broken.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    status, out, err = review(files, capsys, events="broken.jsonl")
    assert status == 2 and out == ""
    assert "broken.jsonl:3: not_json" in err and "broken.jsonl:6: missing_field: ts" in err
    status, out, err = review(files, capsys, "--format", "json", "--skip-bad-lines",
                              events="broken.jsonl")
    data = orjson.loads(out)
    assert status == 1 and "broken.jsonl:3" in err
    assert {r["reason"]: r["old"] for r in data["rejected"]} == {"missing_field": 1,
                                                                 "not_json": 1}


def test_bad_period_and_missing_files(files, capsys):
    status, _, err = review(files, capsys, "--from", "yesterday")
    assert status == 2 and "--from" in err
    status, _, err = review(files, capsys, "--from", "2026-11-05T00:00:00Z",
                            "--to", "2026-11-01T00:00:00Z")
    assert status == 2 and "before --from" in err
    status, _, err = review(files, capsys, events="missing.jsonl")
    assert status == 2 and "missing.jsonl" in err
