"""Fault test: taps stream from a terminal agent while the points service (`python -m services.points`, SIGKILL)
and the nats-server (SIGKILL) are killed and restarted, three rounds each. At the end every tap the terminal made
is credited exactly once: the ledger holds one journal entry and one tap row per tap, each card's balance is its
taps times the event's rule, the postings sum to zero, nothing is dead-lettered, and nothing waits on the device.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from edge.readers import CardRead
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import Spool
from services.points.ledger.models import journal, postings
from services.points.taps import service
from services.points.taps.models import taps
from tests.edge.test_edge_agent import NODE
from tests.points.test_tap_path import CARD_KEY, PointsProcess, define_event
from towntip.kernel import db
from towntip.kernel.bus import subjects
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.node.natsd import NatsServer, free_port

pytestmark = pytest.mark.slow
def card_of(i: int) -> str:
    return f"0F{i + 1:014X}"
ROUNDS = 3
# Touches made in each phase (a touch every 12.5 ms): the node up, then the points service or NATS down.
UP, DOWN = 80, 24


async def test_taps_survive_points_and_nats_killed_repeatedly(database: tuple[str, str | None], tmp_path: Path
                                                              ) -> None:
    url, schema = database
    server = NatsServer(node_id=NODE, data_dir=tmp_path / "nats", port=free_port())
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNTIP_")}
    env.update({"TOWNTIP_NODE_ID": NODE, "TOWNTIP_NATS_URL": server.url, "TOWNTIP_DATA_DIR": str(tmp_path / "var"),
                "TOWNTIP_DATABASE_URL": url, "TOWNTIP_CARD_KEY": CARD_KEY, "TOWNTIP_TRACE_EXPORT": "none"})
    if schema:
        env["TOWNTIP_DATABASE_SCHEMA"] = schema
    points = PointsProcess(env, tmp_path / "points.log")
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    spool = Spool(tmp_path / "terminal.sqlite3")
    agent = TerminalAgent(None, NODE, "hall-1", spool, "ev", "participant", debounce=0, heartbeat_interval=0.5,
                          publish_timeout=1.0, backoff_initial=0.05, backoff_max=0.5)
    tnc = None
    engine = None
    try:
        await ensure_node_streams(nc.jetstream(), NODE)
        proc = points.start()
        await define_event(nc, "ev", proc=proc, why=points.output)
        tnc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1,
                                 reconnected_cb=agent.on_reconnected)
        await agent.attach(tnc)
        await agent.start()

        stop = asyncio.Event()
        made: list[str] = []
        t0 = datetime.now(UTC)

        async def touch() -> None:
            """A steady stream of touches (about 80 a second), whatever happens to the node."""
            i = 0
            while not stop.is_set():
                # a card of its own for each touch: a card earns an event's points once
                tap = await agent.tap(CardRead(card_of(i), t0 + timedelta(milliseconds=i)))
                assert tap is not None
                made.append(tap.tap_id)
                i += 1
                await asyncio.sleep(0.0125)

        toucher = asyncio.create_task(touch())

        async def touches(k: int, while_: str) -> None:
            """Wait until `k` more touches have been made (about k/80 s on a quiet machine). A terminal whose tap
            blocks while the node is down makes none: the wait then fails, however slow or fast the machine."""
            target = len(made) + k
            deadline = time.monotonic() + 60
            while len(made) < target:
                assert not toucher.done(), toucher.exception()
                assert time.monotonic() < deadline, f"touches stopped while {while_}: {len(made)} of {target}"
                await asyncio.sleep(0.01)

        for _ in range(ROUNDS):
            await touches(UP, "the node ran")
            proc.send_signal(signal.SIGKILL)  # the points service dies mid-stream
            proc.wait()
            await touches(DOWN, "the points service was dead")
            proc = points.start()
            await touches(UP, "the points service restarted")
            server.kill()  # the node's nats-server dies: terminal and service lose their connection
            await touches(DOWN, "the nats-server was dead")
            server.start()
        await touches(UP, "the node came back")
        stop.set()
        await toucher
        n = len(made)
        assert n >= ROUNDS * (2 * UP + 2 * DOWN) + UP, n

        if schema is None:
            engine = create_async_engine(url)  # reads only, no BEGIN IMMEDIATE: never waits for the service
        else:
            engine = db.create_engine(url, schema=schema)
        sessions = db.sessionmaker(engine)

        async def recorded() -> int:
            async with sessions() as s:
                return (await s.execute(select(func.count()).select_from(taps))).scalar_one()

        deadline = time.monotonic() + 40
        while (got := await recorded()) < n or spool.queue_length():
            assert proc.poll() is None, points.output()
            assert time.monotonic() < deadline, (
                f"{got} of {n} taps recorded; spool {spool.counts()}\n{points.output()}")
            await asyncio.sleep(0.1)

        # Exactly once, on the ledger's side.
        key = bytes.fromhex(CARD_KEY)
        spooled = spool.all()
        assert len(spooled) == n and spool.queue_length() == 0
        async with sessions() as s:
            assert await recorded() == n
            assert set((await s.execute(select(taps.c.tap_id))).scalars()) == set(made)
            assert (await s.execute(select(func.count()).select_from(journal))).scalar_one() == n
            assert (await s.execute(select(func.coalesce(func.sum(postings.c.amount), 0)))).scalar_one() == 0
            assert await service.system_balance(s, service.ISSUANCE) == -n
            for card in sorted({r.tap.card_idm for r in spooled})[::7]:  # a sample: one card in seven
                bal = await service.get_card_balance(session=s, card_key=key, idm=card)
                assert (bal.balance, bal.taps) == (1, 1), card
        js = nc.jetstream()
        assert (await js.stream_info(subjects.dlq_stream(NODE))).state.messages == 0, points.output()
        # On the device: every tap was handed over; those whose outcome was lost with a connection stay
        # "accepted" (durable in the stream, credited above), the others are settled as credited or duplicate.
        assert {r.outcome for r in spooled} <= {"credited", "duplicate", None}
        assert all(r.state in ("accepted", "settled") for r in spooled)
        assert sum(r.outcome == "credited" for r in spooled) > n // 2
    finally:
        await agent.stop()
        spool.close()
        for client in (tnc, nc):
            if client is not None and not client.is_closed:
                await client.close()
        points.kill_all()
        server.stop()
        if engine is not None:
            await engine.dispose()
