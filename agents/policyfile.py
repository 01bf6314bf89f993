"""The policy file: reading it (YAML text -> plain tree + line numbers -> `Policies`) and
reloading it into a running engine (`PolicyWatcher`, on SIGHUP or when the file changes).

The one place that parses policy YAML (ruamel.yaml, which keeps line numbers).
Timestamps and dates stay the text the author wrote, so that `sla.policy`
checks them itself (RFC 3339 with an offset) and quotes them as written.
Every problem, a YAML syntax error included, is reported as `file:line: ...`
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

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from sla.engine import Engine
from sla.errors import PolicyError
from sla.policy import Policies, build_policies
from sla.spec_reader import Path

__all__ = ["PolicyWatcher", "load_policies", "parse_policies", "read_policy_file", "read_tree"]

logger = logging.getLogger(__name__)


class _TextTimestamps(RoundTripConstructor):
    """Round-trip constructor that leaves dates and timestamps as the written text."""


_TextTimestamps.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda self, node: self.construct_scalar(node)
)


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
    data = FilePath(path).read_bytes()
    source = os.fspath(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise PolicyError([f"{source}:{line}: not UTF-8 text (byte {error.start}: "
                           f"{data[error.start:error.start + 1]!r})"]) from None
    return parse_policies(text, source=source), text


def parse_policies(text: str, *, source: str = "<policies>") -> Policies:
    """Check policy YAML `text`; `source` names it in messages."""
    tree, lines = read_tree(text, source=source)
    return build_policies(tree, source=source, lines=lines)


def read_tree(text: str, *, source: str = "<policies>") -> tuple[Any, dict[Path, int]]:
    """YAML text -> (plain tree of dict/list/str/int/float/bool/None, path -> 1-based line)."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _TextTimestamps
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        raise PolicyError([_syntax_problem(exc, source)]) from exc
    except YAMLError as exc:  # an error without a position
        raise PolicyError([f"{source}: not valid YAML: {exc}"]) from exc
    lines: dict[Path, int] = {(): 1}
    return _plain(document, (), lines), lines


def _plain(node: Any, path: Path, lines: dict[Path, int]) -> Any:
    """Copy a ruamel node into plain Python values, recording each entry's line."""
    if isinstance(node, CommentedMap):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            plain_key = key if isinstance(key, str | int | bool) or key is None else str(key)
            child = (*path, str(plain_key))
            lines[child] = node.lc.key(key)[0] + 1
            result[plain_key] = _plain(value, child, lines)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            lines[(*path, index)] = node.lc.item(index)[0] + 1
            items.append(_plain(value, (*path, index), lines))
        return items
    return _plain_scalar(node)


def _plain_scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _syntax_problem(exc: MarkedYAMLError, source: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    reason = " ".join(part for part in (exc.context, exc.problem) if part)
    return f"{where}: not valid YAML: {reason or exc}"


class PolicyWatcher:
    def __init__(self, path: FilePath, engine: Engine,
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
