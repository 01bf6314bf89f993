"""The worker, built in one place: `create_app(settings)` makes the Faust app and wires it.

Nothing happens at import: no app, no topics, no connections. `create_app` is the one place
that turns `Settings` into Faust configuration; it then adds the `Monitor`: the policies (an
invalid file stops the worker before it starts, with every problem listed), the engine, the
metrics on their own registry, the clock agent with its ticks, the compliance agent, the
policy watcher (SIGHUP and file changes), the web endpoints /metrics, /healthz, /readyz and
the customer portal (`agents.portal`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import faust
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from agents.batch.consumer import BatchRouter, install
from agents.brokerwatch import BrokerWatch, RepeatFilter, cluster_answers
from agents.clocks import ClockService, add_clock_agent
from agents.compliance import add_compliance_agent
from agents.ingest.receiver import add_ingest
from agents.kafkaclients import faust_credentials
from agents.metrics import MonitorMetrics, exposition
from agents.policyfile import PolicyWatcher, read_policy_file
from agents.policyhistory import PolicyHistory
from agents.portal import add_portal
from agents.settings import Settings
from sla.engine import Engine
from sla.policy import Policies
from sla.review import objective_of

__all__ = ["Monitor", "add_monitor", "create_app", "create_worker"]

logger = logging.getLogger(__name__)

POLICY_POLL_SECONDS = 2.0
LAG_POLL_SECONDS = 5.0


def create_app(settings: Settings) -> faust.App:
    """A Faust app (aiokafka driver) configured from `settings`, with its agents added."""
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),  # SASL and/or TLS, or None
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
        # A batch's outputs and changelog writes go to Kafka as one record batch per
        # topic-partition where they fit: aiokafka holds one pending batch per partition
        # and makes the next wait until that one is sent, so with its default (16 KiB) a
        # batch of 1,000 events waited for dozens of produce requests in a row.
        producer_max_batch_size=settings.producer_batch_bytes,
        # A standby applies its partitions' changelogs (agents/batch/consumer.py, in one
        # write per fetch); the setting lets an operator save even that (README).
        table_standby_replicas=settings.standby_replicas,
        # A dead worker's partitions move after session_timeout; a worker restarted under
        # the same worker_id (static membership) takes them back at once, without waiting
        # for its old session to expire. Faust refuses a session above the request timeout.
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_request_timeout=max(90.0, settings.session_timeout),
        consumer_group_instance_id=settings.worker_id,
        # A topic created after the consumer subscribed (a fresh deployment's ticks, made by
        # the worker itself) is read within 10 s, not after aiokafka's default 5 minutes.
        consumer_metadata_max_age_ms=10_000,
        # One source of settings: Faust would otherwise let its own variables (WEB_PORT,
        # BROKER_URL, APP_STORE, ...) override the values above, silently.
        env={},
    )
    install(app, BatchRouter())
    app.slamon = add_monitor(app, settings)  # type: ignore[attr-defined]
    return app


class Monitor:
    """Handles to the running parts, for tests and the web views."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        policies, text = read_policy_file(settings.policies)
        self.app = app
        self.settings = settings
        self.history = PolicyHistory(settings)
        self.engine = Engine(policies, lateness_ms=round(settings.lateness * 1000))
        self._policy_text = text
        self._policies = policies
        # Set once the stored policy versions are known: the clock agent waits for it.
        self.history_loaded = asyncio.Event()
        self.registry = CollectorRegistry()
        # The worker process itself (CPU, memory, open files; Python's collections per
        # generation): what to look at first when a worker falls behind.
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.metrics = MonitorMetrics(
            self.registry, metrics=[m.name for m in policies.metrics],
            targets=policy_targets(policies), objective_for=self._objective,
        )
        self.metrics.set_ready_source(lambda: self.ready)
        self.router: BatchRouter = app.slamon_router  # type: ignore[attr-defined]
        self.clocks: ClockService = add_clock_agent(app, settings, self.engine, self.router,
                                                    self.metrics, before_first=self.history_loaded)
        self.compliance = add_compliance_agent(app, settings, self.engine, self.router,
                                               self.metrics)
        self.watcher = PolicyWatcher(settings.policies, self.engine, self._loaded)
        self.broker = BrokerWatch(settings.broker_unreachable_after)

    async def load_history(self) -> None:
        """Learn every stored policy version (Kafka I/O off the event loop; `slamon worker`
        began reading before Faust started), then store ours."""
        loop = asyncio.get_running_loop()
        try:
            stored = await asyncio.wrap_future(self.history.start_reading())
            for policies in stored:
                self.engine.remember(policies)
            if stored:
                logger.info("policy versions known from %s: %s; running version %s",
                            self.history.topic, [p.version for p in stored],
                            self.engine.policies.version)
            await loop.run_in_executor(None, self.history.record, self._policies,
                                       self._policy_text)
        finally:
            self.history_loaded.set()

    def _loaded(self, policies: Policies, text: str) -> None:
        self.history.record(policies, text)
        self.metrics.set_objective_source(self._objective)

    def _objective(self, customer: str, service: str) -> float | None:
        """The agreed level: the highest ratio below which a credit is owed."""
        return objective_of(self.engine.policies.credits(customer, service))

    @property
    def ready(self) -> bool:
        return self.not_ready_reason is None

    @property
    def not_ready_reason(self) -> str | None:
        """Why the worker should not get traffic or count as up, or None when it is ready."""
        app = self.app
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        if not recovery.completed.is_set() or app.in_recovery:
            return "recovering table state"
        if app.rebalancing:
            return "rebalancing partitions"
        return self.broker.problem

    def readiness(self) -> dict[str, object]:
        """/readyz's body: ready or why not, the running policy version and, while tables
        are rebuilt, how many changelog records are left to read (the progress of a long
        recovery: a worker without its volume reads every table's changelog)."""
        reason = self.not_ready_reason
        body: dict[str, object] = {"ready": reason is None,
                                   "policy_version": self.engine.policies.version}
        if reason is not None:
            body["reason"] = reason
            recovery = self.app.tables.recovery  # type: ignore[attr-defined]
            left = recovery.active_remaining_total() if recovery.in_recovery else 0
            if left > 0:
                body["changelog_records_left"] = left
        return body

    async def report_lag(self) -> None:
        """Consumer lag of the events topic, per owned partition."""
        consumer = self.app.consumer
        for tp in self.app.assignor.assigned_actives():
            if tp.topic != self.clocks.catalogue.events:
                continue
            position = await consumer.position(tp)
            if position is not None:
                self.metrics.set_lag(tp.topic, tp.partition,
                                     max(0, consumer.highwater(tp) - position))


def policy_targets(policies: Policies) -> dict[str, list[float]]:
    """Per metric, every distinct target of the policy in seconds (histogram buckets)."""
    targets: dict[str, set[float]] = {m.name: set() for m in policies.metrics}
    for service, customer in itertools.product(("", *policies.services),
                                               ("", *policies.customers)):
        for by_metric in policies.terms(service, customer).targets.values():
            for metric, seconds in by_metric.items():
                if seconds is not None:
                    targets.setdefault(metric, set()).add(float(seconds))
    return {metric: sorted(values) for metric, values in targets.items()}


def add_monitor(app: faust.App, settings: Settings) -> Monitor:
    monitor = Monitor(app, settings)
    _add_tasks(app, monitor)
    _add_web(app, monitor)
    add_portal(app, monitor)
    add_ingest(app, monitor)
    return monitor


def _add_tasks(app: faust.App, monitor: Monitor) -> None:
    @app.timer(POLICY_POLL_SECONDS, name="slamon.policy-watch")
    async def watch_policies() -> None:
        monitor.watcher.check()

    @app.timer(LAG_POLL_SECONDS, name="slamon.lag")
    async def lag() -> None:
        if monitor.ready:
            await monitor.report_lag()

    @app.task
    async def policy_history() -> None:
        await monitor.load_history()

    # SIGHUP reloads too: `slamon worker` relays it from its start (agents.cli.worker).

    probe_every = min(5.0, monitor.settings.broker_unreachable_after / 3)

    @app.timer(probe_every, name="slamon.broker-watch")
    async def watch_broker() -> None:
        await monitor.broker.probe(lambda: broker_metadata(app), timeout=probe_every)


async def broker_metadata(app: faust.App) -> object:
    """One metadata request to the cluster through the worker's own producer client (its
    connections and credentials), naming no topic: the metadata of every topic costs up to
    a second of the event loop on a large cluster. Faust's aiokafka driver keeps that client
    private; a unit test pins the path, so an upgrade that moves it fails there."""
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    return await cluster_answers(producer.client)


def _add_web(app: faust.App, monitor: Monitor) -> None:
    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        body, content_type = exposition(monitor.registry, request.headers.get("Accept"))
        # aiohttp refuses a charset inside content_type=; the header carries it whole.
        return web.bytes(body, headers={"Content-Type": content_type})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        body = monitor.readiness()
        return web.json(body, status=200 if body["ready"] else 503)


class _Worker(faust.Worker):
    """Faust's worker, with Kafka client log floods held back (agents.brokerwatch)."""

    repeats = RepeatFilter()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        self.repeats.install(logger.handlers)


def create_worker(app: faust.App, loglevel: str) -> faust.Worker:
    """The Faust worker that runs `app` (`slamon worker` runs it until SIGINT/SIGTERM)."""
    worker = _Worker(app, loglevel=loglevel)
    # Faust's terminal spinner sets the root logger to DEBUG at level warning and above, so
    # every library debug call builds a record: a service has no use for it.
    worker.spinner = None
    return worker
