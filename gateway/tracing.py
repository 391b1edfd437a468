"""Trace context from HTTP into NATS: a SERVER span per request, current while the route runs.

A pure ASGI middleware (not BaseHTTPMiddleware) so the span's context is the one the route's
rpc.call sees and injects into the NATS headers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from towntip.kernel.telemetry import extract_context, tracer

UNTRACED = ("/healthz", "/metrics")  # polled every few seconds: not worth a span


class TraceMiddleware:
    def __init__(self, app: ASGIApp, templates: dict[Callable[..., Any], str] | None = None) -> None:
        self.app = app
        self.templates = templates or {}
        self.tracer = tracer("towntip.gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNTRACED:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET")
        parent = extract_context(headers)
        # Named after the raw path until routing tells us the route template (which keeps card IDms out).
        span = self.tracer.start_span(
            f"HTTP {method}", context=parent, kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR)
            raise
        finally:
            endpoint = scope.get("endpoint")
            template = ((self.templates.get(endpoint) if endpoint is not None else None)
                        or getattr(scope.get("route"), "path", None))
            if template:
                span.set_attribute("http.route", template)
                span.update_name(f"HTTP {method} {template}")
            span.end()
            otel_context.detach(token)
