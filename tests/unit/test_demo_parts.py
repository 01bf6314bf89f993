"""The demo's parts without a broker: its console, its traffic in real time, its policies."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from agents.cli import build_parser
from agents.devkit.console import Console
from agents.devkit.traffic import realtime, ticket_events
from agents.policyfile import load_policies
from sla.events import format_ts, parse_ts

ROOT = Path(__file__).resolve().parents[2]


def _breach(ticket: str) -> dict:
    return {"kind": "breach", "id": f"{ticket}:response:0:breach", "ticket_id": ticket,
            "metric": "response", "service": "email", "customer": "acme", "priority": "P1",
            "target_seconds": 4.0, "deadline": "2026-05-01T10:00:04Z",
            "breached_at": "2026-05-01T10:00:04Z", "detected_at": "2026-05-01T10:00:04.120Z"}


def test_the_console_prints_breaches_once_and_counts_like_a_consumer() -> None:
    out = io.StringIO()
    console = Console(out, tty=False)
    console.record(_breach("T1"))
    console.record(_breach("T1"))  # redelivered
    console.record(_breach("T2"))
    console.record({"kind": "retraction", "id": "x", "retracts": "T2:response:0:breach",
                    "retracts_kind": "breach", "ticket_id": "T2", "metric": "response",
                    "at": "2026-05-01T10:00:09Z"})
    for revision, status in ((0, "met"), (1, "breached"), (0, "met")):  # a late duplicate
        console.record({"kind": "outcome", "id": f"T3:o:{revision}", "ticket_id": "T3",
                        "metric": "response", "cycle": 0, "revision": revision,
                        "status": status})
    console.events_sent = 12
    lines = out.getvalue().splitlines()
    assert lines[0] == ("10:00:04  BREACH     T1       acme/email P1 response: target 4s passed, "
                        "detected +0.12s")
    assert len([line for line in lines if "BREACH" in line]) == 2
    assert "withdrawn  breach of T2 response" in lines[-1]
    assert console.summary().endswith("events 12 · breaches 1 · warnings 0 · met 0 · "
                                      "breached 1 · windows 0")


def test_a_closed_period_is_one_line_once_its_records_settle() -> None:
    out = io.StringIO()
    console = Console(out, tty=False, settle=0.0)
    for customer, met, credit in (("acme", 3, 0.10), ("acme", 4, 0.0), ("globex", 1, 0.25)):
        console.record({"kind": "compliance", "id": f"{customer}{met}", "customer": customer,
                        "window": "hour", "window_start": "2026-05-01T10:00:00Z",
                        "window_end": "2026-05-01T11:00:00Z", "met": met, "total": 4,
                        "credit": credit})
    assert out.getvalue() == ""
    console.tick()
    assert out.getvalue() == (
        "11:00:00  compliance hour 10:00 UTC closed: 3 windows, 8 of 12 clocks met (66.7%); "
        "credits owed: acme up to 10%, globex up to 25%\n")
    assert console.summary().endswith("windows 3")


def test_on_a_terminal_the_summary_is_redrawn_in_place() -> None:
    out = io.StringIO()
    console = Console(out, tty=True)
    console.tick()
    console.record(_breach("T1"))
    text = out.getvalue()
    assert text.startswith("\r\x1b[K[00:00] events 0")
    assert "\r\x1b[K10:00:04  BREACH" in text and text.endswith("windows 0")
    assert text.count("\n") == 1


def test_a_backlog_opens_at_once_and_minutes_shrink() -> None:
    start = 1_800_000_000_000
    events = list(ticket_events(400, start, tickets_per_hour=1800, minute_ms=250, backlog=5))
    opened = [parse_ts(e["ts"]) for e in events if e["type"] == "opened"]
    assert opened[:5] == [start] * 5 and opened[5] > start
    assert max(parse_ts(e["ts"]) for e in events) - start < 3_600_000  # 240x faster lives


def test_realtime_hands_out_events_as_their_time_comes() -> None:
    now = [1_800_000_000.0]
    waited: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout or 0.0)
            now[0] += timeout or 0.0
            return False

    events = [{"ts": format_ts(ms)} for ms in (1_799_999_999_000, 1_800_000_000_500,
                                               1_800_000_002_000)]
    assert list(realtime(events, Stop(), clock=lambda: now[0])) == events
    assert waited == [0.5, 1.5]
    stop = threading.Event()
    stop.set()
    assert list(realtime(events, stop)) == []


def test_the_demo_policies_are_valid_and_fast() -> None:
    policies = load_policies(ROOT / "config" / "demo-policies.yaml")
    terms = policies.terms("payments", "acme")
    assert terms.targets["P1"]["response"] == 2  # seconds: the demo's clocks run fast
    assert {"acme", "globex"} <= set(policies.customers)


def test_slamon_demo_takes_a_duration() -> None:
    args = build_parser().parse_args(["demo", "--duration", "40", "--web-port", "7000"])
    assert (args.duration, args.web_port, args.rate) == (40.0, 7000, 30.0)
