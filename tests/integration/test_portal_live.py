"""The portal on a real worker and the real broker, seen through headless Chromium.

Tickets of two customers are stamped in hours that are over, so their compliance windows
close as soon as a live outcome moves the watermark past them; the worker's portal reads
the compliance and breaches topics and Chromium loads customer acme's page.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest

from agents.reports.render import percent
from sla.events import format_ts
from tests.integration.browser import Browser, save_screenshot
from tests.integration.monitorkit import Reader, Worker, keyed, produce, worker_env

pytestmark = pytest.mark.integration

ACME = "acme-portal-token-for-tests"
GLOBEX = "globex-portal-token-for-tests"
POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: []
  targets:
    P1: {response: 30m}
    P2: {response: 4h}
customers:
  acme:
    credits: [{below: 0.99, credit: 0.05}, {below: 0.95, credit: 0.10}]
  globex:
    credits: [{below: 0.999, credit: 0.02}]
"""
TARGET_MIN = {"P1": 30, "P2": 240}
HOUR = 3_600_000
LATENESS_MS = 5_000  # the worker's SLAMON_LATENESS
MINUTE = 60_000
# ticket, customer, service, priority, hour (0: three hours ago, 1: two), opened, responded (min)
TICKETS = [
    ("A1", "acme", "payments", "P2", 0, 5, 10),
    ("A2", "acme", "payments", "P2", 0, 6, 20),
    ("A3", "acme", "payments", "P1", 0, 7, 50),  # responded after 43 min: a breach
    ("A4", "acme", "payments", "P1", 0, 12, 30),
    ("A5", "acme", "payments", "P1", 0, 14, 55),  # a breach
    ("A6", "acme", "payments", "P2", 1, 3, 40),
    ("A7", "acme", "payments", "P1", 1, 8, 20),
    ("A8", "acme", "email", "P2", 1, 5, 7),
    ("A9", "acme", "email", "P2", 1, 9, 30),
    ("G1", "globex", "payments", "P2", 0, 8, 9),
    ("G2", "globex", "payments", "P1", 0, 9, 45),  # globex's breach: never on acme's page
]


def _events(first_hour: int, now: int) -> list[dict]:
    events = []
    for ticket, customer, service, priority, hour, opened, responded in TICKETS:
        start = first_hour + hour * HOUR
        events += [
            {"event_id": f"{ticket}-1", "ticket_id": ticket, "type": "opened",
             "ts": format_ts(start + opened * MINUTE), "service": service,
             "customer": customer, "priority": priority},
            {"event_id": f"{ticket}-2", "ticket_id": ticket, "type": "responded",
             "ts": format_ts(start + responded * MINUTE)},
        ]
    events.sort(key=lambda e: e["ts"])
    # A live ticket: its outcome carries the watermark (now) that closes the past hours.
    return events + [
        {"event_id": "L1-1", "ticket_id": "L1", "type": "opened", "ts": format_ts(now - 3000),
         "service": "email", "customer": "acme", "priority": "P2"},
        {"event_id": "L1-2", "ticket_id": "L1", "type": "responded", "ts": format_ts(now - 1000)},
    ]


def _expected(first_hour: int) -> dict[str, tuple[int, int]]:
    """acme's hour windows: compliance id -> (met, total)."""
    windows: dict[str, tuple[int, int]] = {}
    for _, customer, service, priority, hour, opened, responded in TICKETS:
        if customer != "acme":
            continue
        start = format_ts(first_hour + hour * HOUR)
        key = f"{service}:acme:{priority}:response:hour:{start}"
        met, total = windows.get(key, (0, 0))
        windows[key] = (met + (responded - opened <= TARGET_MIN[priority]), total + 1)
    return windows


def _owed(first_hour: int, now: int) -> tuple[str, tuple[str, str, str, str]]:
    """The credit row of acme's payments for the first hour's period, and its (met, total,
    ratio, credit). The page prices the longest window kind that has closed: in the first
    hours after midnight UTC the first hour's day has closed too (and on the 1st, its month),
    and the period then holds every payments ticket of that day (or month)."""
    watermark = now - 1000 - LATENESS_MS  # L1's response closes what ends by then
    start = datetime.fromtimestamp(first_hour / 1000, UTC)
    day = start.replace(hour=0)
    month = day.replace(day=1)
    periods = [("month", month, (month + timedelta(days=32)).replace(day=1)),
               ("day", day, day + timedelta(days=1)),
               ("hour", start, start + timedelta(hours=1))]
    kind, begin, end = next(p for p in periods if p[2].timestamp() * 1000 <= watermark)
    met = total = 0
    for _, customer, service, priority, hour, opened, responded in TICKETS:
        ticket_hour = datetime.fromtimestamp((first_hour + hour * HOUR) / 1000, UTC)
        if customer == "acme" and service == "payments" and begin <= ticket_hour < end:
            met += responded - opened <= TARGET_MIN[priority]
            total += 1
    # Hour 0 has P1 breaches in every one of these periods: acme's 10% tier (below 95%).
    return (f"credit:payments:{kind}:{format_ts(int(begin.timestamp() * 1000))}",
            (str(met), str(total), percent(met / total), "10%"))


class _Rows(HTMLParser):
    """data-id rows -> {data-field: text}."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._row: str | None = None
        self._field: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        row = found.get("data-id")
        if tag == "tr" and row:
            self._row = row
            self.rows[row] = {}
        self._field = found.get("data-field") if tag == "td" else None

    def handle_data(self, data: str) -> None:
        if self._row and self._field:
            self.rows[self._row][self._field] = self.rows[self._row].get(self._field, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path,
           free_port: Callable[[], int]) -> Iterator[Worker]:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    tokens = tmp_path / "portal.yaml"
    tokens.write_text(f"customers:\n  acme: {ACME}\n  globex: {GLOBEX}\n")
    env = worker_env(kafka_bootstrap, tmp_path, free_port(), policies, SLAMON_PARTITIONS="1",
                     SLAMON_LATENESS=str(LATENESS_MS // 1000), SLAMON_PORTAL_TOKENS=str(tokens))
    running = Worker(env, tmp_path / "worker.log").start()
    yield running
    code = running.stop()
    assert code == 0, running.tail()
    assert ACME not in running.log.read_text() and GLOBEX not in running.log.read_text()


def _api(worker: Worker, customer: str, token: str | None) -> tuple[int, dict]:
    request = urllib.request.Request(f"{worker.web}/portal/{customer}/data.json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def _windows(report: dict) -> dict[str, dict]:
    return {row["id"]: row for service in report["services"]
            for rows in service["windows"].values() for row in rows}


def test_a_customer_sees_its_numbers_and_only_its_own(kafka_bootstrap: str, worker: Worker,
                                                       tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    first_hour = now - now % HOUR - 3 * HOUR
    expected = _expected(first_hour)
    reader = Reader(kafka_bootstrap, [worker.prefix + "compliance"])
    produce(kafka_bootstrap, worker.prefix + "events", keyed(_events(first_hour, now)))
    reader.until(lambda rs: expected.keys() <= {r.get("id") for r in rs}, 90)
    reader.close()

    # The worker's portal has read them too (its own consumer of the whole topics).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, report = _api(worker, "acme", ACME)
        if status == 200 and expected.keys() <= _windows(report).keys() and report["breaches"]:
            break
        time.sleep(0.5)
    assert status == 200 and expected.keys() <= _windows(report).keys(), report
    assert {b["ticket_id"] for b in report["breaches"]} == {"A3", "A5"}
    assert _api(worker, "acme", None)[0] == 401
    assert _api(worker, "acme", GLOBEX)[0] == 403
    assert _api(worker, "acme", "not-a-token-of-anyone")[0] == 401

    with Browser() as browser:
        page = f"{worker.web}/portal/acme"
        assert browser.visit(page).status == 401
        refused = browser.visit(f"{page}?token={GLOBEX}")
        assert refused.status == 403 and 'data-status="403"' in refused.html
        seen = browser.visit(f"{page}?token={ACME}", screenshot=True)
        assert seen.statuses == [303, 200]  # the token moved into a cookie
        assert browser.visit(f"{worker.web}/portal/globex").status == 403  # acme's cookie
        assert browser.visit(page).status == 200  # the cookie alone
    rows = _Rows(seen.html).rows
    for window_id, (met, total) in expected.items():
        row = rows[window_id]
        assert (int(row["met"]), int(row["total"])) == (met, total), window_id
    p1 = rows[f"payments:acme:P1:response:hour:{format_ts(first_hour)}"]
    assert (p1["met"], p1["breached"], p1["compliance_ratio"], p1["credit"]) == (
        "1", "2", "33.33%", "10%")
    p2 = rows[f"payments:acme:P2:response:hour:{format_ts(first_hour)}"]
    assert (p2["compliance_ratio"], p2["credit"]) == ("100%", "—")
    assert {rows[r]["ticket_id"] for r in rows if r.endswith(":breach")} == {"A3", "A5"}
    assert "globex" not in seen.html and "G2" not in seen.html
    row_id, owed_expected = _owed(first_hour, now)
    owed = rows[row_id]
    assert (owed["met"], owed["total"], owed["compliance_ratio"], owed["credit"]) == owed_expected

    save_screenshot(seen.screenshot, tmp_path, "portal-live.png")  # not docs/portal.png: the demo's


def test_every_worker_shows_the_whole_picture(kafka_bootstrap: str, tmp_path: Path,
                                              free_port: Callable[[], int]) -> None:
    """Two workers share the partitions; each one's portal shows every customer in full."""
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    tokens = tmp_path / "portal.yaml"
    tokens.write_text(f"customers:\n  acme: {ACME}\n  globex: {GLOBEX}\n")
    # Past outcomes of two clock partitions carry their own watermarks (up to 40 min past the
    # first hour's end): 50 min of lateness keeps one partition's from closing the first hour
    # before the other's outcomes are in, and still closes both hours by now.
    first = worker_env(kafka_bootstrap, tmp_path, free_port(), policies, SLAMON_PARTITIONS="2",
                       SLAMON_LATENESS="3000", SLAMON_PORTAL_TOKENS=str(tokens))
    second = first | {"SLAMON_WEB_PORT": str(free_port()),
                      "SLAMON_DATA_DIR": str(tmp_path / "data-2")}
    workers = [Worker(first, tmp_path / "worker-1.log").start(),
               Worker(second, tmp_path / "worker-2.log").start()]
    try:
        now = int(time.time() * 1000)
        first_hour = now - now % HOUR - 3 * HOUR
        past = _events(first_hour, now)[:-2]
        reader = Reader(kafka_bootstrap, [workers[0].prefix + "outcomes"])
        produce(kafka_bootstrap, workers[0].prefix + "events", keyed(past))
        # Outcomes from two clock partitions reach the compliance agent in any order: the
        # live ones (which close the hours) only once every past one is out.
        reader.until(lambda rs: {r.get("ticket_id") for r in rs} >= {t[0] for t in TICKETS}, 90)
        reader.close()
        # A live ticket per (service, customer): its outcome closes that compliance partition.
        events: list[dict] = []
        pairs = sorted({(t[1], t[2]) for t in TICKETS})
        for n, (customer, service) in enumerate(pairs):
            events += [
                {"event_id": f"L{n}-1", "ticket_id": f"L{n}", "type": "opened",
                 "ts": format_ts(now - 3000), "service": service, "customer": customer,
                 "priority": "P2"},
                {"event_id": f"L{n}-2", "ticket_id": f"L{n}", "type": "responded",
                 "ts": format_ts(now - 1000)}]
        produce(kafka_bootstrap, workers[0].prefix + "events", keyed(events))
        expected = {"acme": set(_expected(first_hour)),
                    "globex": {f"payments:globex:{p}:response:hour:{format_ts(first_hour)}"
                               for p in ("P1", "P2")}}
        tickets = {"acme": {"A3", "A5"}, "globex": {"G2"}}
        for worker in workers:
            for customer, token in (("acme", ACME), ("globex", GLOBEX)):
                deadline = time.monotonic() + 90
                while True:
                    status, report = _api(worker, customer, token)
                    # Hour windows: in the first hours after midnight UTC, the day's too.
                    seen = {w for w in _windows(report) if ":hour:" in w} if status == 200 \
                        else set()
                    breaches = {b["ticket_id"] for b in report.get("breaches", [])}
                    if seen == expected[customer] and breaches == tickets[customer]:
                        break
                    assert time.monotonic() < deadline, (
                        worker.web, customer, seen ^ expected[customer], breaches)
                    time.sleep(0.5)
    finally:
        for worker in workers:
            worker.stop()
