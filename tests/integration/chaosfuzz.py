"""Hostile messages for the chaos kit: none is a valid event, each tagged with its category.

Random bytes, not UTF-8, empty, not an object, wrong field types, missing fields, unknown
types, bad timestamps (not RFC 3339, no offset, out of range, an offset with seconds,
decades ahead) and ~1 MB messages near the broker's size limit. The category tells a test
which kind of message went missing from the DLQ.
"""

from __future__ import annotations

import random
import time

import orjson

__all__ = ["HUGE_BYTES", "fuzz_messages"]

HUGE_BYTES = 1_000_000  # near the broker's default message.max.bytes (1,048,588)


def fuzz_messages(rng: random.Random, count: int, keys: list[bytes], huge: int = 3,
                  ) -> list[tuple[bytes | None, bytes, str]]:
    """`count` hostile (key, value, category) messages; `huge` of them ~1 MB.

    Keys are drawn from `keys` (real tickets' keys, so bad messages share their partitions)
    or are odd themselves. Every message must be rejected: none is a valid event.
    """
    makers = [_random_bytes, _not_utf8, _empty, _not_object, _wrong_type, _missing_field,
              _unknown_type, _bad_ts]
    messages = []
    for n in range(count):
        key = rng.choice(keys) if keys and rng.random() < 0.8 else rng.choice(
            [None, b"", rng.randbytes(8), b"\xff\xfe"])
        if n < huge:
            value = b'{"event_id": "fz-huge-%d", "pad": "' % n + b"x" * HUGE_BYTES + b'"}'
            messages.append((key, value, "huge"))
            continue
        category, value = rng.choice(makers)(rng, n)
        messages.append((key, value, category))
    rng.shuffle(messages)
    return messages


def _random_bytes(rng: random.Random, n: int) -> tuple[str, bytes]:
    value = rng.randbytes(rng.randint(1, 300))
    if value[:1] in b"{[\"-0123456789tfn \t\r\n":  # could decode as JSON: not random enough
        value = b"\x00" + value
    return "random_bytes", value


def _not_utf8(rng: random.Random, n: int) -> tuple[str, bytes]:
    return "not_utf8", b'{"event_id": "fz-%d", "ticket_id": "\xff\xfe%d"}' % (n, n)


def _empty(rng: random.Random, n: int) -> tuple[str, bytes]:
    return "empty", rng.choice([b"", b" ", b"{", b"null"])


def _not_object(rng: random.Random, n: int) -> tuple[str, bytes]:
    return "not_object", rng.choice([b"[]", b"42", b'"opened"', b"true", b"[{}]", b"1.5"])


def _now_ms() -> int:
    return int(time.time() * 1000)


def _base(n: int) -> dict:
    return {"event_id": f"fz-{n}", "ticket_id": f"fz-{n}", "type": "opened",
            "ts": _now_ms(), "service": "email", "customer": "acme", "priority": "P1"}


def _wrong_type(rng: random.Random, n: int) -> tuple[str, bytes]:
    event = _base(n)
    name = rng.choice(["event_id", "ticket_id", "type", "ts", "priority", "service",
                       "customer", "attributes"])
    event[name] = rng.choice([{"a": 1}, [1, 2], 3.5, True]) if name == "ts" else rng.choice(
        [7, [], {"x": 1}, True, 1.5, ""] if name != "attributes" else ["x", 3, [1]])
    return "wrong_type", orjson.dumps(event)


def _missing_field(rng: random.Random, n: int) -> tuple[str, bytes]:
    event = _base(n)
    del event[rng.choice(["event_id", "ticket_id", "type", "ts", "service", "customer",
                          "priority"])]
    return "missing_field", orjson.dumps(event)


def _unknown_type(rng: random.Random, n: int) -> tuple[str, bytes]:
    event = _base(n) | {"type": rng.choice(["exploded", "OPENED", "respond", "😀"])}
    return "unknown_type", orjson.dumps(event)


_DECADES_MS = 30 * 365 * 86_400_000


def _bad_ts(rng: random.Random, n: int) -> tuple[str, bytes]:
    """Timestamps that are wrong: not RFC 3339, no offset, out of range, decades ahead."""
    now = _now_ms()
    choice = rng.randrange(9)
    ts: object = [
        "yesterday", "2026-13-45T00:00:00Z", "2026-11-29T10:00:00",
        "2026-11-29 10:00:00+00:00:00",  # not RFC 3339: an offset with seconds
        now // 1000, -5, 10**16, now + _DECADES_MS, "2056-01-01T00:00:00Z",
    ][choice]
    category = "future_ts" if choice in (7, 8) else "bad_ts_format" if choice == 3 else "bad_ts"
    return category, orjson.dumps(_base(n) | {"ts": ts})
