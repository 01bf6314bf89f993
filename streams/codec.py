"""Events in: bytes on the wire -> plain objects, with orjson; no faust.Record on the hot path.

Records out are encoded in `streams.outputs`; their shapes are in `streams/schemas/`.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from sla.errors import InvalidEvent
from sla.replay import DecodeError

__all__ = ["MAX_EVENT_BYTES", "decode_event", "decode_line"]

# A service event is small; anything larger is a mistake upstream.
MAX_EVENT_BYTES: Final = 64 * 1024


def decode_event(raw: bytes) -> Any:
    """Decode one event message; raise InvalidEvent (code not_json / too_large) when it can't be."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent("too_large", f"message of {len(raw)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent("not_json", f"not JSON: {error}") from None


def decode_line(raw: bytes) -> Any:
    """A replayed line's JSON, or a DecodeError saying (in `decode_event`'s words) why not."""
    try:
        return decode_event(raw)
    except InvalidEvent as error:
        return DecodeError(error.code, error.message)
