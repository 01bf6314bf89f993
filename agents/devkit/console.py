"""What `slamon demo` prints: a line per breach, warning and credit as they fire, and a summary.

`Console.record(record)` takes the records of the output topics (breaches, warnings,
outcomes, compliance), keeps the counts a consumer would (a retraction withdraws; an outcome
counts at its latest revision) and prints a line for what a person watching wants to see:
each breach and warning, and one line per closed compliance period (the records of a
period arrive in a burst: they are summed up once `settle` seconds pass without another).
On a terminal the summary line is rewritten in place under those lines; elsewhere (a pipe,
a log) it is printed as a line of its own every `every` seconds.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from typing import Any, TextIO

__all__ = ["Console"]

_CLEAR = "\r\x1b[K"


class Console:
    def __init__(self, out: TextIO | None = None, tty: bool | None = None,
                 every: float = 10.0, settle: float = 2.0) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.every = every
        self.settle = settle
        self._periods: dict[tuple[str, str], list[dict[str, Any]]] = {}  # not printed yet
        self._period_seen: dict[tuple[str, str], float] = {}
        self.started = time.monotonic()
        self.events_sent = 0
        self.breaches: set[str] = set()
        self.warnings: set[str] = set()
        self.outcomes: dict[str, tuple[int, str]] = {}  # clock -> (revision, status)
        self.statuses: Counter[str] = Counter()
        self.windows: set[str] = set()
        self._summary_at = time.monotonic()

    # -- records -------------------------------------------------------------------------------
    def record(self, rec: dict[str, Any]) -> None:
        kind = rec.get("kind")
        if kind == "breach" and rec["id"] not in self.breaches:
            self.breaches.add(rec["id"])
            self.say(_breach_line(rec))
        elif kind == "warning" and rec["id"] not in self.warnings:
            self.warnings.add(rec["id"])
            self.say(_warning_line(rec))
        elif kind == "outcome":
            self._outcome(rec)
        elif kind == "retraction":
            self._retraction(rec)
        elif kind == "compliance" and rec["id"] not in self.windows:
            self.windows.add(rec["id"])
            period = (str(rec["window"]), str(rec["window_start"]))
            self._periods.setdefault(period, []).append(rec)
            self._period_seen[period] = time.monotonic()

    def _outcome(self, rec: dict[str, Any]) -> None:
        clock = f"{rec['ticket_id']}:{rec['metric']}:{rec.get('cycle', 0)}"
        revision = int(rec.get("revision") or 0)
        known = self.outcomes.get(clock)
        if known is not None and known[0] >= revision:
            return
        if known is not None:
            self.statuses[known[1]] -= 1
        self.outcomes[clock] = (revision, str(rec["status"]))
        self.statuses[str(rec["status"])] += 1

    def _retraction(self, rec: dict[str, Any]) -> None:
        withdrawn = str(rec.get("retracts"))
        what = rec.get("retracts_kind")
        if what == "breach" and withdrawn in self.breaches:
            self.breaches.discard(withdrawn)
            self.say(f"{_clock(rec.get('at'))}  withdrawn  breach of {rec['ticket_id']} "
                     f"{rec['metric']}: a late event shows it was met")
        elif what == "warning":
            self.warnings.discard(withdrawn)
        elif what == "outcome":
            clock = withdrawn.rsplit(":outcome:", 1)[0]
            known = self.outcomes.pop(clock, None)
            if known is not None:
                self.statuses[known[1]] -= 1

    # -- output --------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        """Print a line above the summary (which is redrawn after it on a terminal)."""
        if self.tty:
            self.out.write(f"{_CLEAR}{line}\n{self.summary()}")
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def _flush_periods(self, everything: bool = False) -> None:
        now = time.monotonic()
        for period, seen in list(self._period_seen.items()):
            if everything or now - seen >= self.settle:
                del self._period_seen[period]
                self.say(_period_line(period, self._periods.pop(period)))

    def tick(self) -> None:
        """Refresh the summary: redraw it in place, or print it now and then."""
        self._flush_periods()
        now = time.monotonic()
        if self.tty:
            self.out.write(_CLEAR + self.summary())
            self.out.flush()
        elif now - self._summary_at >= self.every:
            self._summary_at = now
            self.out.write(self.summary() + "\n")
            self.out.flush()

    def finish(self) -> None:
        self._flush_periods(everything=True)
        self.out.write((_CLEAR if self.tty else "") + self.summary() + "\n")
        self.out.flush()

    def summary(self) -> str:
        """One short line; cut to the terminal's width there (a wrapped line cannot be redrawn)."""
        elapsed = int(time.monotonic() - self.started)
        line = (f"[{elapsed // 60:02d}:{elapsed % 60:02d}] events {self.events_sent} · "
                f"breaches {len(self.breaches)} · warnings {len(self.warnings)} · "
                f"met {self.statuses['met']} · breached {self.statuses['breached']} · "
                f"windows {len(self.windows)}")
        if self.tty:
            line = line[:max(20, shutil.get_terminal_size().columns - 1)]
        return line


def _clock(ts: Any) -> str:
    """RFC 3339 UTC -> "14:03:07.250" (the time of day, as the demo runs now)."""
    text = str(ts or "")
    return text[11:23].rstrip("Z") if len(text) >= 19 else text


def _who(rec: dict[str, Any]) -> str:
    return (f"{rec.get('customer')}/{rec.get('service')} {rec.get('priority')} "
            f"{rec.get('metric')}")


def _seconds(value: Any) -> str:
    number = float(value or 0)
    return f"{number:g}s" if number < 120 else f"{number / 60:g}m"


def _breach_line(rec: dict[str, Any]) -> str:
    late = ""
    if rec.get("detected_at") and rec.get("breached_at"):
        from sla.events import parse_ts

        delay = (parse_ts(rec["detected_at"]) - parse_ts(rec["breached_at"])) / 1000
        late = f", detected +{delay:.2f}s"
    return (f"{_clock(rec.get('breached_at'))}  BREACH     {rec['ticket_id']:<8} {_who(rec)}: "
            f"target {_seconds(rec.get('target_seconds'))} passed{late}")


def _warning_line(rec: dict[str, Any]) -> str:
    used = f"{float(rec.get('threshold') or 0):.0%}"
    return (f"{_clock(rec.get('at'))}  warning    {rec['ticket_id']:<8} {_who(rec)}: {used} of "
            f"{_seconds(rec.get('target_seconds'))} used, "
            f"{_seconds(rec.get('remaining_seconds'))} left")


def _period_line(period: tuple[str, str], records: list[dict[str, Any]]) -> str:
    """A closed period in one line: its windows, how many clocks met, the credits owed."""
    kind, start = period
    met = sum(int(r["met"]) for r in records)
    total = sum(int(r["total"]) for r in records)
    credits: dict[str, float] = {}
    for r in records:
        if r.get("credit"):
            credits[r["customer"]] = max(credits.get(r["customer"], 0.0), float(r["credit"]))
    owed = ", ".join(f"{c} up to {v:.0%}" for c, v in sorted(credits.items())) or "none"
    ratio = met / total if total else 1.0
    name = {"hour": f"hour {start[11:16]} UTC", "day": f"day {start[:10]}",
            "month": f"month {start[:7]}"}.get(kind, f"{kind} {start}")
    return (f"{_clock(records[0].get('window_end'))}  compliance {name} closed: {len(records)} "
            f"windows, {met} of {total} clocks met ({ratio:.1%}); credits owed: {owed}")
