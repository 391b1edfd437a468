"""OpenTelemetry for every process: one trace across HTTP and NATS (W3C trace context in message headers).

Spans go nowhere (`none`), to the console, to a JSON-lines file that rotates (`file:<path>`: at most
`TRACE_FILE_BYTES` per file and `TRACE_FILE_BACKUPS` older files, so a node's disk holds at most 40 MB of traces
however long it runs), or to an OTLP collector over HTTP (`otlp:http://host:4318`, batched). Logs are text or JSON
lines (`setup_logging`); a JSON record carries the trace and span ids of the span current when it was logged, so
an operator goes from a log line to its trace. Spans and logs hold subjects, route templates and refusal codes,
never request bodies (card IDms stay out of span names: gateway/tracing.py).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
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

TRACE_FILE_BYTES = 10 * 1024 * 1024  # a trace file is rotated once it is this big
TRACE_FILE_BACKUPS = 3  # older files kept: traces.jsonl.1 .. .3 (the oldest is deleted at the next rotation)


class JsonLinesSpanExporter(SpanExporter):
    """Writes finished spans as JSON lines: enough to follow one trace across processes on a laptop or in tests."""

    def __init__(self, path: str | Path, *, max_bytes: int = TRACE_FILE_BYTES, backups: int = TRACE_FILE_BACKUPS
                 ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()

    def _rotate_if_full(self) -> None:
        """path -> path.1 -> ... -> path.<backups>; the oldest goes. Several processes of a node append to one file:
        each checks the size before it writes, so two may rotate at once (a generation is lost, never the bound)."""
        try:
            if self.path.stat().st_size < self.max_bytes:
                return
        except FileNotFoundError:
            return
        for n in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            newer = self.path.with_name(f"{self.path.name}.{n - 1}") if n > 1 else self.path
            try:
                if n == self.backups:
                    older.unlink(missing_ok=True)
                os.replace(newer, older)
            except FileNotFoundError:
                continue
        if self.backups == 0:
            self.path.unlink(missing_ok=True)

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
        if not lines:
            return SpanExportResult.SUCCESS
        with self._lock:
            self._rotate_if_full()
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS


def otlp_endpoint(base: str) -> str:
    """`http://host:4318` -> its traces path (the OTLP/HTTP default); a URL that names a path is taken as it is."""
    base = base.strip()
    path = base.split("://", 1)[-1].partition("/")[2]
    return base if path.strip("/") else base.rstrip("/") + "/v1/traces"


def _processor(export: str) -> SpanProcessor | None:
    """Where spans go: none | console | file:<path> | otlp:<url> (OTLP over HTTP to an OpenTelemetry collector,
    e.g. otlp:http://otel-collector:4318, as compose and Kubernetes run it)."""
    if export == "console":
        return BatchSpanProcessor(ConsoleSpanExporter())
    if export.startswith("file:"):
        # Simple (synchronous) so spans are on disk when the request that made them has been answered.
        return SimpleSpanProcessor(JsonLinesSpanExporter(export[5:]))
    if export.startswith("otlp:") and len(export) > 5:
        # Batched in a thread of its own: a slow or absent collector costs requests nothing (a full queue drops
        # spans, 2,048 at most are kept), and the provider flushes what is left when the process exits.
        return BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint(export[5:]), timeout=5))
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


def tracer_provider(service_name: str, export: str = "none", *, node_id: str = "") -> TracerProvider:
    """A tracer provider of one service exporting as `export` says (see `_processor`)."""
    return _provider(service_name, node_id, _processor(export), owner=True)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, process, logger, message, and the trace_id / span_id
    of the span current when the record was made (a handler formats in the caller's context), plus the traceback.
    The stdlib's Formatter is enough for these few keys: no dependency for it."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "process": getattr(record, "service", self.process),  # a hosted service's own name (kernel/host.py)
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = format(ctx.trace_id, "032x")
            out["span_id"] = format(ctx.span_id, "016x")
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def setup_logging(process: str, level: str = "INFO", fmt: str = "text") -> None:
    """The root logger of a process on stderr: `text` (readable in a terminal: `make run`) or `json` (one object a
    line with the trace id, for a log collector)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLogFormatter(process))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context (traceparent, tracestate) to NATS or HTTP headers."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(headers or {}))
