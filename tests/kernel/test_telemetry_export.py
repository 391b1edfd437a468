"""Where spans and logs go: an OTLP collector (a real OTLP/HTTP receiver here, decoding the protobuf), a trace file
that rotates and stays bounded, and JSON log lines that carry the current trace and span ids."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from towntip.kernel.telemetry import (
    JsonLinesSpanExporter,
    JsonLogFormatter,
    otlp_endpoint,
    setup_logging,
    tracer_provider,
)


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest in protobuf."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.paths.append(self.path)
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                outer.requests.append(req)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                outer.got.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def spans(self) -> list[tuple[str, str, bytes, bytes, bytes]]:
        """(service.name, span name, trace id, span id, parent span id) of every span received."""
        out = []
        for req in self.requests:
            for rs in req.resource_spans:
                attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append((attrs.get("service.name", ""), s.name, s.trace_id, s.span_id, s.parent_span_id))
        return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def test_otlp_endpoint_adds_the_traces_path_only_to_a_bare_address() -> None:
    assert otlp_endpoint("http://collector:4318") == "http://collector:4318/v1/traces"
    assert otlp_endpoint("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert otlp_endpoint("https://otel.example.jp/custom/traces") == "https://otel.example.jp/custom/traces"


def test_spans_of_a_request_reach_an_otlp_collector_with_the_service_name(receiver: Receiver,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    provider = tracer_provider("points", f"otlp:{receiver.url}", node_id="tsuru")
    try:
        tracer = provider.get_tracer("towntip.points")
        with tracer.start_as_current_span("points balance", kind=trace.SpanKind.SERVER) as server:
            with tracer.start_as_current_span("SELECT ledger"):
                pass
        assert provider.force_flush(10_000)
        assert receiver.got.wait(10)
    finally:
        provider.shutdown()
    spans = receiver.spans()
    assert receiver.paths[0] == "/v1/traces"
    assert {(service, name) for service, name, *_ in spans} == {("points", "points balance"),
                                                                ("points", "SELECT ledger")}
    by_name = {name: (tid, sid, parent) for _, name, tid, sid, parent in spans}
    ctx = server.get_span_context()
    assert by_name["points balance"][0] == ctx.trace_id.to_bytes(16, "big")
    assert by_name["SELECT ledger"][0] == by_name["points balance"][0]  # one trace
    assert by_name["SELECT ledger"][2] == by_name["points balance"][1]  # the child of the request's span


def test_the_trace_file_rotates_and_the_total_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    limit, backups = 4000, 2
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path, max_bytes=limit, backups=backups)))
    tracer = provider.get_tracer("t")
    for i in range(400):  # ~100 kB of spans: 25 times the limit
        with tracer.start_as_current_span(f"request {i}", attributes={"padding": "x" * 100}):
            pass
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["traces.jsonl", "traces.jsonl.1", "traces.jsonl.2"]
    line = max(len(x) for x in path.read_text().splitlines()) + 1
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total <= (backups + 1) * (limit + line), total  # a file may pass the limit by the one write that filled it
    assert total >= backups * limit  # the older files are full ones, kept
    # the newest spans are in the current file, the oldest ones are gone
    last = [json.loads(x)["name"] for x in path.read_text().splitlines()]
    assert last[-1] == "request 399"
    kept = "".join(p.read_text() for p in tmp_path.iterdir())
    assert '"request 0"' not in kept


def test_json_logs_carry_the_current_trace_and_span_ids() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter("points"))
    logger = logging.getLogger("towntip.test.jsonlog")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    tracer = TracerProvider().get_tracer("t")
    try:
        with tracer.start_as_current_span("points tap") as span:
            logger.info("tap %s recorded", "t-1")
        logger.warning("outside any span: 残高")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    inside, outside, failed = (json.loads(x) for x in stream.getvalue().splitlines())
    ctx = span.get_span_context()
    assert inside["message"] == "tap t-1 recorded" and inside["level"] == "INFO" and inside["process"] == "points"
    assert inside["trace_id"] == format(ctx.trace_id, "032x") and inside["span_id"] == format(ctx.span_id, "016x")
    assert inside["logger"] == "towntip.test.jsonlog" and inside["time"].endswith("+00:00")
    assert "trace_id" not in outside and outside["message"] == "outside any span: 残高"
    assert "ValueError: boom" in failed["exception"]


def test_setup_logging_installs_one_handler_in_the_chosen_format() -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        setup_logging("gateway", "WARNING", "json")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonLogFormatter)
        assert root.level == logging.WARNING
        setup_logging("gateway", "INFO", "text")
        assert len(root.handlers) == 1 and not isinstance(root.handlers[0].formatter, JsonLogFormatter)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in before:
            root.addHandler(h)
        root.setLevel(level)
