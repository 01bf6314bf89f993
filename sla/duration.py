"""Durations of counted (working) time as policies write them: `90s`, `15m`, `1h30m`, `3d`.

Units, largest first, each at most once: `d` (24 h of counted time, so `3d` = 72 h),
`h`, `m`, `s`. A duration is a whole, positive number of seconds.
"""

from __future__ import annotations

import re

__all__ = ["DURATION_HINT", "parse_duration", "format_duration"]

DURATION_HINT = "use e.g. 90s, 15m, 1h30m, 3d"

_UNIT_SECONDS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_PATTERN = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: object) -> int:
    """Seconds of counted time in `text`; ValueError with a reason a person understands."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"{text!r} is not a duration ({DURATION_HINT})")
    if isinstance(text, int):
        raise ValueError(f"{text} is not a duration: add a unit ({DURATION_HINT})")
    match = _PATTERN.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration ({DURATION_HINT})")
    seconds = sum(
        int(amount) * unit
        for amount, (_, unit) in zip(match.groups(), _UNIT_SECONDS, strict=True)
        if amount is not None
    )
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration ({DURATION_HINT})")
    return seconds


def format_duration(seconds: int | float) -> str:
    """`5400` -> `1h30m`; the inverse of parse_duration for whole seconds (`0s` for zero).

    Fractions of a second are shown as milliseconds (`1m0.250s`); negatives get a `-`.
    """
    if seconds < 0:
        return "-" + format_duration(-seconds)
    millis = round(seconds * 1000)
    whole, frac = divmod(millis, 1000)
    parts: list[str] = []
    for unit, size in _UNIT_SECONDS[:-1]:
        amount, whole = divmod(whole, size)
        if amount:
            parts.append(f"{amount}{unit}")
    if frac:
        parts.append(f"{whole}.{frac:03d}s")
    elif whole or not parts:
        parts.append(f"{whole}s")
    return "".join(parts)
