"""`slamon translate --sources F --source NAME payloads.jsonl`: desk payloads -> slamon events.

Runs the ingest agent's own translation offline (`agents.ingest.translate`), so a team can
test its mapping on exported payloads and back-fill history into `slamon replay`. Each
line is one delivery: the payload itself, or an envelope
`{"headers": {...}, "body": <payload>, "received_at": TS}` when the vendor's headers carry
the delivery id or the event name (Jira, GitHub, GitLab, Zammad). Events go to stdout as
JSON lines in delivery order; each untranslatable line is reported on stderr as
`FILE:LINE: reason: message`, then a summary. Exit status 0; 2 when the sources file or
the payloads cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any, BinaryIO

HELP = "translate service desk payloads (JSON lines) into slamon events, offline"

_ENVELOPE_KEYS = {"headers", "body", "received_at"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sources", required=True, metavar="FILE",
                        help="sources file (YAML), e.g. config/sources.yaml")
    parser.add_argument("--source", required=True, metavar="NAME",
                        help="the source (desk) the payloads came from")
    parser.add_argument("payloads", metavar="PAYLOADS",
                        help="payloads as JSON lines (bodies or envelopes); - for stdin")
    parser.add_argument("--output", default="-", help="where to write events (default stdout)")


def run(args: argparse.Namespace) -> int:
    from agents.ingest.sources import load_sources

    try:
        sources = load_sources(args.sources, read_secrets=False)
    except OSError as error:
        print(f"slamon translate: cannot read {args.sources}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    source = sources.get(args.source)
    if source is None:
        known = ", ".join(sources) or "none"
        print(f"slamon translate: no source {args.source!r} in {args.sources} (sources: "
              f"{known})", file=sys.stderr)
        return 2
    try:
        stream = sys.stdin.buffer if args.payloads == "-" else open(args.payloads, "rb")  # noqa: SIM115
    except OSError as error:
        print(f"slamon translate: cannot read payloads: {error.strerror or error}",
              file=sys.stderr)
        return 2
    try:
        sink = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
    except OSError as error:
        print(f"slamon translate: cannot write events: {error.strerror or error}",
              file=sys.stderr)
        stream.close()
        return 2
    name = "<stdin>" if args.payloads == "-" else args.payloads
    try:
        lines, events, failed = _translate(source, stream, sink, name)
    finally:
        for handle in (stream, sink):
            if handle not in (sys.stdin.buffer, sys.stdout.buffer):
                handle.close()
        sys.stdout.flush()
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(failed.items()))
    print(f"slamon translate: {lines} payloads -> {events} events"
          + (f"; untranslatable: {reasons}" if reasons else ""), file=sys.stderr)
    return 0


def _translate(source: Any, stream: BinaryIO, sink: BinaryIO, name: str,
               ) -> tuple[int, int, Counter[str]]:
    import orjson

    from agents.ingest.fields import Headers, text, vendor_ms
    from agents.ingest.observation import DeliveryMeta
    from agents.ingest.translate import translate_delivery

    memories: dict[bytes, bytes] = {}
    failed: Counter[str] = Counter()
    lines = events = 0
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        lines += 1
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            failed["not_json"] += 1
            print(f"{name}:{number}: not_json: not JSON: {error}", file=sys.stderr)
            continue
        headers, body, received = Headers(), parsed, 0
        if isinstance(parsed, dict) and "body" in parsed and set(parsed) <= _ENVELOPE_KEYS:
            given = parsed.get("headers")
            headers = Headers({str(k): str(v) for k, v in given.items()}
                              if isinstance(given, dict) else {})
            body, received = parsed["body"], vendor_ms(parsed.get("received_at")) or 0
        raw_body = raw.strip() if body is parsed else orjson.dumps(body)
        event_name = headers.get(source.desk.event_header) if source.desk.event_header else None
        meta = DeliveryMeta(source.name, source.delivery_id(headers, body, raw_body), received,
                            text(event_name))
        result = translate_delivery(source, meta, body, memories)
        for event in result.events:
            sink.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
        events += len(result.events)
        if result.reason is not None:
            failed[result.reason] += 1
            print(f"{name}:{number}: {result.reason}: {result.message}", file=sys.stderr)
    return lines, events, failed
