"""The policy file: reading it (YAML text -> plain tree + line numbers -> `Policies`) and
reloading it into a running engine (`PolicyWatcher`, on SIGHUP or when the file changes).

The YAML is read by `agents.yamlfile` (the reader of every slamon config file: it
keeps line numbers and leaves timestamps as the text written, for `sla.policy` to
check). Every problem, a YAML syntax error included, is reported as `file:line: ...`
through `PolicyError`; so is a file that is not UTF-8.

A reloaded file that does not validate is refused with its problems logged; the
monitor keeps the last good policies. Clocks keep the policy version they
started with (the engine keeps every version it has seen).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Any

from agents.yamlfile import YamlDocument, parse_yaml, read_yaml_file
from sla.engine import Engine
from sla.errors import PolicyError
from sla.policy import Policies, build_policies
from sla.spec_reader import Path

__all__ = ["PolicyWatcher", "load_policies", "parse_policies", "read_policy_file", "read_tree"]

logger = logging.getLogger(__name__)


def load_policies(path: str | os.PathLike[str]) -> Policies:
    """Read and check the policy file at `path`.

    Raises OSError (e.g. FileNotFoundError) if it cannot be read and PolicyError,
    listing every problem with file and line, if it is invalid.
    """
    return read_policy_file(path)[0]


def read_policy_file(path: str | os.PathLike[str]) -> tuple[Policies, str]:
    """(policies, text) of the file at `path`: the one way slamon reads a policy file.

    Raises OSError if it cannot be read and PolicyError if it is invalid or not UTF-8.
    """
    document = read_yaml_file(path, PolicyError)
    return _build(document), document.text


def parse_policies(text: str, *, source: str = "<policies>") -> Policies:
    """Check policy YAML `text`; `source` names it in messages."""
    return _build(parse_yaml(text, source, PolicyError))


def read_tree(text: str, *, source: str = "<policies>") -> tuple[Any, dict[Path, int]]:
    """Policy YAML `text` -> (plain tree, path -> 1-based line); PolicyError if not YAML."""
    document = parse_yaml(text, source, PolicyError)
    return document.tree, document.lines


def _build(document: YamlDocument) -> Policies:
    return build_policies(document.tree, source=document.source, lines=document.lines)


class PolicyWatcher:
    def __init__(self, path: FilePath, engine: Engine,
                 on_loaded: Callable[[Policies, str], None] | None = None) -> None:
        self.path = path
        self.engine = engine
        self.on_loaded = on_loaded
        self.reloads = 0
        self.failures = 0
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int, int, int] | None:
        """What tells a change: the file's identity (device, inode), mtime and size.

        `os.stat` follows symlinks, so a Kubernetes ConfigMap update (the kubelet writes a
        new directory and swaps the `..data` symlink the file's link points through) shows
        as another inode even when a tool kept the old mtime and the size is the same."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size

    def check(self) -> bool:
        """Reload when the file changed since the last look; True when new policies were taken."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return self.reload()

    def reload(self) -> bool:
        """Load the file now (SIGHUP); keep the current policies when it is invalid."""
        try:
            policies, text = read_policy_file(self.path)
        except (PolicyError, OSError) as error:
            self.failures += 1
            problems = error.problems if isinstance(error, PolicyError) else [str(error)]
            logger.error("policy reload refused, keeping version %s:\n  %s",
                         self.engine.policies.version, "\n  ".join(problems))
            return False
        previous = self.engine.policies.version
        self.engine.reload(policies)
        self.reloads += 1
        if self.on_loaded is not None:
            self.on_loaded(policies, text)
        logger.info("policies reloaded from %s: version %s -> %s", self.path, previous,
                    policies.version)
        return True
