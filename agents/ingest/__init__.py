"""Connecting service desks: webhook receiver, desk translators and the sources file.

    sources      the sources file (config/sources.yaml): one entry per connected desk
    desks/       one module per desk type: defaults and the reading of its payloads (pure)
    signatures   signature checks per scheme (HMAC, Zendesk's timestamped HMAC, tokens)
    state        each ticket's last known state, and the events an observation makes
    translate    one delivery -> events or a dead-letter reason (agent and CLI share it)
    receiver     POST /ingest/<source> on the worker's web server -> <prefix>raw
    agent        the translator agent: <prefix>raw -> <prefix>events / <prefix>raw.dlq
    metrics      the ingest metrics, on the monitor's registry

The translators are pure and need neither Faust nor Kafka: `slamon translate` runs the same
code offline. `agents.ingest.receiver.add_ingest(app, monitor)` wires the live parts.
"""
