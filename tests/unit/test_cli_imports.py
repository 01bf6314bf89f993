"""The command line builds its parser without importing Faust or a Kafka client.

Every `slamon` invocation builds the parser, which imports each command module: those must
keep Kafka and Faust imports inside `run()` so that `slamon replay --help` starts fast.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("faust", "aiokafka", "kafka", "mode", "rocksdict")


def test_building_the_parser_imports_nothing_heavy() -> None:
    script = (
        "import sys\n"
        "from agents.cli import build_parser\n"
        "build_parser()\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_worker_and_kafka_commands_exist() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agents.cli", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "worker" in result.stdout and "kafka" in result.stdout
