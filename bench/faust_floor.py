"""A Faust agent that does nothing but read: the floor under any Faust processor's cost.

    python bench/faust_floor.py BOOTSTRAP TOPIC COUNT [none|table|table+send] [PARTITIONS]

Run by bench/live.py on the same topic as the monitor, so the monitor's rate can be read
against what Faust itself costs per message on this machine: `none` only iterates the
stream, `table` also writes each message to a table (a changelog message each), and
`table+send` also sends one output with the producer. PARTITIONS (default 4) must be the
topic's, as the table is co-partitioned with it. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import faust


def main() -> None:
    bootstrap, topic, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    partitions = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    # Named after the topic, so the bench deletes this app's changelog with its own topics.
    app = faust.App(f"{topic}.floor-{mode.replace('+', '-')}-{os.getpid()}",
                    broker=f"kafka://{bootstrap}",
                    store="memory://", web_enabled=False, autodiscover=False,
                    datadir=tempfile.mkdtemp(prefix="slamon-floor-"),  # not <app id>-data in cwd
                    consumer_auto_offset_reset="earliest", producer_linger_ms=10)
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    table = app.Table("floor", partitions=partitions, key_type=bytes, value_type=bytes)
    table.key_serializer = table.value_serializer = "raw"
    seen = {"n": 0, "t0": 0.0}

    @app.agent(source)
    async def read(stream: faust.StreamT) -> None:
        async for event in stream.events():
            if not seen["n"]:
                seen["t0"] = time.perf_counter()
            seen["n"] += 1
            if mode != "none":
                table[event.message.key] = event.message.value
            if mode == "table+send":
                await app.producer.send(topic + ".floor", event.message.key,
                                        event.message.value, None, None, None)
            if seen["n"] == count:
                rate = count / (time.perf_counter() - seen["t0"])
                os.write(1, json.dumps({"mode": mode, "events_per_s": round(rate)}).encode()
                         + b"\n")
                os._exit(0)

    worker = faust.Worker(app, loglevel="error")
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
