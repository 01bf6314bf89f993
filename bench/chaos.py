"""The long chaos run of issue 9: tests/integration/test_chaos.py's scenarios, bigger.

    .venv/bin/python bench/chaos.py                          # everything, full size
    .venv/bin/python bench/chaos.py --only kill9,fuzz --kills 30 --fuzz 200000
    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092 .venv/bin/python bench/chaos.py --only fuzz

Scenarios (tests/integration/chaosruns.py, the same code the tests run): `baseline` (no
fault), `kill9` (kill -9 mid-stream `--kills` times, RocksDB, every kill measured even
when resuming is slow), `downtime` (kill -9 right after tickets closed, down `--down` s,
past the lateness: redelivered events must not be rejected), `inflight` (`--in-flight`
overdue tickets fire while the broker is frozen, then kill -9), `outage` (the broker
stopped `--outage` s under load), `second` (workers join, one leaves, one is killed and
restarted), `fuzz` (`--fuzz` hostile messages, `--huge` of ~1 MB), `policy` (invalid and
non-UTF-8 reloads), `sighup` (SIGHUP before ready), `blkill`, `blwipe`, `blrebal` and
`blrebal0` (a backlog worked through in batches while the worker is killed mid-batch /
killed and restarted without its data directory / a second worker joins and leaves, with
standby copies and without).

Every scenario compares what an outside consumer read with `slamon replay` by id. The
broker: `--bootstrap`, else KAFKA_BOOTSTRAP_SERVERS, else a local one started here;
`inflight` and `outage` always run on a broker of their own (they freeze and stop it).
Set SLAMON_CHAOS_CODE to a source tree (e.g. a `git archive` of a commit) to run the
workers and replay from it.

Prints one JSON object on stdout and a summary line on stderr; exits 1 when any scenario
lost an output or emitted an id replay does not know (other problems are in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the kit lives in tests/integration, not in the package

from tests.integration import chaosruns  # noqa: E402
from tests.integration.chaoskit import CODE_ROOT, OwnBroker, own_broker  # noqa: E402

SCENARIOS = ("baseline", "kill9", "downtime", "inflight", "outage", "second", "fuzz", "policy",
             "sighup", "blkill", "blwipe", "blrebal", "blrebal0")


def _runners(args: argparse.Namespace, shared: Callable[[], str],
             owned: Callable[[], OwnBroker]) -> dict[str, Callable[[Path], chaosruns.Result]]:
    return {
        "baseline": lambda w: chaosruns.baseline(shared(), w, seconds=30.0, rate=args.rate),
        "kill9": lambda w: chaosruns.kill_loop(shared(), w, kills=args.kills, rate=args.rate,
                                               keep_going=True),
        "downtime": lambda w: chaosruns.long_downtime(shared(), w, down=args.down,
                                                      rate=args.rate),
        "inflight": lambda w: chaosruns.in_flight(owned(), w, tickets=args.in_flight),
        "outage": lambda w: chaosruns.broker_outage(owned(), w, outage=args.outage,
                                                    rate=args.rate),
        "second": lambda w: chaosruns.second_worker(shared(), w, rate=args.rate),
        "fuzz": lambda w: chaosruns.fuzz(shared(), w, count=args.fuzz, huge=args.huge),
        "policy": lambda w: chaosruns.policy_reloads(shared(), w),
        "sighup": lambda w: chaosruns.early_sighup(shared(), w),
        # a backlog worked through in batches: killed mid-batch / a second worker joins
        "blkill": lambda w: chaosruns.backlog_kill(shared(), w, kills=max(2, args.kills // 4)),
        "blwipe": lambda w: chaosruns.backlog_kill(shared(), w, kills=max(2, args.kills // 4),
                                                   wipe=True),
        "blrebal": lambda w: chaosruns.backlog_rebalance(shared(), w),
        "blrebal0": lambda w: chaosruns.backlog_rebalance(shared(), w, standby_replicas=0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios (default all: {','.join(SCENARIOS)})")
    parser.add_argument("--kills", type=int, default=20, help="kill -9s in kill9 (default 20)")
    parser.add_argument("--fuzz", type=int, default=100_000,
                        help="hostile messages in fuzz (default 100,000)")
    parser.add_argument("--huge", type=int, default=5, help="~1 MB messages among them")
    parser.add_argument("--in-flight", type=int, default=5_000,
                        help="overdue tickets in inflight (default 5,000)")
    parser.add_argument("--outage", type=float, default=30.0, help="broker outage seconds")
    parser.add_argument("--down", type=float, default=65.0,
                        help="seconds a killed worker stays down in downtime (default 65)")
    parser.add_argument("--rate", type=float, default=20.0, help="tickets opened per second")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="broker for the scenarios that share one")
    parser.add_argument("--work", type=Path, help="keep logs and records here (default: temp)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")

    results: list[chaosruns.Result] = []
    with ExitStack() as stack:
        work = args.work or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="slamon-chaos-")))
        work.mkdir(parents=True, exist_ok=True)
        brokers: dict[str, OwnBroker] = {}

        def owned() -> OwnBroker:
            if "own" not in brokers:
                brokers["own"] = stack.enter_context(own_broker(work / "kafka"))
            return brokers["own"]

        def shared() -> str:
            return args.bootstrap or owned().bootstrap

        runners = _runners(args, shared, owned)
        for name in chosen:
            started = time.monotonic()
            scenario_dir = work / name
            scenario_dir.mkdir(exist_ok=True)
            result = runners[name](scenario_dir)
            result.measured["took_s"] = round(time.monotonic() - started, 1)
            print(result.report(), file=sys.stderr)
            results.append(result)
    out = {"bench": "chaos", "code": str(CODE_ROOT), "cpus": os.cpu_count(),
           "scenarios": [r.as_dict() for r in results], "totals": _totals(results)}
    print(json.dumps(out, indent=2, default=str))
    totals = out["totals"]
    print(f"chaos: {len(results)} scenarios; lost {totals['lost']}, unknown ids "
          f"{totals['unknown_id']}, false breaches {totals['false_breach']}, good rejected "
          f"{totals['good_rejected']}, duplicated {totals['duplicated']}; resume max "
          f"{totals['resume_max_s']} s; problems in {totals['with_problems'] or 'none'}",
          file=sys.stderr)
    return 1 if totals["lost"] or totals["unknown_id"] else 0


def _totals(results: list[chaosruns.Result]) -> dict:
    totals: dict = {name: sum(getattr(r.counts, name) for r in results if r.counts)
                    for name in ("lost", "unknown_id", "false_breach", "reissued",
                                 "good_rejected", "duplicated")}
    resumes = [r.measured.get(key) for r in results for key in
               ("resume_max_s", "resume_s", "resume_after_kill_s")]
    known = [value for value in resumes if isinstance(value, int | float)]
    totals["resume_max_s"] = max(known) if known else None
    totals["with_problems"] = [r.name for r in results if r.problems]
    return totals


if __name__ == "__main__":
    sys.exit(main())
