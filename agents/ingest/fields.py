"""Reading vendor payloads: dotted field paths, text values and vendor timestamps.

Desk payloads are plain JSON trees whose shape the vendor (or an admin writing a trigger
body) decides, so every read here is defensive: a missing field, a list where an object was
expected or a number where text was expected gives None, never an exception. The desk
translators and the `generic` type's configured paths (`ticket.fields.status.name`,
`items.0.id`) read through `at`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sla.events import MAX_TS_MS, MIN_TS_MS

__all__ = ["Headers", "at", "obj", "text", "flag", "vendor_ms", "normalise"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_SINCE = 100_000_000_000  # an epoch number at least this large is milliseconds (after 1973)


def at(tree: Any, path: str) -> Any:
    """The value at dotted `path` in `tree` (list items by index: `items.0.id`), or None."""
    node = tree
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


def obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (so `.get` chains stay safe)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """A scalar as non-empty text (numbers too: vendor ids are often numbers); else None.

    An object with a `name` (Jira's `status`, Zammad's `priority`) reads as that name.
    """
    if isinstance(value, Mapping):
        value = value.get("name")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def flag(value: Any) -> bool:
    """A vendor's truthy value: true, "true", "yes", 1 (ServiceNow sends booleans as text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "y")
    return False


def normalise(value: str) -> str:
    """How vendor statuses and priorities are compared: case and outer spaces ignored."""
    return " ".join(value.split()).casefold()


def vendor_ms(value: Any) -> int | None:
    """A vendor timestamp as epoch milliseconds, or None when it is not one.

    Accepts RFC 3339 / ISO 8601 (`Z`, `+01:00`, `+0100`), the same with a trailing ` UTC`
    (GitLab), a naive `YYYY-MM-DD HH:MM:SS` taken as UTC (ServiceNow's stored values), and
    epoch numbers or numeric text: seconds, or milliseconds when large enough. A time
    slamon's events cannot carry (before 2000, from 2200) is None too.
    """
    ms = _vendor_ms(value)
    return ms if ms is not None and MIN_TS_MS <= ms < MAX_TS_MS else None


def _vendor_ms(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            return None
        return int(value) if value >= _MS_SINCE else int(value * 1000)
    if not isinstance(value, str):
        return None
    raw = value.strip()
    if not raw:
        return None
    if raw.isdigit():
        return _vendor_ms(int(raw))
    if raw.endswith(" UTC"):
        raw = raw[:-4] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return (moment - _EPOCH) // _ONE_MS
    except OverflowError:
        return None


_ONE_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - _EPOCH


class Headers(Mapping[str, str]):
    """HTTP headers looked up by name in any case (as aiohttp's are)."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = {str(k).lower(): str(v) for k, v in (items or {}).items()}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
