"""A month of history for the report tests, with the figures it must give worked out here.

Customer acme has tickets on `payments` and `email` every weekday of November 2026, all on
the 24x7 calendar, so a response's counted time is simply its minutes: whether it is met
is decided here, by the table, and the tests compare the report with these expectations
rather than with the engine's own output. Customer globex has a few tickets too, which
acme's report must never show.

Every acme ticket is closed a minute after its response and answers a satisfaction survey
three hours after it opened (1..5): 5 when its response was met, 2 when it was breached,
except payments P2, whose customers answer 4 either way. So payments P1 has CSAT 80% (all
16 met positive, the 4 breached not), payments P2 and email 100%.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import orjson

POLICIES = """\
version: 1
corporate:
  calendar: 24x7
  warn_at: []
  targets:
    P1: {response: 30m}
    P2: {response: 2h}
customers:
  acme:
    credits: [{below: 0.99, credit: 0.05}, {below: 0.9, credit: 0.10}]
  globex:
    credits: [{below: 0.999, credit: 0.02}]
"""
TARGET_MIN = {"P1": 30, "P2": 120}
# (service, priority, opened at HH:MM, response minutes by weekday index 0..4)
PATTERN = [
    ("payments", "P1", "09:00", (10, 20, 45, 5, 25)),   # Wednesdays breach
    ("payments", "P2", "10:00", (30, 150, 60, 20, 90)),  # Tuesdays breach
    ("email", "P2", "11:00", (15, 15, 15, 15, 15)),      # always met
]
GLOBEX = [("payments", "P1", "09:30", (50, 50, 50, 50, 50))]


def weekdays() -> list[date]:
    first = date(2026, 11, 1)
    days = [first + timedelta(days=n) for n in range(30)]
    return [d for d in days if d.weekday() < 5 and d.day <= 27]


def tickets() -> list[tuple[str, str, str, str, str, int]]:
    """(ticket, customer, service, priority, opened ts, response minutes)."""
    found = []
    for day in weekdays():
        for customer, pattern in (("acme", PATTERN), ("globex", GLOBEX)):
            for index, (service, priority, at, minutes) in enumerate(pattern):
                ticket = f"{customer[0].upper()}-{day.isoformat()}-{index}"
                found.append((ticket, customer, service, priority, f"{day}T{at}:00Z",
                              minutes[day.weekday()]))
    return found


def _later(ts: str, minutes: int) -> str:
    hour, minute = int(ts[11:13]), int(ts[14:16]) + minutes
    return f"{ts[:11]}{hour + minute // 60:02d}:{minute % 60:02d}:00Z"


def score(service: str, priority: str, minutes: int) -> int:
    """The survey answer of an acme ticket (see the module's docstring)."""
    if (service, priority) == ("payments", "P2"):
        return 4
    return 5 if minutes <= TARGET_MIN[priority] else 2


def history() -> bytes:
    events = []
    for ticket, customer, service, priority, opened, minutes in tickets():
        responded = _later(opened, minutes)
        events.append({"event_id": f"{ticket}-o", "ticket_id": ticket, "type": "opened",
                       "ts": opened, "service": service, "customer": customer,
                       "priority": priority})
        events.append({"event_id": f"{ticket}-r", "ticket_id": ticket, "type": "responded",
                       "ts": responded})
        if customer == "acme":
            events.append({"event_id": f"{ticket}-c", "ticket_id": ticket, "type": "closed",
                           "ts": _later(responded, 1)})
            events.append({"event_id": f"{ticket}-s", "ticket_id": ticket, "type": "survey",
                           "ts": _later(opened, 180), "score": score(service, priority, minutes),
                           "scale_min": 1, "scale_max": 5})
    events.sort(key=lambda e: e["ts"])
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def expected_csat() -> dict[tuple[str, str], tuple[int, int]]:
    """(service, priority) -> (positive, surveys) of acme's month."""
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for _, who, service, priority, _, minutes in tickets():
        if who == "acme":
            positive, surveys = found.get((service, priority), (0, 0))
            found[(service, priority)] = (positive + (score(service, priority, minutes) >= 4),
                                          surveys + 1)
    return found


def expected(customer: str = "acme") -> dict[tuple[str, str], tuple[int, int]]:
    """(service, priority) -> (met, total) for the month."""
    counts: Counter = Counter()
    for _, who, service, priority, _, minutes in tickets():
        if who == customer:
            counts[(service, priority, "total")] += 1
            counts[(service, priority, "met")] += minutes <= TARGET_MIN[priority]
    return {(s, p): (counts[(s, p, "met")], counts[(s, p, "total")])
            for s, p, kind in list(counts) if kind == "total"}


def breached_tickets(customer: str = "acme") -> set[str]:
    return {t for t, who, _, priority, _, minutes in tickets()
            if who == customer and minutes > TARGET_MIN[priority]}
