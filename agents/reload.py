"""Policy reload: on SIGHUP or when the file changes, load it and hand it to the engine.

A new file that does not validate is refused with its problems logged; the
monitor keeps the last good policies. Clocks keep the policy version they
started with (the engine keeps every version it has seen).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from agents.policyfile import parse_policies
from sla.engine import Engine
from sla.errors import PolicyError
from sla.policy import Policies

__all__ = ["PolicyWatcher"]

logger = logging.getLogger(__name__)


class PolicyWatcher:
    def __init__(self, path: Path, engine: Engine,
                 on_loaded: Callable[[Policies, str], None] | None = None) -> None:
        self.path = path
        self.engine = engine
        self.on_loaded = on_loaded
        self.reloads = 0
        self.failures = 0
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

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
            text = Path(self.path).read_text(encoding="utf-8")
            policies = parse_policies(text, source=os.fspath(self.path))
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
