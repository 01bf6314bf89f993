"""The one YAML reader of slamon's config files: policies, settings and portal tokens.

A file becomes a `YamlDocument`: a plain tree (dict, list, str, int, float, bool, None)
plus the 1-based line of every mapping entry and list item, so each reader can report a
problem as `file:line: path: reason` (`place`). ruamel.yaml is used because it keeps
line numbers. Dates and timestamps stay the text the author wrote, so that the readers
check them themselves (RFC 3339 with an offset) and quote them as written.

Problems of the file itself, a YAML syntax error or text that is not UTF-8, are raised
as the caller's own `ProblemsError` subclass (PolicyError, SettingsError, ...), each with
its file and line. A file that cannot be read raises OSError: whether that is a problem
to list or a different exit status is the caller's choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from sla.errors import ProblemsError
from sla.spec_reader import Path, SpecReader, format_path

__all__ = ["YamlDocument", "parse_yaml", "read_yaml_file", "read_yaml_text"]


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed YAML file: `tree` as plain values, `lines` path -> line, `source` its name."""

    source: str
    text: str
    tree: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest enclosing entry (as policy problems do)."""
        return SpecReader(self.source, self.lines).line_of(path)

    def place(self, path: Path) -> str:
        """`file:line: dotted.path` for messages (`file:line` alone for the root)."""
        line = self.line_of(path)
        where = self.source if line is None else f"{self.source}:{line}"
        return f"{where}: {format_path(path)}" if path else where


class _TextTimestamps(RoundTripConstructor):
    """Round-trip constructor that leaves dates and timestamps as the written text."""


_TextTimestamps.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda self, node: self.construct_scalar(node)
)


def read_yaml_file(path: str | os.PathLike[str], error: type[ProblemsError]) -> YamlDocument:
    """Read and parse the file at `path`; `error` carries a syntax or encoding problem.

    Raises OSError if the file cannot be read.
    """
    return read_yaml_text(FilePath(path).read_bytes(), os.fspath(path), error)


def read_yaml_text(data: bytes, source: str, error: type[ProblemsError]) -> YamlDocument:
    """Parse the bytes of a file named `source`; not UTF-8 is a problem at its line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error([f"{source}:{line}: not UTF-8 text (byte {exc.start}: "
                     f"{data[exc.start:exc.start + 1]!r})"]) from None
    return parse_yaml(text, source, error)


def parse_yaml(text: str, source: str, error: type[ProblemsError]) -> YamlDocument:
    """Parse YAML `text`; `source` names it in messages."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _TextTimestamps
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        raise error([_syntax_problem(exc, source)]) from exc
    except YAMLError as exc:  # an error without a position
        raise error([f"{source}: not valid YAML: {exc}"]) from exc
    lines: dict[Path, int] = {(): 1}
    return YamlDocument(source, text, _plain(document, (), lines), lines)


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
