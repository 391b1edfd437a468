"""Request/reply endpoints of a service through nats.micro: validated input, errors as NATS service errors.

Discovery and stats answer on $SRV.PING/INFO/STATS. Every endpoint lives at svc.<node>.<service>.<name> in a
queue group named after the service, so several instances share the load. A handler raises
towntip.kernel.errors.ServiceError for what the caller may see; anything else is logged here and answered
as "500 internal error", never with a traceback or a repr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from towntip.kernel import domain, errors, metrics
from towntip.kernel.bus import subjects
from towntip.kernel.telemetry import extract_context, tracer
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = domain.MAX_REQUEST_BYTES
Handler = Callable[[Any], Awaitable[BaseModel | dict[str, Any] | list[Any] | None]]


@dataclass(frozen=True)
class Endpoint:
    name: str  # "balance", "events.put": the subject's tail
    handler: Handler
    request_model: type[BaseModel] | None = None
    max_bytes: int = MAX_REQUEST_BYTES
    # From a domain's table (towntip.kernel.domain): what it answers, may refuse, and who may call it.
    response_model: type[BaseModel] | None = None
    refusals: tuple[errors.Refusal, ...] = ()
    role: str | None = None
    domain: str = ""
    http: Any = None  # a towntip.kernel.domain.Http: also a route of the gateway's HTTP API (under /api/v1)


@dataclass
class Endpoints:
    """A service's endpoints, started together: from its domains' tables (`from_domains`)."""

    items: list[Endpoint] = field(default_factory=list)

    @classmethod
    def from_domains(cls, domains: Iterable[domain.Domain], *, uow: UnitOfWork,
                     context: Mapping[str, Any] | None = None, setup: domain.Setup | None = None) -> Endpoints:
        """The endpoints of a service from its domains' tables: each handler served through the unit of work."""
        eps = cls()
        for b in domain.bind(domains, uow=uow, context=context, setup=setup):
            eps.items.append(Endpoint(b.op.name, b.call, b.op.request, b.op.max_bytes, b.op.response,
                                      b.domain.refusals_of(b.op), b.op.role, b.domain.name, b.op.http))
        return eps

    @classmethod
    def describe(cls, domains: Iterable[domain.Domain]) -> Endpoints:
        """The declarations only (for documents such as AsyncAPI): nothing bound, nothing to serve with."""
        return cls([Endpoint(op.name, op.handler, op.request, op.max_bytes, op.response, d.refusals_of(op), op.role,
                             d.name, op.http) for d in domains for op in d.ops])


def one_line(text: str, limit: int = 500) -> str:
    """Header values cannot hold line breaks; keep reasons short and on one line."""
    return " ".join(text.split())[:limit]


def _encode(result: BaseModel | dict[str, Any] | list[Any] | None) -> bytes:
    if result is None:
        return b""
    if isinstance(result, BaseModel):
        return result.model_dump_json().encode()
    return json.dumps(result, default=str, ensure_ascii=False).encode()


def error_body(exc: errors.ServiceError) -> bytes:
    """The refusal as JSON too, for clients that read bodies rather than headers."""
    return json.dumps({"code": exc.error_code, "status": exc.code, "reason": exc.reason}, ensure_ascii=False).encode()


REPLY_PREFIXES = ("_INBOX.", "_R_.")  # where an answer may go: requesters' inboxes, service-import replies
MAX_IN_FLIGHT = 64  # requests of one endpoint handled at once by one process; more wait in NATS's queue


def _is_inbox(req: Request, subject: str) -> bool:
    if (req._msg.reply or "").startswith(REPLY_PREFIXES):
        return True
    # Answers go out under nats-server's allow_responses, which publishes to whatever reply subject the asker set,
    # past this service's own deny list: an asker could aim an answer at another service's endpoint or at the
    # JetStream API. Only inboxes (and the remapped replies of service imports) get one; the request is not
    # served, so it changes nothing.
    log.warning("request on %s with reply subject %r dropped: not an inbox", subject, req._msg.reply)
    return False


def _wrap(service: str, subject: str, ep: Endpoint, counted: metrics.EndpointMetrics
          ) -> Callable[[Request], Awaitable[None]]:
    """nats.py hands a subscription's messages to its callback one at a time: a handler awaited there would serve
    one request at a time per endpoint (one password hash at a time, however many cores). So the callback starts a
    task per request, at most MAX_IN_FLIGHT at once, and returns."""
    span_name = f"{service} {ep.name}"
    otel = tracer(f"towntip.{service}")
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    running: set[asyncio.Task[None]] = set()

    async def dispatch(req: Request) -> None:
        if not _is_inbox(req, subject):
            return
        await slots.acquire()  # back-pressure: the subscription stops reading while all slots are busy
        task = asyncio.create_task(serve(req))
        running.add(task)

        def done(t: asyncio.Task[None]) -> None:
            running.discard(t)
            slots.release()

        task.add_done_callback(done)

    async def serve(req: Request) -> None:
        started = time.perf_counter()
        outcome = counted.error  # until answered otherwise (a reply that could not be sent counts as an error)
        try:
            with otel.start_as_current_span(
                span_name, context=extract_context(req.headers), kind=trace.SpanKind.SERVER,
                attributes={"messaging.destination.name": subject},
            ) as span:
                try:
                    if len(req.data) > ep.max_bytes:
                        raise errors.BadRequest(
                            f"request is {len(req.data)} bytes; at most {ep.max_bytes} are accepted")
                    payload: Any = None
                    if ep.request_model is not None:
                        try:
                            payload = ep.request_model.model_validate_json(req.data or b"{}")
                        except ValidationError as exc:
                            raise errors.BadRequest(errors.describe_validation_error(exc)) from None
                    result = await ep.handler(payload)
                except errors.ServiceError as exc:
                    span.set_attribute("error.code", exc.code)
                    span.set_attribute("error.type", exc.error_code)
                    await req.respond_error(str(exc.code), one_line(exc.reason), data=error_body(exc),
                                            headers={subjects.HDR_REFUSAL_CODE: exc.error_code})
                    outcome = counted.refused
                    return
                except Exception:
                    log.exception("endpoint %s failed", subject)
                    span.set_status(trace.StatusCode.ERROR)
                    await req.respond_error("500", "internal error")
                    return
                await req.respond(_encode(result))
                outcome = counted.ok
        finally:
            outcome.record(time.perf_counter() - started)

    return dispatch


def _metrics_handler(subject: str, registry: metrics.ServiceMetrics) -> Callable[[Request], Awaitable[None]]:
    """svc.<node>.<service>.metrics: the registry's text exposition (the gateway's GET /metrics gathers them)."""

    async def handler(req: Request) -> None:
        if not _is_inbox(req, subject):
            return
        try:
            text = await registry.exposition()
        except Exception:
            log.exception("metrics of %s failed", subject)
            await req.respond_error("500", "internal error")
            return
        await req.respond(text, headers={"Content-Type": metrics.CONTENT_TYPE})

    return handler


async def start_service(
    nc: NATS, *, node: str, service: str, version: str, endpoints: Endpoints, description: str = ""
) -> Service:
    """Register the service with nats.micro; the caller stops it (await svc.stop())."""
    svc = await add_service(
        nc, name=service, version=version, description=description or f"{service} service of {node}",
        # host: which machine (container, pod) runs this instance, so a probe there can ask for its own instance
        # (towntip/cli/health.py) rather than any of the service's.
        metadata={"node": node, "host": socket.gethostname()},
    )
    group = svc.add_group(name=subjects.svc_group(node, service), queue_group=service)
    counted = metrics.of(node, service)
    for ep in endpoints.items:
        subject = subjects.svc(node, service, ep.name)
        await group.add_endpoint(
            name=ep.name.replace(".", "-"), subject=ep.name,
            handler=_wrap(service, subject, ep, counted.endpoint(ep.name)),
        )
    # Every service answers its metrics, whatever its tables declare (the gateway's GET /metrics asks each).
    await group.add_endpoint(name=metrics.EP_METRICS, subject=metrics.EP_METRICS,
                             handler=_metrics_handler(subjects.svc(node, service, metrics.EP_METRICS), counted))
    # The subscriptions are only buffered so far: a round trip makes sure the server has them, so that a caller who
    # was told "started" never gets "no responders" (seen under load as a flaky first request).
    await nc.flush(timeout=10)
    return svc
