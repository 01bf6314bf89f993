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


def _configmap_update(volume, files, stamp):
    """What the kubelet does to a ConfigMap volume (its AtomicWriter): the files go into a new
    `..<timestamp>` directory, `..data` is swapped to it by a rename, each file is a symlink
    `name -> ..data/name` made once, and the old directory is removed."""
    new = volume / f"..{stamp}"
    new.mkdir()
    for name, (text, mtime) in files.items():
        _write(new / name, text, mtime)
    old = os.readlink(volume / "..data") if (volume / "..data").is_symlink() else None
    os.symlink(new.name, volume / "..data_tmp")
    os.replace(volume / "..data_tmp", volume / "..data")
    for name in files:
        if not (volume / name).is_symlink():
            os.symlink(f"..data/{name}", volume / name)
    if old is not None:
        for child in (volume / old).iterdir():
            child.unlink()
        (volume / old).rmdir()


def test_a_configmap_update_is_seen_through_its_symlinks(tmp_path):
    """A ConfigMap mounted as a directory: the worker's path is a symlink through `..data`."""
    _configmap_update(tmp_path, {"policies.yaml": (GOOD.format(version=1, response="15m"),
                                                   1_000)}, "2026_01_01_00_00_00.1")
    path = tmp_path / "policies.yaml"
    engine = Engine(load_policies(path))
    watcher = PolicyWatcher(path, engine)
    _configmap_update(tmp_path, {"policies.yaml": (GOOD.format(version=2, response="5m"),
                                                   2_000)}, "2026_01_01_00_01_00.1")
    assert watcher.check() is True and engine.policies.version == 2
    assert watcher.check() is False  # seen once


def test_a_swapped_file_with_the_same_mtime_and_size_is_still_seen(tmp_path):
    """A tool that keeps mtimes (a copy with -p, an archive) and a same-size edit: the new
    file behind the symlink is another inode, and that is enough."""
    _configmap_update(tmp_path, {"policies.yaml": (GOOD.format(version=1, response="15m"),
                                                   1_000)}, "2026_01_01_00_00_00.1")
    path = tmp_path / "policies.yaml"
    engine = Engine(load_policies(path))
    watcher = PolicyWatcher(path, engine)
    before = os.stat(path)
    _configmap_update(tmp_path, {"policies.yaml": (GOOD.format(version=2, response="30m"),
                                                   1_000)}, "2026_01_01_00_01_00.1")
    after = os.stat(path)
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert watcher.check() is True and engine.policies.version == 2
