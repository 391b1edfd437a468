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


async def test_many_events_are_staged_from_their_models_in_one_statement(database):
    """announce_many and announcement_rows make each envelope from its model (type, version, service, subject);
    the rows go out with the change that stages them."""
    from datetime import UTC, datetime

    from towntip.kernel.bus.envelope import Envelope as Env
    from towntip.kernel.bus.outbox import announce_many, announcement_rows
    from towntip.kernel.contracts.points import EventDefined, TapRecorded

    engine = await make_engine(*database)
    sessions = db.sessionmaker(engine)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    taps = [TapRecorded(key=f"tap:t1:{i}", terminal_id="t1", tap_id=str(i), event="ev", role="participant",
                        points=1, card_ref="ab" * 8, tapped_at=at) for i in range(3)]
    try:
        async with sessions() as session, session.begin():
            assert await announce_many(session, tables, taps, node="testnode", at=at) == 3
            rows = announcement_rows(tables, [EventDefined(code="ev", name="E", participant_points=1,
                                                           volunteer_points=5)], node="testnode")
            await db.write_rows(session, [rows])
        async with sessions() as session:
            t = tables.outbox
            stored = (await session.execute(select(t.c.subject, t.c.payload).order_by(t.c.seq))).all()
        assert [r.subject for r in stored] == ["evt.testnode.points.tap_recorded"] * 3 + [
            "evt.testnode.points.event_defined"]
        envs = [Env.model_validate_json(r.payload) for r in stored]
        assert [TapRecorded.parse(e.data) for e in envs[:3]] == taps and envs[0].time == at
        assert (envs[0].type, envs[0].version, envs[0].service) == ("TapRecorded", 1, "points")
        assert EventDefined.parse(envs[3].data).code == "ev"
    finally:
        await engine.dispose()
