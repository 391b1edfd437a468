"""kernel.metrics against a real nats-server and database: a service's requests and refusals counted, its consumer's
lag, outbox backlog and dead letters read when scraped, all answered on svc.<node>.<service>.metrics."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest
from nats.js.api import StreamConfig
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from sqlalchemy import insert, update

from tests.support.bus_helpers import EffectHandler, make_engine, tables
from towntip.kernel import db, errors, metrics
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.kernel.bus.endpoints import Endpoints, start_service
from towntip.kernel.bus.envelope import new_id, utcnow
from towntip.kernel.bus.streams import dlq_stream_config, ensure_stream
from towntip.kernel.domain import Domain, own
from towntip.kernel.uow import UnitOfWork


class Meet(BaseModel):
    n: int


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition (parsed by prometheus_client's own parser: it must be valid)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


async def scrape(nc: Any, node: str, service: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    msg = await nc.request(subjects.svc(node, service, metrics.EP_METRICS), b"", timeout=5)
    assert msg.headers and msg.headers.get("Content-Type", "").startswith("text/plain")
    return samples(msg.data.decode())


async def test_requests_and_refusals_are_counted_by_endpoint_and_outcome(nc) -> None:
    node = f"m{secrets.token_hex(4)}"

    async def meet(q: Meet) -> dict[str, int]:
        if q.n < 0:
            raise errors.BadRequest("n must not be negative")
        return {"n": q.n}

    async def boom() -> None:
        raise RuntimeError("a bug")

    eps = Endpoints.from_domains([Domain("demo", ops=(own("meet", Meet, None, meet), own("boom", None, None, boom)))],
                                 uow=UnitOfWork(None))  # type: ignore[arg-type]
    svc = await start_service(nc, node=node, service="demo", version="0.0.1", endpoints=eps)
    try:
        subject = subjects.svc(node, "demo", "meet")
        for i in range(3):
            await rpc.call(nc, subject, Meet(n=i))
        with pytest.raises(errors.BadRequest):
            await rpc.call(nc, subject, Meet(n=-1))
        with pytest.raises(errors.BadRequest):
            await rpc.call(nc, subject, {"n": "many"})  # refused before the handler: counted all the same
        with pytest.raises(errors.ServiceError):
            await rpc.call(nc, subjects.svc(node, "demo", "boom"))
        found = await scrape(nc, node, "demo")
    finally:
        await svc.stop()
    assert value(found, "towntip_endpoint_requests_total", endpoint="meet", outcome="ok") == 3
    assert value(found, "towntip_endpoint_requests_total", endpoint="meet", outcome="refused") == 2
    assert value(found, "towntip_endpoint_requests_total", endpoint="meet", outcome="error") is None  # no zeros
    assert value(found, "towntip_endpoint_requests_total", endpoint="boom", outcome="error") == 1
    assert value(found, "towntip_endpoint_seconds_count", endpoint="meet", outcome="ok") == 3
    assert value(found, "towntip_endpoint_seconds_bucket", endpoint="meet", outcome="ok", le="+Inf") == 3
    assert (value(found, "towntip_endpoint_seconds_sum", endpoint="meet", outcome="ok") or 0) > 0
    assert (value(found, "process_resident_memory_bytes") or 0) > 0
    # The metrics endpoint does not count itself, and other nodes' services in this process are not mixed in.
    assert not [k for k in found if dict(k[1]).get("endpoint") == metrics.EP_METRICS]


async def test_consumer_lag_outbox_backlog_and_dead_letters_are_read_when_scraped(nc, database) -> None:
    node = f"m{secrets.token_hex(4)}"
    engine = await make_engine(*database)
    js = nc.jetstream()
    stream = f"WORK_{node.upper()}"
    await ensure_stream(js, StreamConfig(name=stream, subjects=[f"work.{node}.>"]))
    await ensure_stream(js, dlq_stream_config(node))
    sessions = db.sessionmaker(engine)
    consumer = IdempotentConsumer(
        nc=nc, js=js, sessions=sessions, tables=tables, handler=EffectHandler(),
        spec=ConsumerSpec(stream=stream, durable="effects", filter_subject=f"work.{node}.>", service="demo",
                          node=node, fetch_timeout=0.3),
    )
    counted = metrics.of(node, "demo")
    counted.watch_outbox(sessions)
    counted.watch_dlq(js)
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        # Five messages wait before the consumer runs: its lag is 5.
        await js.add_consumer(stream, config=consumer.consumer_config())
        for i in range(5):
            await js.publish(f"work.{node}.a", json.dumps({"key": f"k{i}"}).encode())
        await js.publish(f"work.{node}.a", b"{poison")
        async with sessions() as session, session.begin():
            await session.execute(insert(tables.outbox), [
                {"event_id": new_id(), "subject": f"evt.{node}.demo.thing", "payload": b"{}", "headers": "{}",
                 "created_at": utcnow()} for _ in range(3)])
        found = samples((await counted.exposition()).decode())
        assert value(found, "towntip_consumer_pending", consumer="effects") == 6
        assert value(found, "towntip_outbox_backlog") == 3
        assert value(found, "towntip_consumer_messages_total", consumer="effects", result="applied") == 0

        task = asyncio.create_task(consumer.run(stop))
        deadline = asyncio.get_running_loop().time() + 15
        while consumer.stats.applied < 5 or consumer.stats.dead_lettered < 1:
            assert asyncio.get_running_loop().time() < deadline, consumer.stats
            await asyncio.sleep(0.05)
        async with sessions() as session, session.begin():
            await session.execute(update(tables.outbox).values(published_at=utcnow()))
        found = samples((await counted.exposition()).decode())
        assert value(found, "towntip_consumer_pending", consumer="effects") == 0
        assert value(found, "towntip_consumer_ack_pending", consumer="effects") == 0
        assert value(found, "towntip_consumer_messages_total", consumer="effects", result="applied") == 5
        assert value(found, "towntip_consumer_messages_total", consumer="effects", result="dead_lettered") == 1
        assert value(found, "towntip_dlq_messages", consumer="effects") == 1
        assert value(found, "towntip_outbox_backlog") == 0
        assert value(found, "towntip_metrics_probe_failures_total", probe="outbox") is None
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 10)
        await engine.dispose()


async def test_a_failing_probe_is_counted_and_the_rest_still_answers() -> None:
    counted = metrics.ServiceMetrics("mfail", "demo")
    spool = counted.gauge("towntip_test_spool", "a probe's gauge", ("terminal",))

    async def broken() -> None:
        raise ConnectionError("database went away")

    async def fine() -> None:
        spool.labels("t1").set(4)

    counted.probe("broken", broken)
    counted.probe("fine", fine)
    found = samples((await counted.exposition()).decode())
    assert value(found, "towntip_metrics_probe_failures_total", probe="broken") == 1
    assert value(found, "towntip_test_spool", terminal="t1") == 4
    assert counted.gauge("towntip_test_spool", "again") is spool  # made once, however often a service restarts
