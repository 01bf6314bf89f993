"""Chaos while a worker catches up on a backlog (issue 10): the batch path under a kill and
under a rebalance.

Both scenarios put a backlog on the events topic before any worker reads it
(chaosbacklog.fill: tens of thousands of events, so each partition is handled in many
batches of up to 1,000 records), start a RocksDB worker on it, break something while
the backlog is being worked through, and compare every output topic with `slamon replay`
by id (chaoscompare): nothing replay computes may be missing, no id replay does not know
may appear, no breach replay does not fire; duplicates are allowed.

"Mid-backlog" is seen from outside: a worker's applied-events counter (/metrics, per
process) and the group's committed offsets against the backlog's end offsets. Each
scenario records both at the moment it acts and reports a harness problem when it acted
outside the backlog (too early, or after it was done): then it did not test what it says.

- `backlog_kill`: SIGKILL once the worker applied a random 20-60 % of the backlog (and a
  random part of a batch later), restarted at once, `kills` times; with `wipe`, restarted
  without its data directory, so its tables are rebuilt from their changelogs;
- `backlog_rebalance`: a second worker joins once the first applied a batch (the first is
  frozen while the second starts up, so the join lands mid-backlog however fast it is),
  works a few batches of the backlog on the partitions it took (proof it joined
  mid-backlog: only backlog is on the topic), then leaves (SIGTERM) with backlog left.
  Workers are static members: the leaver's partitions stay with it until `session_timeout`
  (12 s here), then move back to the first worker.
"""

from __future__ import annotations

import random
import shutil
import signal
import sys
import time
from pathlib import Path

from tests.integration.chaosbacklog import BACKLOG_POLICY, Backlog, Progress, fill
from tests.integration.chaoskit import ChaosWorker
from tests.integration.chaosrig import RESUME_WAIT, Result, Rig

__all__ = ["backlog_kill", "backlog_rebalance"]

BATCH = 1000  # the batch path's largest batch: "into the backlog" = at least one applied
# The least backlog left that a kill at a random 20-60 % of it still lands inside: a worker
# applies 10,000-15,000 events a second between the poll that sees the target and the kill.
MIN_KILL_SPAN = 15 * BATCH
DRAIN_WAIT = 150.0  # seconds to wait for the rest of the backlog after the last fault


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _start(rig: Rig, tickets: int, seed: int) -> tuple[Backlog, Progress, ChaosWorker]:
    """Fill the backlog, start the first worker on it, open the outside reader."""
    backlog = fill(rig.traffic, tickets, seed=seed)
    _say(f"backlog: {backlog.events} events of {backlog.tickets} tickets on "
         f"{len(backlog.ends)} partitions in {backlog.seconds} s")
    progress = Progress(rig.bootstrap, rig.app_id, rig.traffic.topic, backlog)
    worker = rig.worker()
    worker.launch()
    rig.read()  # returns once the worker declared the output topics
    rig.result.measured |= {"backlog_events": backlog.events, "tickets": backlog.tickets,
                            "fill_s": backlog.seconds}
    return backlog, progress, worker


def _moment(progress: Progress, worker: ChaosWorker, since: float) -> dict:
    """Where the backlog stands now: `worker`'s applied events and share, the committed share."""
    applied = progress.applied(worker)
    share = None if applied is None else round(applied / progress.backlog.events, 3)
    return {"t_s": round(time.time() - since, 1), "applied": applied, "applied_share": share,
            "committed_share": progress.committed_share()}


def _finish(rig: Rig, backlog: Backlog, since: float, last_fault: float, label: str) -> Result:
    """Wait for the rest of the backlog (a probe behind it on every partition), compare."""
    drained = rig.resume_time(last_fault, label, wait=DRAIN_WAIT)
    rig.result.measured[f"drained_after_{label}_s"] = drained
    if drained is None:
        rig.result.problems.append(f"the backlog was not worked through within "
                                   f"{DRAIN_WAIT:.0f} s of the last fault")
    result = rig.finish(quiet_after=backlog.quiet_after)
    breaches = {r["id"] for r in rig.replayed if r.get("kind") == "breach"}
    seen = {s.id for s in rig.read().on(rig.prefix + "breaches") if s.kind == "breach"}
    result.measured |= {"breaches_replay": len(breaches), "breaches_seen": len(seen & breaches),
                        "run_s": round(time.time() - since, 1)}
    for worker in rig.workers:
        crashes = worker.crash_lines()
        if crashes:
            result.problems.append(f"{worker.name} logged {len(crashes)} crash lines, e.g. "
                                   f"{crashes[0][:200]}")
    return result


def _launch_frozen(progress: Progress, first: ChaosWorker, second: ChaosWorker,
                   session_timeout: int) -> float:
    """Launch `second` with `first` frozen (SIGSTOP) until the second asks to join the group
    (the group leaves Stable), or for at most `session_timeout` less 2 s so the first stays
    a member; the seconds it was frozen.

    The second's start-up (Python, the app, RocksDB) takes seconds in which the first would
    otherwise work through much of the backlog, so whether the join landed mid-backlog would
    depend on how fast the first is; frozen, it has not moved when the rebalance begins.
    """
    frozen = time.monotonic()
    first.signal(signal.SIGSTOP)
    try:
        second.launch()
        limit = frozen + max(1.0, session_timeout - 2.0)
        while time.monotonic() < limit and second.alive:
            if progress.group_state() not in (None, "Stable"):
                break
            time.sleep(0.05)
    finally:
        first.signal(signal.SIGCONT)
    return round(time.monotonic() - frozen, 1)


def backlog_kill(bootstrap: str, work: Path, tickets: int = 8000, kills: int = 2,
                 seed: int = 31, wipe: bool = False) -> Result:
    """SIGKILL a RocksDB worker `kills` times while it works through a backlog, each time
    once this process applied a random 20-60 % of what was left of it (then a random part of
    a batch later), restarted at once. Everything replay computes must arrive, nothing else.
    With `wipe`, its data directory is deleted before each restart (a pod rescheduled
    without its volume): it rebuilds every table from the changelogs first.

    "Left" is what the worker had not committed at the kill before (all of it at first): a
    share of the whole backlog outgrew what a fast worker left after a few kills. Once less
    than `MIN_KILL_SPAN` is left, a kill cannot land inside it (the worker applies thousands
    of events between the poll and the kill), so the kills stop there: `measured` says so."""
    rng = random.Random(seed)
    rig = Rig(bootstrap, work, "blwipe" if wipe else "blkill", partitions=4,
              policy=BACKLOG_POLICY.format(version=1))
    progress: Progress | None = None
    try:
        since = time.time()
        backlog, progress, worker = _start(rig, tickets, seed)
        moments = []
        killed = since
        remaining = backlog.events
        for kill in range(kills):
            if remaining < MIN_KILL_SPAN:
                rig.result.measured["kills_skipped"] = (
                    f"{kills - kill} of {kills}: {remaining} events left, too few to kill "
                    f"the worker inside them")
                break
            target = round(rng.uniform(0.2, 0.6) * remaining)
            reached = progress.wait_applied(worker, target, RESUME_WAIT)
            if reached is None:
                rig.result.problems.append(f"kill {kill + 1}: the worker did not apply "
                                           f"{target} events within {RESUME_WAIT:.0f} s")
                break
            time.sleep(rng.uniform(0.0, 0.3))  # somewhere inside a batch
            moment = _moment(progress, worker, since)
            killed = time.time()
            worker.kill()
            if wipe:
                shutil.rmtree(worker.env["SLAMON_DATA_DIR"])
            worker.launch()
            left = progress.left()
            moment |= {"target": target, "left": sum(left.values())}
            moments.append(moment)
            _say(f"kill -9 #{kill + 1}: {moment}")
            applied = moment["applied"]
            if applied is None or not 0.1 <= applied / remaining <= 0.9 or not left:
                rig.result.problems.append(f"kill {kill + 1} was not mid-backlog (harness): "
                                           f"{moment}")
                break
            remaining = sum(left.values())
        rig.result.measured["kills"] = moments
        return _finish(rig, backlog, since, killed, "kill")
    finally:
        if progress is not None:
            progress.close()
        rig.close()


def backlog_rebalance(bootstrap: str, work: Path, tickets: int = 16000,
                      leave_after: int = 3 * BATCH, session_timeout: int = 12,
                      seed: int = 37, standby_replicas: int = 1) -> Result:
    """A second RocksDB worker joins while the first works through a backlog, applies
    `leave_after` events of its share, and leaves (SIGTERM, a random part of a batch
    later); its partitions return to the first after `session_timeout`. Everything replay
    computes must arrive, nothing else. With `standby_replicas` 0, no worker keeps a copy of
    the other's tables: each partition that moves is rebuilt from its changelog first."""
    rng = random.Random(seed)
    # A heartbeat each second: the first worker, thawed once the second asks to join, learns
    # of the rebalance at its next heartbeat and works on until then. With a third of the
    # session (4 s) a fast worker emptied the second's partitions before it got them.
    # 16,000 tickets (~84,000 events): with 8,000, a worker whose compliance had become
    # cheaper had done two thirds of the backlog before the second took its partitions, and
    # the second emptied them before it could leave mid-backlog.
    rig = Rig(bootstrap, work, "blrebal" if standby_replicas else "blrebal0", partitions=4,
              policy=BACKLOG_POLICY.format(version=1),
              SLAMON_SESSION_TIMEOUT=str(session_timeout), SLAMON_HEARTBEAT_INTERVAL="1",
              SLAMON_STANDBY_REPLICAS=str(standby_replicas))
    progress: Progress | None = None
    problems = rig.result.problems
    try:
        since = time.time()
        backlog, progress, first = _start(rig, tickets, seed)
        if progress.wait_applied(first, BATCH, RESUME_WAIT) is None:
            problems.append(f"the first worker applied no batch within {RESUME_WAIT:.0f} s")
            return rig.result
        second = rig.worker()
        join = {"first": _moment(progress, first, since)}
        join["first_frozen_s"] = _launch_frozen(progress, first, second, session_timeout)
        ready = second.wait_ready(RESUME_WAIT)
        working = progress.wait_applied(second, BATCH, RESUME_WAIT)
        join["second_working"] = _moment(progress, first, since)
        _say(f"second worker joined: ready after {ready and round(ready, 1)} s, {join}")
        # Joined mid-backlog: the first was into it, and the second found `leave_after`
        # events of it on the partitions it took (only backlog is on the topic yet).
        if working is None or progress.wait_applied(second, leave_after, RESUME_WAIT) is None:
            problems.append(f"the second worker did not apply {leave_after} events of the "
                            f"backlog (harness: joined after it, or too slow): {join}")
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere inside a batch
        left, owned = progress.left(), progress.owned(second)
        leave: dict[str, object] = {"second": _moment(progress, second, since), "left": left,
                                    "second_owns": owned}
        leaving = time.time()
        code = second.terminate()
        leave["exit"] = code
        _say(f"second worker left: {leave}")
        if not set(owned or backlog.ends) & set(left):  # owner unknown: any partition
            problems.append(f"the second worker left with no backlog left on its partitions "
                            f"(harness): {leave}")
        if code != 0:
            problems.append(f"the leaving worker exited with {code} on SIGTERM")
        rig.result.measured |= {"second_ready_s": ready and round(ready, 1), "join": join,
                                "leave": leave}
        return _finish(rig, backlog, since, leaving, "leave")
    finally:
        if progress is not None:
            progress.close()
        rig.close()
