"""Prometheus metrics of a service process, answered on the bus for the gateway's `GET /metrics`.

Each service of a node keeps a `ServiceMetrics` (its own `CollectorRegistry`, one per node and service in a
process: `of(node, service)`). What is counted as it happens is kept cheap, since every request pays it: a counter
increment and a histogram observation per request (`endpoint()` hands each endpoint its holders when it is
registered; the label children are made at its first request of each outcome, and looked up never again). What
lives elsewhere is read only when someone asks (`exposition()`): the durable consumers' lag (JetStream consumer
info), the outbox's unpublished rows, this service's dead letters in the node's DLQ stream, and whatever a service
adds with `probe()` (points: the terminals' spool lengths).

Who may read it: the endpoint `svc.<node>.<service>.metrics` answers the node's gateway and operator (their bus
users may publish to the services' endpoints; terminals, screens and other services may not:
towntip/node/natsauth.py; no peer node either: `svc.<node>.>` never crosses the leafnode, towntip/node/leafnode.py),
and the gateway shows it only to the node's admin token. It holds counts and names of
endpoints, consumers and terminals, never a person, a card or a request's content.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from sqlalchemy import column, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from towntip.kernel.bus import subjects

log = logging.getLogger(__name__)

EP_METRICS = "metrics"  # svc.<node>.<service>.metrics: the text exposition of the service's registry
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Requests take 0.3 ms (a read) to a few seconds (a password hash, a PDF): buckets over that range.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBE_TIMEOUT = 2.0  # a probe slower than this is skipped for this scrape (and counted as failed)
OUTCOMES = ("ok", "refused", "error")  # answered; a refusal (ServiceError: bad input, 403, 404, 409 ...); a bug

Probe = Callable[[], Awaitable[None]]


class _Stats(Protocol):
    applied: int
    duplicates: int
    dead_lettered: int
    retried: int


class Outcome:
    """One endpoint's counter and histogram children for one outcome: `record(seconds)` is all a request pays. The
    children are made at the first request with that outcome, so an endpoint never called (or never refused) adds
    no series: a node declares hundreds of endpoints, and 3 outcomes x 16 histogram series each would be ~20,000
    series of zeros in every scrape."""

    __slots__ = ("_count", "_labels", "_metrics", "_seconds")

    def __init__(self, metrics: ServiceMetrics, endpoint: str, outcome: str) -> None:
        self._metrics = metrics
        self._labels = (endpoint, outcome)
        self._count: Any = None  # prometheus_client's Counter child
        self._seconds: Any = None  # Histogram child

    def record(self, seconds: float) -> None:
        if self._count is None:
            self._count = self._metrics.requests.labels(*self._labels)
            self._seconds = self._metrics.latency.labels(*self._labels)
        self._count.inc()
        self._seconds.observe(seconds)


@dataclass(frozen=True)
class EndpointMetrics:
    ok: Outcome
    refused: Outcome
    error: Outcome


@dataclass
class _Watched:
    stream: str
    js: JetStreamContext
    stats: _Stats


class ServiceMetrics:
    def __init__(self, node: str, service: str) -> None:
        self.node = node
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("towntip_endpoint_requests", "Requests answered by the service's bus endpoints",
                                ("endpoint", "outcome"), registry=r)
        self.latency = Histogram("towntip_endpoint_seconds", "Time from a request's arrival to its answer",
                                 ("endpoint", "outcome"), buckets=REQUEST_BUCKETS, registry=r)
        self.consumer_pending = Gauge("towntip_consumer_pending",
                                      "Messages of the stream not yet delivered to the durable consumer (its lag)",
                                      ("consumer",), registry=r)
        self.consumer_ack_pending = Gauge("towntip_consumer_ack_pending",
                                          "Messages delivered to the consumer and not yet acknowledged",
                                          ("consumer",), registry=r)
        self.outbox_backlog = Gauge("towntip_outbox_backlog", "Outbox events committed but not yet published",
                                    registry=r)
        self.dlq_messages = Gauge("towntip_dlq_messages",
                                  "Dead letters of this service's consumers kept in the node's DLQ stream",
                                  ("consumer",), registry=r)
        self.probe_failures = Counter("towntip_metrics_probe_failures",
                                      "Scrapes on which a probe failed or took too long (its gauges kept their value)",
                                      ("probe",), registry=r)
        ProcessCollector(registry=r)  # memory, CPU, open files of this process
        r.register(_ConsumerStats(self))
        self._endpoints: dict[str, EndpointMetrics] = {}
        self._consumers: dict[str, _Watched] = {}
        self._probes: dict[str, Probe] = {}
        self._gauges: dict[str, Gauge] = {}

    # --- counted as it happens -------------------------------------------------------------------------------
    def endpoint(self, name: str) -> EndpointMetrics:
        """What one endpoint records its requests with, made once when the endpoint is registered."""
        found = self._endpoints.get(name)
        if found is None:
            ok, refused, error = (Outcome(self, name, o) for o in OUTCOMES)
            found = self._endpoints[name] = EndpointMetrics(ok, refused, error)
        return found

    # --- read when scraped -----------------------------------------------------------------------------------
    def watch_consumer(self, durable: str, stream: str, js: JetStreamContext, stats: _Stats) -> None:
        """A durable consumer of this service: its lag is asked of JetStream, its counts read from `stats`. A newer
        instance of the same durable (a restarted service) replaces the old one."""
        self._consumers[durable] = _Watched(stream, js, stats)

    def watch_outbox(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """The service's `outbox` table (every service has one: towntip/kernel/migration_ops.py)."""
        outbox = table("outbox", column("published_at"))
        query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))

        async def backlog() -> None:
            async with sessions() as session:
                self.outbox_backlog.set((await session.execute(query)).scalar_one())

        self.probe("outbox", backlog)

    def watch_dlq(self, js: JetStreamContext) -> None:
        """This service's subjects in the node's DLQ stream, per consumer (dlq.<node>.<service>.<consumer>)."""
        prefix = subjects.dlq(self.node, self.service, "")

        async def dead_letters() -> None:
            try:
                info = await js.stream_info(subjects.dlq_stream(self.node), subjects_filter=prefix + ">")
            except NotFoundError:
                return
            counts = info.state.subjects or {}
            self.dlq_messages.clear()
            for subject, n in counts.items():
                self.dlq_messages.labels(subject.removeprefix(prefix)).set(n)

        self.probe("dlq", dead_letters)

    def probe(self, name: str, fn: Probe) -> None:
        """An async function run at each scrape that sets gauges (replaces an earlier probe of that name)."""
        self._probes[name] = fn

    def gauge(self, name: str, documentation: str, labels: Iterable[str] = ()) -> Gauge:
        """A gauge of the service's own (for its probes), made once per process."""
        found = self._gauges.get(name)
        if found is None:
            found = self._gauges[name] = Gauge(name, documentation, tuple(labels), registry=self.registry)
        return found

    async def _consumer_lag(self) -> None:
        for durable, w in list(self._consumers.items()):
            try:
                info = await w.js.consumer_info(w.stream, durable, timeout=PROBE_TIMEOUT)
            except NotFoundError:
                continue  # not created yet (its puller has not started)
            self.consumer_pending.labels(durable).set(info.num_pending or 0)
            self.consumer_ack_pending.labels(durable).set(info.num_ack_pending or 0)

    async def refresh(self) -> None:
        """Run every probe at once, each within PROBE_TIMEOUT; one that fails leaves its gauges as they were."""
        probes = {"consumers": self._consumer_lag, **self._probes}

        async def run(name: str, fn: Probe) -> None:
            try:
                await asyncio.wait_for(fn(), PROBE_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - a scrape shows what it can
                log.warning("metrics probe %s of %s failed: %r", name, self.service, exc)
                self.probe_failures.labels(name).inc()

        await asyncio.gather(*(run(n, f) for n, f in probes.items()))

    async def exposition(self) -> bytes:
        """The registry in Prometheus's text format, its probes run first."""
        await self.refresh()
        return generate_latest(self.registry)


class _ConsumerStats:
    """The consumers' own counts (kernel.bus.consumer.ConsumerStats), read when scraped: nothing per message."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily("towntip_consumer_messages", "Messages a durable consumer has handled, by result",
                                     labels=("consumer", "result"))
        for durable, w in list(self.metrics._consumers.items()):
            s = w.stats
            for result, n in (("applied", s.applied), ("duplicate", s.duplicates),
                              ("dead_lettered", s.dead_lettered), ("retried", s.retried)):
                family.add_metric((durable, result), n)
        yield family

    def describe(self) -> Iterable[Metric]:
        return []


_BY_SERVICE: dict[tuple[str, str], ServiceMetrics] = {}


def of(node: str, service: str) -> ServiceMetrics:
    """The metrics of `service` at `node` in this process (made on first use; tests run several in one)."""
    found = _BY_SERVICE.get((node, service))
    if found is None:
        found = _BY_SERVICE[(node, service)] = ServiceMetrics(node, service)
    return found
