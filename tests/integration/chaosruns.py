"""The chaos scenarios of issue 9, each a function the tests run small and bench/chaos.py long.

Each scenario builds a `Rig` (one deployment: a policy file, workers, traffic, an outside
reader), breaks something the way an operator's bad day would, lets the monitor recover,
compares its topics with `slamon replay` by id (chaoscompare) and returns a `Result`:
counts, what it measured (resume times, log rates, ...) and `problems`, the list of
everything that breaks issue 9's targets. The caller prints `result.report()` and fails
on `problems`; nothing here asserts, so a long run reports everything it saw. The two
scenarios on a backlog (issue 10's batch path) live in chaoscatchup and are named here too.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.chaoscatchup import backlog_kill, backlog_rebalance
from tests.integration.chaoscompare import dlq_coverage
from tests.integration.chaosfuzz import fuzz_messages
from tests.integration.chaoskit import CODE_ROOT, ChaosWorker, OwnBroker, free_port
from tests.integration.chaosrig import LIMITS, RESUME_LIMIT, RESUME_WAIT, Result, Rig
from tests.integration.chaostraffic import policy_text

__all__ = ["RESUME_LIMIT", "Result", "Rig", "backlog_kill", "backlog_rebalance", "baseline",
           "broker_outage", "early_sighup", "fuzz", "in_flight", "kill_loop", "long_downtime",
           "policy_reloads", "second_worker"]

def baseline(bootstrap: str, work: Path, seconds: float = 10.0, rate: float = 10.0) -> Result:
    """No fault at all: the control that shows the comparison itself reports zeros."""
    rig = Rig(bootstrap, work, "baseline", rate=rate)
    try:
        rig.worker().start()
        rig.read()
        rig.traffic.start()
        time.sleep(seconds)
        return rig.finish()
    finally:
        rig.close()


def kill_loop(bootstrap: str, work: Path, kills: int = 5, rate: float = 10.0,
              gap: tuple[float, float] = (1.0, 3.0), keep_going: bool = False,
              seed: int = 9) -> Result:
    """kill -9 mid-stream `kills` times (RocksDB), restart at once; resume time per kill.

    Unless `keep_going`, the loop ends at the first resume slower than 3 x RESUME_LIMIT
    (each would cost as much): the comparison still covers everything sent until then.
    """
    rng = random.Random(seed)
    rig = Rig(bootstrap, work, "kill9", rate=rate)
    try:
        worker = rig.worker()
        worker.start()
        rig.read()
        rig.traffic.start()
        resumes: list[float | None] = []
        for kill in range(kills):
            time.sleep(rng.uniform(*gap))
            killed = time.time()
            worker.kill()
            worker.launch()
            resume = rig.resume_time(killed, f"k{kill}")
            resumes.append(resume)
            shown = f"> {RESUME_WAIT:.0f}" if resume is None else f"{resume}"
            print(f"kill -9 #{kill + 1}: processing resumed after {shown} s", file=sys.stderr)
            rig.check_resume(resume, f"kill -9 #{kill + 1}")
            if not keep_going and (resume is None or resume > 3 * LIMITS["resume"]):
                break  # blind for long: each further kill would cost as much
        rig.result.measured |= {"kills": len(resumes), "resume_s": resumes,
                                "resume_max_s": max((r or 999.0) for r in resumes)}
        if len(resumes) < kills:
            rig.result.problems.append(f"stopped after {len(resumes)} of {kills} kills")
        return rig.finish()
    finally:
        rig.close()


def long_downtime(bootstrap: str, work: Path, down: float = 65.0, rate: float = 10.0,
                  ) -> Result:
    """kill -9 right after tickets closed (their events not yet committed), down for `down`
    s (beyond the lateness, when a closed ticket shrinks to a tombstone), restarted: the
    redelivered events are duplicates to skip, never `ticket_closed` rejects."""
    rig = Rig(bootstrap, work, "downtime", rate=rate)
    try:
        worker = rig.worker()
        worker.start()
        rig.read()
        rig.traffic.start()
        time.sleep(4.0)
        rig.traffic.hold()  # every follow-up sent: the fast tickets are closed
        worker.kill()  # within the commit interval of the last events
        time.sleep(down)
        restarted = time.time()
        worker.launch()
        resume = rig.resume_time(restarted, "back")
        rig.result.measured |= {"down_s": down, "resume_after_restart_s": resume}
        rig.check_resume(resume, f"a restart after {down:.0f} s down")
        return rig.finish()
    finally:
        rig.close()


def in_flight(broker: OwnBroker, work: Path, tickets: int = 500, age: float = 10.0) -> Result:
    """Outputs in flight at the kill: overdue tickets wait on the topic for a stopped worker;
    it starts, fetches them in one go and fires their breaches; at its first output seen
    the broker is frozen (the rest stay unacknowledged), the worker SIGKILLed, the broker
    thawed and the worker restarted. Every breach and warning must arrive in the end."""
    rig = Rig(broker.bootstrap, work, "inflight")
    try:
        worker = rig.worker()
        worker.start()  # declares the topics
        reader = rig.read()
        worker.terminate()
        overdue = set(rig.traffic.overdue(tickets, age))
        worker.launch()
        fired = reader.until(lambda seen: any(k[2] in overdue for k in reader.first), 90)
        broker.freeze()
        try:
            time.sleep(2.0)  # the worker applies the rest; its sends wait on the broker
            worker.kill()
        finally:
            broker.thaw()
        before = sum(1 for s in reader.seen if s.record and s.record.get("ticket_id") in overdue)
        killed = time.time()
        worker.launch()
        resume = rig.resume_time(killed, "after")
        rig.result.measured |= {"tickets": tickets, "outputs_seen_before_freeze": before,
                                "resume_s": resume}
        if not fired:
            rig.result.problems.append("no output of the overdue tickets within 90 s (harness)")
        rig.check_resume(resume, "kill -9 with outputs in flight")
        return rig.finish()
    finally:
        rig.close()


def broker_outage(broker: OwnBroker, work: Path, outage: float = 20.0, rate: float = 10.0,
                  ) -> Result:
    """Stop the (own) broker under load for `outage` s, start it again; the worker must
    recover by itself, not flood its log, and not report ready while the broker is gone."""
    # /readyz turns 503 after this long without the broker (the default is longer)
    rig = Rig(broker.bootstrap, work, "outage", rate=rate, SLAMON_BROKER_UNREACHABLE_AFTER="5")
    try:
        worker = rig.worker()
        worker.start()
        rig.read()
        rig.traffic.start()
        time.sleep(2)
        rig.traffic.hold()
        log_from = worker.log_bytes()
        stopping = time.time()
        broker.stop()
        down = time.time()
        ready_codes = []
        while time.time() - down < outage:
            ready_codes.append(worker.get("/readyz", timeout=1.0)[0])
            time.sleep(1.0)
        lines = len(worker.log_lines(log_from))
        rate_per_s = round(lines / (time.time() - down), 1)
        starting = time.time()
        broker.start()
        up = time.time()
        rig.result.measured |= {"broker_stop_s": round(down - stopping, 1),
                                "broker_start_s": round(up - starting, 1)}
        resume = rig.resume_time(up, "up")  # before the traffic: its producer reconnects
        rig.traffic.resume()
        time.sleep(3)
        late_codes = ready_codes[len(ready_codes) // 2:]
        rig.result.measured |= {"outage_s": outage, "log_lines_per_s": rate_per_s,
                                "readyz_codes": "".join("R" if c == 200 else "n"
                                                        for c in ready_codes),
                                "resume_after_broker_up_s": resume, "alive": worker.alive}
        if not worker.alive:
            rig.result.problems.append("the worker died during the broker outage")
        if rate_per_s > 20:
            rig.result.problems.append(f"log flood: {rate_per_s} lines/s while the broker "
                                       "was down")
        if late_codes and all(code == 200 for code in late_codes):
            rig.result.problems.append(f"/readyz answered 200 throughout the second half of "
                                       f"a {outage:.0f} s broker outage")
        if resume is None:  # issue 9 sets no bound here beyond recovering by itself
            rig.result.problems.append(f"processing did not resume within {RESUME_WAIT:.0f} s "
                                       "of the broker coming back")
        return rig.finish()
    finally:
        rig.close()


def second_worker(bootstrap: str, work: Path, phase: float = 2.0, rate: float = 10.0,
                  ) -> Result:
    """A second worker joins a running one, is killed (SIGKILL) and restarted at once, as
    an orchestrator would (processing resumes within RESUME_LIMIT of the kill), then leaves
    (SIGTERM) and the first takes its partitions back (measured, not bounded by issue 9)."""
    rig = Rig(bootstrap, work, "second", partitions=4, rate=rate)
    try:
        first = rig.worker()
        first.start()
        rig.read()
        rig.traffic.start()
        time.sleep(phase)
        second = rig.worker()
        second.launch()
        joined = second.wait_ready(RESUME_WAIT)
        time.sleep(phase)
        killed = time.time()
        second.kill()
        second.launch()
        after_kill = rig.resume_time(killed, "killed")
        time.sleep(phase)
        left = time.time()
        code = second.terminate()
        after_leave = rig.resume_time(left, "left")
        rig.result.measured |= {"join_ready_s": joined and round(joined, 1),
                                "resume_after_kill_s": after_kill, "leave_exit": code,
                                "resume_after_leave_s": after_leave}
        if joined is None:
            rig.result.problems.append(f"the second worker was not ready within "
                                       f"{RESUME_WAIT:.0f} s of joining")
        rig.check_resume(after_kill, "the second worker was killed and restarted")
        if code != 0:
            rig.result.problems.append(f"the leaving worker exited with {code} on SIGTERM")
        if after_leave is None:  # issue 9 bounds the resume after a kill, not after a leave
            rig.result.problems.append("processing did not resume after the second worker "
                                       "left")
        return rig.finish()
    finally:
        rig.close()


def fuzz(bootstrap: str, work: Path, count: int = 10_000, huge: int = 3, rate: float = 20.0,
         seed: int = 11) -> Result:
    """`count` hostile messages among good ones (some good ones keyed wrong): each bad one
    in the DLQ with a reason, the worker alive, the good ones processed as replay says."""
    rig = Rig(bootstrap, work, "fuzz", rate=rate, wrong_key_share=0.5)
    try:
        worker = rig.worker()
        worker.start()
        rig.read()
        rig.traffic.start()
        time.sleep(1.0)
        keys = [f"{rig.traffic.tag}-{n}".encode() for n in range(1, 300)]
        rig.traffic.inject(fuzz_messages(random.Random(seed), count, keys, huge=huge))
        while not rig.traffic.injected_all():
            time.sleep(0.2)
        time.sleep(3.0)
        result = rig.finish()
        missing, reasons, found = dlq_coverage(rig.read().seen, rig.dlq, rig.traffic.sent)
        crashes = worker.crash_lines()
        result.measured |= {"bad_sent": count, "bad_in_dlq_with_reason": found,
                            "bad_missing": dict(missing), "reasons": dict(reasons),
                            "alive": worker.alive, "crash_lines": len(crashes)}
        if missing:
            result.problems.append(f"{sum(missing.values())} bad messages not in the DLQ "
                                   f"with a reason: {dict(missing)}")
        if not worker.alive:
            result.problems.append("the worker died on input")
        if crashes:
            result.problems.append(f"the worker logged {len(crashes)} crash lines, "
                                   f"e.g. {crashes[0][:200]}")
        return result
    finally:
        rig.close()


NOT_UTF8 = b"version: 3\ncorporate:\n  calendar: \xff\xfe24x7\n"
INVALID_YAML = "version: 2\ncorporate:\n  targets: {P1: [unclosed\n"


def policy_reloads(bootstrap: str, work: Path) -> Result:
    """An invalid and a non-UTF-8 policy file, by file watch and SIGHUP: the worker keeps
    version 1 and its clocks; the CLI refuses the bad file without a traceback."""
    rig = Rig(bootstrap, work, "policy")
    result = rig.result
    try:
        worker = rig.worker()
        worker.start()
        rig.read()
        versions = {"start": worker.policy_version()}
        for label, content in (("invalid", INVALID_YAML.encode()), ("not_utf8", NOT_UTF8)):
            rig.policies.write_bytes(content)
            time.sleep(2.5)  # the file watch looks every 2 s
            versions[f"{label}_watch"] = worker.policy_version()
            worker.signal(signal.SIGHUP)
            time.sleep(1.0)
            versions[f"{label}_sighup"] = worker.policy_version()
        alive = worker.alive
        rig.traffic.start()
        time.sleep(2.0)
        rig.finish()  # judged by version 1: the clocks started after the bad reloads too
        rig.policies.write_text(policy_text(version=4, response=5))
        time.sleep(2.5)
        versions["valid_watch"] = worker.policy_version()
        refused = sum("reload refused" in line for line in worker.log_lines())
        cli = {command: _cli_refuses(command, rig, worker) for command in
               ("replay", "check-config", "worker")}
        result.measured |= {"versions": versions, "alive": alive, "refusals_logged": refused,
                            "cli": cli}
        if not alive:
            result.problems.append("the worker died on a bad policy reload")
        kept = [k for k, v in versions.items() if k != "valid_watch" and v != 1]
        if kept:
            result.problems.append(f"policy version not kept at 1: {versions}")
        if versions["valid_watch"] != 4:
            result.problems.append(f"a valid file was not taken: {versions} (watcher broken?)")
        result.problems += [f"slamon {c}: {why}" for c, why in cli.items() if why != "ok"]
        return result
    finally:
        rig.close()


def _cli_refuses(command: str, rig: Rig, worker: ChaosWorker) -> str:
    """'ok' when `slamon <command>` refuses the non-UTF-8 file with status 2 and a reason."""
    bad = rig.work / "not-utf8.yaml"
    bad.write_bytes(NOT_UTF8)
    events = rig.work / "none.jsonl"
    events.write_text("")
    argv = {"replay": ["replay", "--policies", str(bad), "--events", str(events)],
            "check-config": ["check-config", str(bad)], "worker": ["worker"]}[command]
    env = worker.env | {"SLAMON_POLICIES": str(bad), "SLAMON_WEB_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "agents.cli", *argv], cwd=CODE_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    if "Traceback" in output:
        return f"traceback (exit {done.returncode}): {output.strip().splitlines()[-1][:150]}"
    if done.returncode == 0 or "UTF-8" not in output:
        return f"exit {done.returncode} without naming the encoding: {output.strip()[:150]}"
    return "ok"


def early_sighup(bootstrap: str, work: Path, first: float = 1.0, every: float = 0.5) -> Result:
    """SIGHUP from `first` s after launch, every `every` s until ready: on a fresh start and
    on a restart after kill -9. The worker must survive each and become ready."""
    rig = Rig(bootstrap, work, "sighup")
    result = rig.result
    try:
        worker = rig.worker()
        for phase in ("fresh", "after_kill9"):
            if phase == "after_kill9":
                rig.read()
                rig.traffic.start()
                time.sleep(3.0)
                worker.kill()
            worker.launch()
            hups, ready = _hup_until_ready(worker, first, every)
            result.measured |= {f"{phase}_sighups": hups, f"{phase}_ready_s": ready}
            if not worker.alive:
                at = first + (hups - 1) * every
                code = worker.process.returncode if worker.process else None
                result.problems.append(f"{phase}: SIGHUP #{hups}, {at:.1f} s after launch, "
                                       f"killed the worker before it was ready (exit {code})")
                return result
            if ready is None:
                result.problems.append(f"{phase}: not ready within {RESUME_WAIT:.0f} s")
                return result
        return rig.finish()
    finally:
        rig.close()


def _hup_until_ready(worker: ChaosWorker, first: float, every: float,
                     ) -> tuple[int, float | None]:
    time.sleep(first)
    hups = 0
    deadline = time.monotonic() + RESUME_WAIT
    while time.monotonic() < deadline and worker.alive:
        if worker.get("/readyz", timeout=1.0)[0] == 200:
            return hups, round(time.time() - worker.launched_at, 1)
        worker.signal(signal.SIGHUP)
        hups += 1
        time.sleep(every)
    return hups, None
