"""The outbox commits with the change, and survives a relay crash between publish and mark."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from tests.support.bus_helpers import make_engine, tables
from towntip.kernel import db
from towntip.kernel.bus.envelope import Envelope
from towntip.kernel.bus.outbox import OutboxRelay, add_events
from towntip.kernel.bus.streams import ensure_stream, evt_stream_config


async def _stage(sessions, n: int) -> list[Envelope]:
    envs = [Envelope(type="ThingHappened", node="testnode", service="demo", data={"n": i}) for i in range(n)]
    async with sessions() as session, session.begin():
        await add_events(session, tables, envs)
    return envs


async def _unpublished(sessions) -> int:
    async with sessions() as session:
        t = tables.outbox
        return (await session.execute(select(func.count()).where(t.c.published_at.is_(None)))).scalar_one()


async def test_events_roll_back_with_the_change(nc, database):
    engine = await make_engine(*database)
    sessions = db.sessionmaker(engine)
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            await add_events(session, tables, [Envelope(type="X", node="testnode", service="demo", data={})])
            raise RuntimeError("the change failed")
    assert await _unpublished(sessions) == 0
    await engine.dispose()


async def test_relay_crash_between_publish_and_mark(nc, database):
    engine = await make_engine(*database)
    sessions = db.sessionmaker(engine)
    js = nc.jetstream()
    await ensure_stream(js, evt_stream_config("testnode", "demo"))
    envs = await _stage(sessions, 25)

    def crash(point: str) -> None:
        if point == "published":
            raise SystemError("relay killed after publishing, before marking")

    crashing = OutboxRelay(js=js, sessions=sessions, tables=tables, fault_hook=crash)
    with pytest.raises(SystemError):
        await crashing.publish_pending()
    assert await _unpublished(sessions) == 25, "rows must stay unpublished until marked"
    assert (await js.stream_info("EVT_TESTNODE_DEMO")).state.messages == 25

    # A fresh relay (the restarted process) publishes them again: the stream keeps one copy of each.
    relay = OutboxRelay(js=js, sessions=sessions, tables=tables)
    assert await relay.publish_pending() == 25
    assert await _unpublished(sessions) == 0
    info = await js.stream_info("EVT_TESTNODE_DEMO")
    assert info.state.messages == 25
    sub = await js.pull_subscribe("evt.testnode.demo.>", durable="check", stream="EVT_TESTNODE_DEMO")
    msgs = await sub.fetch(30, timeout=2)
    ids = [Envelope.from_bytes(m.data).id for m in msgs]
    assert sorted(ids) == sorted(e.id for e in envs)
    assert all(m.headers["Nats-Msg-Id"] == Envelope.from_bytes(m.data).id for m in msgs)
    await engine.dispose()


async def test_relay_runs_and_is_woken(nc, database):
    engine = await make_engine(*database)
    sessions = db.sessionmaker(engine)
    js = nc.jetstream()
    await ensure_stream(js, evt_stream_config("testnode", "demo"))
    relay = OutboxRelay(js=js, sessions=sessions, tables=tables, poll_interval=30)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.2)
    await _stage(sessions, 3)
    relay.wake()  # with a 30 s poll, only the wake can publish within the test's time
    for _ in range(100):
        if await _unpublished(sessions) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _unpublished(sessions) == 0
    stop.set()
    await asyncio.wait_for(task, 5)
    await engine.dispose()
