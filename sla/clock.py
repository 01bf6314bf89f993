"""One SLA clock: a metric's counted time for one cycle of one ticket.

A clock counts working time of its calendar while it runs. It fires its
thresholds (warnings at fractions of the target, then the breach at the
target) at the instant the counted time reaches them, and reports what
happened as `Fact`s that `sla.records` turns into output records.

Counted time is kept as `counted` at the instant `anchor`; while running,
counted_at(t) = counted + calendar.elapsed(anchor, t). `segments` keeps the
running periods of the cycle (flat [from, to, from, to, ...]; an odd length
means the last one is still open) so that a retarget can find the instant a
past threshold was crossed.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from sla.model import WorkingTime

__all__ = ["Clock", "Fact", "IDLE", "RUNNING", "PAUSED", "STOPPED", "CANCELLED", "STATE_NAMES"]

IDLE, RUNNING, PAUSED, STOPPED, CANCELLED = range(5)
STATE_NAMES: Final = ("idle", "running", "paused", "stopped", "cancelled")
# On the wire (stored state) "no retarget pending" stays -1, as the previous release wrote it
# (no instant is negative): state written by either release loads in the other.
_WIRE_NO_RETRO: Final = -1


class Fact(NamedTuple):
    """What a clock did at `instant`: a warning, a breach or its outcome."""

    kind: str  # "warning", "breach" or "outcome"
    threshold: int  # its index: warning i, or the breach at len(warn_at); 0 for an outcome
    instant: int
    deadline: int | None = None  # a breach's: the instant counted time reached the target


# Facts are made on every transition: built as `_tuple(Fact, (kind, threshold, instant,
# deadline))`, which is what Fact(...) does, without the Python-level __new__ in between.
_tuple: Final = tuple.__new__


class Clock:
    """A metric's clock for its current cycle. Mutated in place by the engine's sim."""

    __slots__ = (
        "metric", "cycle", "status", "counted", "anchor", "target", "started_at",
        "fired", "segments", "retro_at", "due",
    )

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.cycle = 0  # set by start(): 0, then one more for each new cycle
        self.status = IDLE
        self.counted = 0
        self.anchor = 0
        self.target = 0
        self.started_at = 0
        self.fired = 0  # bit i: warning i fired; bit n (n = number of warnings): breach fired
        self.segments: list[int] = []
        # A retarget's instant, while thresholds it crossed are unfired; None: no retarget pending.
        self.retro_at: int | None = None
        self.due: int | None = None  # cached instant of the next threshold; None: nothing due

    # -- serialisation -------------------------------------------------------
    def to_wire(self) -> list:
        retro_at = _WIRE_NO_RETRO if self.retro_at is None else self.retro_at
        return [
            self.metric, self.cycle, self.status, self.counted, self.anchor, self.target,
            self.started_at, self.fired, self.segments, retro_at, self.due,
        ]

    @classmethod
    def from_wire(cls, wire: list) -> Clock:
        # cls("") and not cls.__new__(cls): mypyc compiles no __new__ call of its classes
        # (README, Compiled engine); every slot set here is overwritten below.
        clock = cls("")
        (clock.metric, clock.cycle, clock.status, clock.counted, clock.anchor, clock.target,
         clock.started_at, clock.fired, clock.segments, retro_at, clock.due) = wire
        clock.retro_at = None if retro_at == _WIRE_NO_RETRO else retro_at
        return clock

    # -- reading -------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.status == RUNNING or self.status == PAUSED

    def counted_at(self, calendar: WorkingTime, instant: int) -> int:
        if self.status == RUNNING and instant > self.anchor:
            return self.counted + calendar.elapsed(self.anchor, instant)
        return self.counted

    def breach_fired(self, n_warnings: int) -> bool:
        return bool(self.fired >> n_warnings & 1)

    def amount(self, index: int, warn_at: tuple[float, ...]) -> int:
        """Counted ms at which threshold `index` fires (the breach is index len(warn_at))."""
        if index == len(warn_at):
            return self.target
        return round(warn_at[index] * self.target)

    def instant_reached(self, calendar: WorkingTime, amount: int) -> int:
        """The instant, in the past, at which the counted time reached `amount`."""
        segments = self.segments
        reached = 0
        for i in range(0, len(segments), 2):
            start = segments[i]
            end = segments[i + 1] if i + 1 < len(segments) else self.anchor
            span = calendar.elapsed(start, end)
            if reached + span >= amount:
                return calendar.instant_after(start, amount - reached)
            reached += span
        return self.anchor

    def deadline(self, calendar: WorkingTime) -> int | None:
        """The instant the counted time reaches (or reached) the target; None while paused short."""
        if self.counted >= self.target:
            return self.instant_reached(calendar, self.target)
        if self.status == RUNNING:
            return calendar.instant_after(self.anchor, self.target - self.counted)
        return None

    def refresh_due(self, calendar: WorkingTime, warn_at: tuple[float, ...]) -> None:
        """Recompute `due`: the instant of the lowest unfired threshold, if it can fire."""
        self.due = None
        status = self.status
        if status != RUNNING and status != PAUSED:
            return
        n = len(warn_at)
        index = 0
        fired = self.fired
        while index <= n and fired >> index & 1:
            index += 1
        if index > n:
            self.retro_at = None
            return
        amount = self.target if index == n else round(warn_at[index] * self.target)  # amount()
        if amount <= self.counted:  # crossed already: by a retarget, or exactly at a pause
            if self.retro_at is not None:
                self.due = self.retro_at
            elif status == RUNNING:
                self.due = self.anchor
            return
        self.retro_at = None
        if status == RUNNING:
            self.due = calendar.instant_after(self.anchor, amount - self.counted)

    # -- transitions (each at an event's instant) ---------------------------
    def start(self, instant: int, target: int, cycle: int) -> None:
        self.cycle = cycle
        self.status = RUNNING
        self.counted = 0
        self.anchor = instant
        self.started_at = instant
        self.target = target
        self.fired = 0
        self.segments = [instant]
        self.retro_at = None

    def _settle(self, calendar: WorkingTime, instant: int) -> None:
        """Bring `counted` up to `instant` and re-anchor there."""
        if self.status == RUNNING and instant > self.anchor:
            self.counted += calendar.elapsed(self.anchor, instant)
        if instant > self.anchor:
            self.anchor = instant

    def _close_segment(self) -> None:
        if len(self.segments) % 2:
            self.segments.append(self.anchor)

    def _end(self, calendar: WorkingTime, instant: int, status: int) -> None:
        """Settle up to `instant`, close the open segment, and leave the clock in `status`."""
        self._settle(calendar, instant)
        self._close_segment()
        self.status = status
        self.retro_at = None

    def pause(self, calendar: WorkingTime, instant: int) -> None:
        self._settle(calendar, instant)
        self._close_segment()
        self.status = PAUSED

    def resume(self, instant: int) -> None:
        self.anchor = max(self.anchor, instant)
        self.segments.append(self.anchor)
        self.status = RUNNING

    def stop(self, calendar: WorkingTime, instant: int, n_warnings: int) -> list[Fact]:
        """Stop the clock; a clock past its target that never fired breaches now."""
        self._end(calendar, instant, STOPPED)
        outcome = _tuple(Fact, ("outcome", 0, instant, None))
        if self.counted > self.target and not self.fired >> n_warnings & 1:  # breach_fired
            deadline = self.instant_reached(calendar, self.target)
            self.fired = (1 << (n_warnings + 1)) - 1
            return [_tuple(Fact, ("breach", n_warnings, instant, deadline)), outcome]
        return [outcome]

    def cancel(self, calendar: WorkingTime, instant: int) -> list[Fact]:
        self._end(calendar, instant, CANCELLED)
        return [_tuple(Fact, ("outcome", 0, instant, None))]

    def reopen(self, instant: int) -> None:
        """Resume a stopped clock in the same cycle: it cannot breach again; warnings still fire."""
        self.resume(instant)

    def retarget(self, calendar: WorkingTime, instant: int, target: int) -> None:
        """Take a new target, keeping counted time; thresholds already crossed fire at `instant`."""
        self._settle(calendar, instant)
        self.target = target
        self.retro_at = instant

    def fire(self, calendar: WorkingTime, warn_at: tuple[float, ...]) -> Fact:
        """Fire the threshold that is due now (`self.due`)."""
        instant = self.due
        assert instant is not None
        n = len(warn_at)
        index = 0
        while self.fired >> index & 1:
            index += 1
        if index == n:
            # Once breached, the cycle's remaining warnings would only be noise.
            self.fired = (1 << (n + 1)) - 1
            amount = self.target
            deadline = self.instant_reached(calendar, amount) if amount <= self.counted else instant
            fact = _tuple(Fact, ("breach", n, instant, deadline))
        else:
            self.fired |= 1 << index
            fact = _tuple(Fact, ("warning", index, instant, None))
        self.refresh_due(calendar, warn_at)
        return fact
