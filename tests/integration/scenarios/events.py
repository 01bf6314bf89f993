"""The scenario set: every row of the clock table, business hours and a priority change.

All times are in November 2026, before the tests run, so the live monitor (wall clock)
has every deadline behind it, as `slamon replay --as-of` after the last one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ticket(name: str, start: datetime, steps: list[tuple[int, str]], priority: str = "P1",
            customer: str = "acme") -> list[dict]:
    events = [{"event_id": f"{name}-0", "ticket_id": name, "type": "opened", "ts": _ts(start),
               "service": "email", "customer": customer, "priority": priority}]
    for number, (minutes, kind) in enumerate(steps, 1):
        event = {"event_id": f"{name}-{number}", "ticket_id": name, "type": kind,
                 "ts": _ts(start + timedelta(minutes=minutes))}
        if kind.startswith("priority_changed"):
            event["type"], event["priority"] = kind.split(":")
        events.append(event)
    return events


def scenario_events() -> list[dict]:
    tickets = [
        _ticket("met", DAY, [(10, "responded"), (120, "resolved"), (180, "closed")]),
        _ticket("silent", DAY, []),
        _ticket("exact", DAY, [(15, "responded")]),
        _ticket("pause", DAY, [(5, "responded"), (60, "paused"), (180, "resumed"),
                               (360, "resolved")]),
        _ticket("no-response", DAY, [(12, "resolved")]),
        _ticket("reopen", DAY, [(5, "responded"), (120, "resolved"), (180, "reopened"),
                                (240, "resolved")]),
        _ticket("retarget", DAY, [(20, "priority_changed:P1")], priority="P2"),
        _ticket("retarget-early", DAY, [(5, "priority_changed:P1"), (12, "responded")],
                priority="P2"),
        _ticket("cancel", DAY, [(20, "cancelled")]),
        _ticket("closed-final", DAY, [(5, "closed"), (6, "responded")]),
        # Friday 16:00 Berlin (15:00Z): 1 h counted on Friday, response due Mon 09:00 + ...
        _ticket("office", datetime(2026, 11, 6, 15, 0, tzinfo=UTC),
                [(3 * 24 * 60 - 6 * 60 + 30, "responded")], customer="office-co"),
    ]
    events = sorted((e for t in tickets for e in t), key=lambda e: e["ts"])
    duplicate = dict(next(e for e in events if e["event_id"] == "met-1"))
    events.append(duplicate)  # a redelivered event: ignored
    # A late event: `late` responded at +10 min arrives after its pause at +60 min.
    late = _ticket("late", DAY + timedelta(days=1), [(60, "paused"), (10, "responded")])
    return events + late
