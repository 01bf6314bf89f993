"""bench/workerpath.py on a small backlog: the worker's batch path (clock processor, sender,
RocksDB tables, compliance service) gives the breach, warning and outcome ids that replay
gives for the same events, and the benchmark reports every stage.

Speed is not asserted here (bench/ measures it); this keeps the benchmark honest and
working: a path that loses or invents a record makes it exit 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_batch_path_gives_replays_ids_and_a_cost_per_stage() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "workerpath.py"), "--events", "4000",
         "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["same_ids_as_replay"] is True
    assert result["ticket_record_ids"] > 1000  # breaches, warnings and outcomes to compare
    assert result["path"]["messages_produced"] > result["events"]
    stages = result["path"]["us_per_event"]
    assert set(stages) == {"apply", "send", "prepare", "changelog_store", "commit", "fire",
                           "compliance"}
    assert all(cost > 0 for cost in stages.values())
    assert "ids same as replay" in done.stderr
