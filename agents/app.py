"""The Faust application: `create_app(settings)` builds it, wires its topics and agents.

Nothing happens at import: no app, no topics, no connections. The factory is the one place
that turns `Settings` into Faust configuration; agents are added by small `add_*` functions
so that each processor can be replaced without touching the others.

`agents.monitor.add_monitor` adds the engine, the clock agent with its ticks, the policy
watcher and the web endpoints.
"""

from __future__ import annotations

import logging

import faust

from agents.settings import Settings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """A Faust app (aiokafka driver) configured from `settings`, with its agents added."""
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        broker_client_id=settings.app_id,
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",  # a new deployment rebuilds from all events
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        autodiscover=False,
        # Let outputs and changelog writes share produce requests: syscalls dominate the cost
        # of small sends, and 10 ms is far inside the detection delay we promise (< 1 s).
        producer_linger_ms=10,
    )
    from agents.monitor import add_monitor

    app.slamon = add_monitor(app, settings)  # type: ignore[attr-defined]
    return app
