"""Terminals' heartbeats and status: the agent beats on core NATS, the points service keeps each terminal's latest
state (terminals table), answers terminals.list with `online`, staff read it over HTTP and the operator with
`towntip edge status`. Real nats-server, real points service, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.api import DiscardPolicy
from sqlalchemy import func, select

from edge.readers import CardRead
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import Spool
from gateway.app import create_app
from services.points.app import PointsService
from services.points.tables import bus
from services.points.terminals.models import terminals
from tests.edge.test_cli_edge import cli
from tests.edge.test_edge_agent import NODE
from tests.points.test_tap_path import define_event
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import points as contract
from towntip.kernel.settings import GatewaySettings
from towntip.node.natsd import NatsServer

TOKEN = "staff-token-for-tests"



async def listed(nc: nats.NATS) -> dict[str, contract.TerminalStatus]:
    answer = await rpc.call(nc, subjects.svc(NODE, "points", contract.EP_TERMINALS_LIST), None, timeout=5)
    return {t.terminal_id: t for t in contract.TerminalList.model_validate(answer).terminals}


async def until(check, timeout: float = 10.0):
    """Polls `check` (a coroutine function) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()
        if got:
            return got
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_heartbeats_and_taps_make_the_terminal_list(
    nc: nats.NATS, nats_server: NatsServer, points_service: PointsService, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    await define_event(nc, "ev")
    js = nc.jetstream()
    tnc = await nats.connect(nats_server.url)
    with Spool(tmp_path / "a.sqlite3") as spool_a, Spool(tmp_path / "b.sqlite3") as spool_b:
        # hall-1 beats every 0.2 s (the loop, not called by hand); hall-2 never beats, it only taps.
        hall1 = TerminalAgent(tnc, NODE, "hall-1", spool_a, "ev", "volunteer", heartbeat_interval=0.2,
                              version="test-agent/1")
        hall2 = TerminalAgent(tnc, NODE, "hall-2", spool_b, "ev", heartbeat_interval=0)
        async with hall1, hall2:
            await until(lambda: _beats(hall1, 3))
            t = await hall2.tap(CardRead("0123456789ABCDEF", datetime(2025, 6, 1, 1, 0, tzinfo=UTC)))
            assert t is not None and await hall2.wait_settled(10)
            seen = await until(lambda: _both(nc))
        h1, h2 = seen["hall-1"], seen["hall-2"]
        assert h1.online and (h1.mode, h1.event, h1.queue, h1.unsettled) == ("checkin", "ev", 0, 0)
        assert (h1.version, h1.interval, h1.last_tap_at) == ("test-agent/1", 1, None)
        assert h1.heartbeat_at is not None and h1.heartbeat_at <= h1.last_seen_at
        # Known by its tap only: seen when the tap arrived, its last touch by the terminal's clock.
        assert h2.online and h2.heartbeat_at is None and (h2.mode, h2.event) == ("checkin", "ev")
        assert h2.last_tap_at == datetime(2025, 6, 1, 1, 0, tzinfo=UTC)

        # Heartbeats are not kept in the EDGE stream (it holds hall-2's one tap), nor taken by the tap consumer.
        assert (await js.stream_info(subjects.edge_stream(NODE))).state.messages == 1

        # What a heartbeat says: taps waiting on the device. The node's stream is full for a moment (hall-1's
        # taps are refused there), so two wait; a change of mode is sent at once.
        info = await js.stream_info(subjects.edge_stream(NODE))
        full = copy.copy(info.config)
        full.max_msgs, full.discard = 1, DiscardPolicy.NEW
        await js.update_stream(full)
        hall1 = TerminalAgent(tnc, NODE, "hall-1", spool_a, "ev", heartbeat_interval=3600, publish_timeout=0.3,
                              backoff_max=0.3)
        async with hall1:
            for idm in ("1111111111111111", "2222222222222222"):
                assert await hall1.tap(CardRead(idm, datetime(2025, 6, 2, 9, 0, tzinfo=UTC))) is not None
            hall1.set_mode("coupon")

            async def queued() -> contract.TerminalStatus | None:
                got = (await listed(nc))["hall-1"]
                return got if got.mode == "coupon" and got.queue == 2 else None

            h1 = await until(queued)
            assert h1.event is None and h1.unsettled == 0 and h1.interval == 3600
            assert h1.last_tap_at == datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
    await tnc.close()

    # A terminal speaks only for itself: a heartbeat naming another terminal is ignored (and counted).
    forged = contract.Heartbeat(terminal_id="hall-9", sent_at=datetime.now(UTC), mode="checkin", event="ev",
                                queue=0, unsettled=0)
    await nc.publish(subjects.edge(NODE, "hall-3", "heartbeat"), forged.model_dump_json().encode())
    await nc.publish(subjects.edge(NODE, "hall-3", "heartbeat"), b"not json")
    await nc.flush()
    await until(lambda: _ignored(points_service, 2))
    assert set(await listed(nc)) == {"hall-1", "hall-2"}

    await points_service.terminals.flush()
    async with points_service.sessions() as s:
        inbox = (await s.execute(select(bus.inbox.c.message_id))).scalars().all()
        rows = (await s.execute(select(func.count()).select_from(terminals))).scalar_one()
    assert all(k.startswith("tap:") for k in inbox) and len(inbox) == 1 and rows == 2

    # Offline: nothing heard for more than twice the interval (the service's clock moved on).
    later = datetime.now(UTC) + timedelta(hours=3)
    points_service.terminals.clock = lambda: later
    offline = await listed(nc)
    assert not offline["hall-1"].online and not offline["hall-2"].online

    # Staff over HTTP (the gateway relays terminals.list); without the staff token, 401.
    settings = GatewaySettings(node_id=NODE, nats_url=nats_server.url, admin_token=TOKEN, services="points",
                               request_timeout=5.0, data_dir=str(tmp_path / "gw"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            assert (await c.get("/api/v1/terminals")).status_code == 401
            r = await c.get("/api/v1/terminals", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert [t["terminal_id"] for t in body["terminals"]] == ["hall-1", "hall-2"]
            assert body["terminals"][0]["mode"] == "coupon" and body["terminals"][0]["online"] is False
            assert "/api/v1/terminals" in (await c.get("/openapi.json")).json()["paths"]

    # The operator's table.
    points_service.terminals.clock = lambda: datetime.now(UTC)
    capsys.readouterr()
    assert await cli("edge", "status", "--nats-url", nats_server.url, "--node", NODE) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["TERMINAL", "STATE", "LAST", "SEEN", "MODE", "EVENT", "QUEUE", "UNSETTLED", "LAST",
                              "TAP", "VERSION"]
    assert out[1].split()[:2] == ["hall-1", "online"] and " coupon " in out[1]
    assert out[2].split()[:2] == ["hall-2", "online"] and "test-agent/1" not in out[2]
    assert out[-1] == "2 terminals, 2 online"
    assert await cli("edge", "status", "--nats-url", nats_server.url, "--node", NODE, "--json") == 0
    assert {t["terminal_id"] for t in json.loads(capsys.readouterr().out)["terminals"]} == {"hall-1", "hall-2"}


async def _beats(agent: TerminalAgent, n: int) -> bool:
    return agent.heartbeats >= n


async def _both(nc: nats.NATS) -> dict[str, contract.TerminalStatus] | None:
    got = await listed(nc)
    return got if {"hall-1", "hall-2"} <= set(got) else None


async def _ignored(points: PointsService, n: int) -> bool:
    return points.terminals.ignored >= n
