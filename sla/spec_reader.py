"""Typed reading of a parsed policy tree, collecting every problem with its place.

A `SpecReader` walks plain data (dicts, lists, str, int, float, bool, None) as
a YAML or JSON parser produced it. Each problem is one line,
`source:line: path: reason`, where the line comes from a path -> line map the
parser supplied (the nearest enclosing entry when the path itself is absent).
The readers return None after recording a problem, so validation goes on and
the file's every problem is reported at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Path", "SpecReader", "format_path", "describe", "suggest"]

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """("exclusions", 0, "end") -> "exclusions[0].end"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe(value: object) -> str:
    """How a value looks to the person who wrote it, for type mismatches."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def suggest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a close match, else ` (expected one of: a, b, c)`."""
    options = sorted(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(options)})" if options else ""


class SpecReader:
    """Typed accessors over a parsed tree; problems accumulate in `problems`."""

    def __init__(self, source: str, lines: Mapping[Path, int] | None = None) -> None:
        self.source = source
        self.lines: Mapping[Path, int] = lines or {}
        self._found: list[tuple[int, str]] = []

    @property
    def problems(self) -> list[str]:
        """Every problem recorded, in the order of the file's lines."""
        return [message for _, message in sorted(self._found, key=lambda found: found[0])]

    def problem(self, path: Path, reason: str) -> None:
        where = self.source
        line = self.line_of(path)
        if line is not None:
            where += f":{line}"
        place = format_path(path)
        message = f"{where}: {place}: {reason}" if place else f"{where}: {reason}"
        self._found.append((line or 0, message))

    def line_of(self, path: Path) -> int | None:
        for size in range(len(path), -1, -1):
            line = self.lines.get(path[:size])
            if line is not None:
                return line
        return None

    # -- shapes ---------------------------------------------------------------------------

    def mapping(self, path: Path, value: Any, keys: Iterable[str] | None = None) -> dict | None:
        """A mapping with string keys; with `keys`, any other key is reported (with a hint)."""
        if not isinstance(value, Mapping):
            self.problem(path, f"expected a mapping (key: value), got {describe(value)}")
            return None
        result: dict[str, Any] = {}
        allowed = None if keys is None else set(keys)
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                self.problem(path, f"key {key!r} must be text")
                continue
            if allowed is not None and key not in allowed:
                self.problem((*path, key), "unknown key" + suggest(key, allowed))
                continue
            result[key] = item
        return result

    def sequence(self, path: Path, value: Any, example: str) -> list | None:
        if not isinstance(value, list | tuple):
            self.problem(path, f"expected a list, e.g. {example}, got {describe(value)}")
            return None
        return list(value)

    def text(self, path: Path, value: Any, what: str = "text") -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(path, f"expected {what}, got {describe(value)}")
            return None
        return value.strip()

    def number(self, path: Path, value: Any, what: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, f"expected {what}, got {describe(value)}")
            return None
        return float(value)

    def texts(self, path: Path, value: Any, example: str, what: str = "text") -> list[str] | None:
        """A list of non-empty strings; None if the list itself is wrong."""
        items = self.sequence(path, value, example)
        if items is None:
            return None
        found = [self.text((*path, index), item, what) for index, item in enumerate(items)]
        return [item for item in found if item is not None]

    def choice(self, path: Path, value: Any, options: Iterable[str]) -> str | None:
        options = tuple(options)
        if value in options:
            return str(value)
        self.problem(path, f"{describe(value)} is not one of: {', '.join(options)}")
        return None

    def required(self, path: Path, tree: Mapping, key: str, hint: str) -> Any:
        """tree[key], or None with a `missing 'key'` problem placed at the enclosing mapping."""
        if key not in tree:
            self.problem(path, f"missing {key!r} ({hint})")
            return None
        return tree[key]
