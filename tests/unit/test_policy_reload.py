"""Policy reload: a changed file is taken; an invalid one is refused and the last good kept."""

from __future__ import annotations

import logging
import os

from agents.policyfile import PolicyWatcher, load_policies
from sla.engine import Engine

GOOD = """\
version: {version}
corporate:
  calendar: 24x7
  targets: {{P1: {{response: {response}, resolution: 4h}}}}
"""


def _write(path, text, mtime):
    path.write_text(text)
    os.utime(path, (mtime, mtime))  # a distinct stamp even within one clock tick


def test_a_changed_file_is_reloaded_and_recorded(tmp_path):
    path = tmp_path / "policies.yaml"
    _write(path, GOOD.format(version=1, response="15m"), 1_000)
    engine = Engine(load_policies(path))
    seen = []
    watcher = PolicyWatcher(path, engine, on_loaded=lambda p, text: seen.append(p.version))
    assert watcher.check() is False  # unchanged
    _write(path, GOOD.format(version=2, response="5m"), 2_000)
    assert watcher.check() is True
    assert engine.policies.version == 2 and seen == [2]
    terms = engine.policies.terms("any", "one")
    assert terms.target_ms("P1", "response") == 300_000


def test_an_invalid_file_is_refused_and_the_last_good_policies_kept(tmp_path, caplog):
    path = tmp_path / "policies.yaml"
    _write(path, GOOD.format(version=1, response="15m"), 1_000)
    engine = Engine(load_policies(path))
    watcher = PolicyWatcher(path, engine)
    _write(path, GOOD.format(version=2, response="5x"), 2_000)
    with caplog.at_level(logging.ERROR):
        assert watcher.reload() is False
    assert engine.policies.version == 1 and watcher.failures == 1
    assert "keeping version 1" in caplog.text and "'5x'" in caplog.text
