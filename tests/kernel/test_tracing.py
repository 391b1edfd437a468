"""One trace across HTTP and NATS, read back from the spans a whole node (`towntip node up`) writes.

The node runs with its default trace export (file:<data-dir>/traces.jsonl), which the gateway and the points
service both append to. Spans are written when they end, in other processes: every look is a poll with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.node.test_supervisor import NODE, Node, finish, node_argv
from towntip.kernel.telemetry import JsonLinesSpanExporter
from towntip.node.natsauth import terminal_inbox_prefix
from towntip.node.natsd import free_port

pytestmark = pytest.mark.xdist_group("whole-node")  # tests that start whole nodes run one after another on one worker

Span = dict[str, Any]
BALANCE_ROUTE = "/api/v1/points/cards/{idm}/balance"
EVENTS_ROUTE = "/api/v1/points/events"
TERMINAL = "trace-term"
CARD = "0123456789ABCDEF"


def traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


def read_spans(path: Path) -> list[Span]:
    """Every complete line of the trace file; a line still being written by another process is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    spans = []
    for line in text.splitlines():
        try:
            spans.append(json.loads(line))
        except ValueError:
            continue
    return spans


async def wait_for(path: Path, find: Callable[[list[Span]], Any], what: str, timeout: float = 10.0) -> Any:
    """Polls the trace file until find(spans) returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        spans = read_spans(path)
        found = find(spans)
        if found:
            return found
        if time.monotonic() > deadline:
            tail = "\n".join(json.dumps(s) for s in spans[-10:])
            raise AssertionError(f"no {what} in {path} after {timeout}s; last spans:\n{tail}")
        await asyncio.sleep(0.05)


def one(spans: list[Span], **want: Any) -> Span | None:
    """The single span matching every key=value (None while there is none; two is a failure)."""
    hits = [s for s in spans if all(s.get(k) == v for k, v in want.items())]
    assert len(hits) <= 1, f"expected one span {want}, found {len(hits)}: {hits}"
    return hits[0] if hits else None


def request_trace(spans: list[Span], trace_id: str) -> tuple[Span, Span] | None:
    """(gateway SERVER span, points SERVER span) of one trace, once both are written."""
    gw = one(spans, trace_id=trace_id, service="gateway", kind="SERVER")
    svc = one(spans, trace_id=trace_id, service="points", kind="SERVER")
    return (gw, svc) if gw and svc else None


@pytest.fixture(scope="module")
def traced_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, str]]:
    """A whole node with the default trace export; yields it and its admin token."""
    tmp = tmp_path_factory.mktemp("tracing")
    http_port, nats_port = free_port(), free_port()
    data_dir = tmp / "var"
    out_path = tmp / "node-up.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            node_argv("--node", NODE, "--data-dir", str(data_dir), "--http-port", str(http_port),
                      "--nats-port", str(nats_port)),  # no --trace-export: the default file
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    node = Node(proc, data_dir, http_port, nats_port, out_path)
    try:
        deadline = time.monotonic() + 150  # six processes starting on a busy 2-core machine
        while True:
            assert proc.poll() is None, f"node up exited with {proc.returncode}:\n{node.output}"
            try:
                if httpx.get(f"{node.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the node never became healthy:\n{node.output}"
            time.sleep(0.1)
        token = (data_dir / "secrets" / "admin-token").read_text().strip()
        yield node, token
    finally:
        finish(node)


@pytest.fixture
def traces(traced_node: tuple[Node, str]) -> Path:
    return traced_node[0].data_dir / "traces.jsonl"


async def test_http_traceparent_continues_into_the_points_service(traced_node: tuple[Node, str], traces: Path) -> None:
    node, token = traced_node
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    async with httpx.AsyncClient(base_url=node.base, timeout=10) as c:
        r = await c.get(f"/api/v1/points/cards/{CARD}/balance",
                        headers={"Authorization": f"Bearer {token}", "traceparent": traceparent(trace_id, caller_span)})
    assert r.status_code == 200, r.text

    gw, svc = await wait_for(traces, lambda spans: request_trace(spans, trace_id), f"trace {trace_id}")
    # The gateway continues the caller's trace: its SERVER span's parent is the caller's span.
    assert gw["parent_id"] == caller_span
    assert gw["name"] == f"HTTP GET {BALANCE_ROUTE}"
    assert gw["attributes"]["http.route"] == BALANCE_ROUTE
    assert gw["attributes"]["http.response.status_code"] == "200"
    # rpc.call makes no client span: the points SERVER span hangs right under the gateway's SERVER span.
    assert svc["parent_id"] == gw["span_id"]
    assert svc["name"] == "points balance"
    assert svc["attributes"]["messaging.destination.name"] == f"svc.{NODE}.points.balance"
    assert svc["status"] == gw["status"] == "UNSET"
    assert gw["start"] <= svc["start"] <= svc["end"] <= gw["end"]
    # The route template names the span: the card's IDm is in no span of the trace.
    trace_spans = [s for s in read_spans(traces) if s["trace_id"] == trace_id]
    assert CARD not in json.dumps(trace_spans).upper()


async def test_tap_consumer_span_links_to_the_taps_span(traced_node: tuple[Node, str], traces: Path) -> None:
    node, token = traced_node
    code = f"trace-{secrets.token_hex(4)}"
    async with httpx.AsyncClient(base_url=node.base, timeout=10) as c:
        r = await c.put(f"/api/v1/points/events/{code}", json={"name": "Trace fest"},
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text

    tap_trace, tap_span = secrets.token_hex(16), secrets.token_hex(8)
    tap = {"tap_id": secrets.token_hex(8), "terminal_id": TERMINAL, "card_idm": CARD, "event": code,
           "role": "participant", "tapped_at": datetime.now(UTC).isoformat()}
    nc = await nats.connect(node.operator_url(), connect_timeout=3)
    try:
        # The points service sends outcomes only into the inboxes of enrolled terminals (towntip/node/natsauth.py).
        await nc.request(f"svc.{NODE}.node.enroll", json.dumps({"terminal": TERMINAL}).encode(), timeout=15)
        inbox = f"{terminal_inbox_prefix(TERMINAL)}.{secrets.token_hex(8)}"
        outcomes = await nc.subscribe(inbox)
        await nc.jetstream().publish(
            f"edge.{NODE}.{TERMINAL}.tap", json.dumps(tap).encode(), timeout=5,
            headers={"Nats-Msg-Id": f"tap:{TERMINAL}:{tap['tap_id']}", "Towntip-Result-To": inbox,
                     "traceparent": traceparent(tap_trace, tap_span)},
        )
        outcome = await outcomes.next_msg(timeout=10)
    finally:
        await nc.close()
    assert not (outcome.headers or {}).get("Nats-Service-Error"), outcome.headers
    assert json.loads(outcome.data)["status"] == "credited"

    def consumer_span(spans: list[Span]) -> Span | None:
        for s in spans:
            if s["service"] == "points" and s["kind"] == "CONSUMER" and \
                    {"trace_id": tap_trace, "span_id": tap_span} in s.get("links", []):
                return s
        return None

    span = await wait_for(traces, consumer_span, f"CONSUMER span linked to {tap_trace}/{tap_span}")
    assert span["name"] == "consume points-taps"
    # A batch has many parents: it starts its own trace and links to each message's span instead.
    assert span["parent_id"] is None and span["trace_id"] != tap_trace
    assert int(span["attributes"]["messaging.batch.message_count"]) >= 1
    assert all(len(link["trace_id"]) == 32 and len(link["span_id"]) == 16 for link in span["links"])


async def test_a_request_without_traceparent_gets_one_fresh_trace(traced_node: tuple[Node, str], traces: Path) -> None:
    node, _ = traced_node
    seen: set[str] = set()
    async with httpx.AsyncClient(base_url=node.base, timeout=10) as c:
        for _ in range(2):
            before = {s["trace_id"] for s in read_spans(traces)} | seen
            r = await c.get(EVENTS_ROUTE)
            assert r.status_code == 200, r.text

            def new_trace(spans: list[Span], before: set[str] = before) -> tuple[Span, Span] | None:
                fresh = [s for s in spans if s["trace_id"] not in before and s["service"] == "gateway"
                         and s["kind"] == "SERVER" and s["attributes"].get("http.route") == EVENTS_ROUTE]
                assert len(fresh) <= 1, fresh
                return request_trace(spans, fresh[0]["trace_id"]) if fresh else None

            gw, svc = await wait_for(traces, new_trace, "a new trace of GET /api/v1/points/events")
            assert gw["parent_id"] is None  # a root: nobody asked for a trace
            assert int(gw["trace_id"], 16) != 0
            assert svc["trace_id"] == gw["trace_id"] and svc["parent_id"] == gw["span_id"]
            assert svc["name"] == "points events.list"
            seen.add(gw["trace_id"])
    assert len(seen) == 2  # each request its own trace


def test_exporter_writes_links(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider()  # not the global one
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    linked = trace.SpanContext(int("ab" * 16, 16), int("cd" * 8, 16), is_remote=True,
                               trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    with tracer.start_as_current_span("plain"):
        pass
    with tracer.start_as_current_span("batch", kind=trace.SpanKind.CONSUMER,
                                      links=[trace.Link(linked), trace.Link(trace.INVALID_SPAN_CONTEXT)]):
        pass
    provider.shutdown()
    plain, batch = read_spans(path)
    assert plain["links"] == []
    assert batch["links"] == [{"trace_id": "ab" * 16, "span_id": "cd" * 8}]  # the invalid one is dropped
