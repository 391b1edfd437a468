"""OpenTelemetry for every process: one trace across HTTP and NATS (W3C trace context in message headers)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)


class JsonLinesSpanExporter(SpanExporter):
    """Writes finished spans as JSON lines: enough to follow one trace across processes on a laptop or in tests."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:  # a finished SDK span always has one; without it there are no ids to write
                continue
            parent = span.parent
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "service": span.resource.attributes.get("service.name"),
                        "trace_id": format(ctx.trace_id, "032x"),
                        "span_id": format(ctx.span_id, "016x"),
                        "parent_id": format(parent.span_id, "016x") if parent else None,
                        "kind": span.kind.name,
                        "start": span.start_time,
                        "end": span.end_time,
                        "status": span.status.status_code.name,
                        "attributes": {k: str(v) for k, v in (span.attributes or {}).items()},
                        # A consumer's batch span links to the span of each message it took (their own traces).
                        "links": [
                            {"trace_id": format(link.context.trace_id, "032x"),
                             "span_id": format(link.context.span_id, "016x")}
                            for link in span.links
                        ],
                    },
                    ensure_ascii=False,
                )
            )
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS


def _processor(export: str) -> SpanProcessor | None:
    """Where spans go: none | console | file:<path> | otlp:<url> (OTLP over HTTP to an OpenTelemetry collector,
    e.g. otlp:http://otel-collector:4318, as compose and Kubernetes run it)."""
    if export == "console":
        return BatchSpanProcessor(ConsoleSpanExporter())
    if export.startswith("file:"):
        # Simple (synchronous) so spans are on disk when the request that made them has been answered.
        return SimpleSpanProcessor(JsonLinesSpanExporter(export[5:]))
    if export.startswith("otlp:") and len(export) > 5:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = export[5:].rstrip("/") + "/v1/traces"
        return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5))
    if export not in ("", "none"):
        log.warning("unknown trace export %r; traces are not exported", export)
    return None


def _provider(service_name: str, node_id: str, processor: SpanProcessor | None, *, owner: bool) -> TracerProvider:
    resource = Resource.create({"service.name": service_name, "service.namespace": node_id or "towntip"})
    provider = TracerProvider(resource=resource, shutdown_on_exit=owner)
    if processor is not None:
        provider.add_span_processor(processor)
    return provider


class HostedTracerProvider(trace.TracerProvider):
    """Several services in one process (towntip.kernel.host): OpenTelemetry has one provider per process, and a
    provider one `service.name`. This one keeps a provider per service (one span processor shared) and hands out
    the tracer of the service asking: by its name (`towntip.<service>`, as the kernel's consumers and endpoints
    name theirs), else by the hosted service of the current task (`current`), else the first service's."""

    def __init__(self, services: Sequence[str], node_id: str, processor: SpanProcessor | None,
                 current: Callable[[], str]) -> None:
        self.providers = {name: _provider(name, node_id, processor, owner=i == 0) for i, name in enumerate(services)}
        self.first = self.providers[services[0]]
        self.current = current

    def get_tracer(self, instrumenting_module_name: str, instrumenting_library_version: str | None = None,
                   schema_url: str | None = None, attributes: Attributes | None = None) -> trace.Tracer:
        name = instrumenting_module_name.removeprefix("towntip.")
        provider = self.providers.get(name) or self.providers.get(self.current()) or self.first
        return provider.get_tracer(instrumenting_module_name, instrumenting_library_version, schema_url, attributes)


def setup_tracing(service_name: str | Sequence[str], export: str = "none", *, node_id: str = "",
                  current: Callable[[], str] | None = None) -> None:
    """Install a tracer provider for this process: one service's, or (a list of names, with `current` naming the
    service of the running task) the services hosted in it. `export`: see `_processor`."""
    processor = _processor(export)
    if isinstance(service_name, str):
        trace.set_tracer_provider(_provider(service_name, node_id, processor, owner=True))
    else:
        trace.set_tracer_provider(HostedTracerProvider(list(service_name), node_id, processor,
                                                       current or (lambda: "")))


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context (traceparent, tracestate) to NATS or HTTP headers."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(headers or {}))
