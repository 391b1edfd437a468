"""`GET /metrics`: the node's Prometheus metrics, for its operator (the node's admin bearer token only).

The gateway asks every expected service at once (`svc.<node>.<service>.metrics`, a short timeout each) for the
text exposition of its registry (towntip/kernel/metrics.py), parses each with prometheus_client's parser, labels
every series with `service="<name>"`, merges families of the same name (every service has
`towntip_endpoint_requests_total`, ...) and adds its own: its HTTP requests by route template (never the raw path,
which may hold a card's IDm), its process, and `towntip_up{service}` (0: the service did not answer in time).
The result is one valid exposition, as one scrape target.

Security and privacy: the metrics say how busy the node is and which terminals are online, so only the node's
admin token reads them: no token 401, any other token (a person's) 403, compared in constant time. They hold no
person, card or request content; nothing is stored (each scrape asks afresh). With several gateway workers
(`--gateway-workers`), a scrape reaches one of them: the `gateway` series are that worker's.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from nats.aio.client import Client as NATS
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.deps import bearer
from towntip.kernel.bus import subjects
from towntip.kernel.metrics import CONTENT_TYPE, EP_METRICS, REQUEST_BUCKETS

log = logging.getLogger(__name__)

GATHER_TIMEOUT = 2.0  # seconds each service has to answer; a scraper's own timeout is usually 10 s
GATEWAY = "gateway"
UNMATCHED = "unmatched"  # requests no route took (404s): one series, not one per path tried


class GatewayMetrics:
    """The gateway's own registry: its HTTP requests and its process (one per app, so tests may run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("towntip_http_requests", "HTTP requests answered by the gateway",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("towntip_http_request_seconds", "Time from an HTTP request to its answer",
                                 ("method", "route"), buckets=REQUEST_BUCKETS, registry=self.registry)
        ProcessCollector(registry=self.registry)


class MetricsMiddleware:
    """Counts each HTTP request by route template and status (pure ASGI: nothing buffered, streams stay streams)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics,
                 templates: dict[Callable[..., Any], str] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = scope.get("endpoint")
            route = ((self.templates.get(endpoint) if endpoint is not None else None)
                     or getattr(scope.get("route"), "path", None) or UNMATCHED)
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def admin_only(request: Request,
               creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """The node's admin token, nothing else: none 401, another (a person's access token) 403."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "the node's admin bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    expected: str = request.app.state.settings.admin_token
    if not expected or not hmac.compare_digest(creds.credentials.strip().encode(), expected.encode()):
        raise HTTPException(403, "only the node's admin token may read its metrics")


admin_only.requirement = "admin"  # type: ignore[attr-defined]  # what tests/gateway/test_portal_roles.py reads


async def ask(nc: NATS | None, node: str, service: str, timeout: float = GATHER_TIMEOUT) -> str | None:
    """One service's exposition, or None if it did not answer in time (or the bus is down)."""
    if nc is None or not nc.is_connected:
        return None
    try:
        msg = await nc.request(subjects.svc(node, service, EP_METRICS), b"", timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - no responders, timeout, connection: the service counts as down
        log.info("metrics of %s: no answer (%s)", service, exc.__class__.__name__)
        return None
    if msg.headers and msg.headers.get("Nats-Service-Error-Code"):
        return None
    return msg.data.decode("utf-8", errors="replace")


def merge(texts: dict[str, str]) -> list[Metric]:
    """Families of the same name from every source as one, each series labelled with its source's name."""
    families: dict[str, Metric] = {}
    for source, text in texts.items():
        try:
            parsed = list(text_string_to_metric_families(text))
        except ValueError:
            log.warning("metrics of %s are not in the text format; left out", source)
            continue
        for family in parsed:
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            elif merged.type != family.type:
                log.warning("metric %s of %s is a %s, elsewhere a %s; left out", family.name, source, family.type,
                            merged.type)
                continue
            merged.samples.extend(s._replace(labels={**s.labels, "service": source}) for s in family.samples)
    return list(families.values())


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


async def gather(nc: NATS | None, node: str, services: list[str], own: CollectorRegistry) -> bytes:
    answers = await asyncio.gather(*(ask(nc, node, s) for s in services))
    texts = {GATEWAY: generate_latest(own).decode()}
    texts.update({s: text for s, text in zip(services, answers, strict=True) if text is not None})
    up = Metric("towntip_up", "1 if the process answered this scrape's request for its metrics, else 0", "gauge")
    up.add_sample("towntip_up", {"service": GATEWAY}, 1)
    for s, text in zip(services, answers, strict=True):
        up.add_sample("towntip_up", {"service": s}, 0 if text is None else 1)
    out = CollectorRegistry(auto_describe=False)
    out.register(_Families([*merge(texts), up]))
    return generate_latest(out)


router = APIRouter()


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(admin_only)])
async def node_metrics(request: Request) -> Response:
    """Every process's metrics in Prometheus's text format (scrape with the admin token as a bearer token)."""
    settings = request.app.state.settings
    body = await gather(getattr(request.app.state, "nc", None), settings.node_id, settings.expected_services(),
                        request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE)
