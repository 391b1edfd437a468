"""The screens' own NATS users on a node's nats-server (towntip/node/natsauth.py): a screen syncs, reports its
plays and hears the pushes, and cannot speak as another screen nor read another screen's inbox; the signage
service runs as its own user `svc-signage`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from services.signage.app import SignageService
from tests.signage.helpers import CLERK, NODE
from tests.support.bus import wait_for
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import signage as c
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsauth import OPERATOR, BusUsers, service_user
from towntip.node.natsd import NatsServer


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[BusUsers, NatsServer]]:
    users = BusUsers(tmp_path, NODE, subjects.SERVICES)
    users.enroll_screen("hall-1f")
    users.enroll_screen("kominkan-1")
    server = NatsServer(node_id=NODE, data_dir=tmp_path / "nats", extra_config=users.render()).start()
    settings = ServiceSettings(
        service="signage",
        node_id=NODE,
        data_dir=str(tmp_path),
        nats_url=users.url(server.url, service_user("signage")),
        database_url=f"sqlite+aiosqlite:///{tmp_path}/signage.sqlite3",
    )
    svc = SignageService(settings)
    try:
        await svc.start()
        yield users, server
    finally:
        await svc.stop()
        server.stop()


async def test_a_screen_speaks_only_for_itself(node: tuple[BusUsers, NatsServer]) -> None:
    users, server = node
    op = await nats.connect(users.url(server.url, OPERATOR))
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc))

    def screen_url(name: str) -> str:
        return users.url(server.url, c.screen_user(name), users.screens()[name])

    tv = await nats.connect(screen_url("hall-1f"), inbox_prefix=c.screen_inbox_prefix("hall-1f"), error_cb=on_error)
    try:
        for name in ("hall-1f", "kominkan-1"):
            await rpc.call(
                op, subjects.svc(NODE, c.SERVICE, c.EP_ADMIN_SCREEN_ENROLLED), c.ScreenRegister(name=name), timeout=5
            )
        assert (await tv.request(c.sync_subject(NODE, "hall-1f"), b"{}", timeout=5)).data  # its own manifest

        pushed: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_push(msg: nats.aio.msg.Msg) -> None:
            await pushed.put(msg.data)

        await tv.subscribe(c.push_emergency(NODE), cb=on_push)
        await tv.flush()
        await rpc.call(
            op,
            subjects.svc(NODE, c.SERVICE, c.EP_EMERGENCY_SEND),
            c.EmergencySend(actor=CLERK, title="訓練", body="避難訓練です。"),
            timeout=5,
        )
        assert c.Emergency.model_validate_json(await asyncio.wait_for(pushed.get(), 2)).title == "訓練"

        play = c.Play(
            play_id="7d4f5b2e-1c3a-4e8b-9f60-2a1b3c4d5e6f",
            item_id="7d4f5b2e-1c3a-4e8b-9f60-000000000001",
            screen="hall-1f",
            started_at="2026-12-07T01:00:00Z",
            ended_at="2026-12-07T01:00:10Z",
        )
        ack = await tv.jetstream().publish(
            c.plays_subject(NODE, "hall-1f"),
            play.model_dump_json().encode(),
            headers={subjects.HDR_MSG_ID: play.play_id},
        )
        assert ack.stream == c.plays_stream(NODE)

        with pytest.raises(nats.errors.TimeoutError):  # as kominkan-1: the server drops it
            await tv.request(c.sync_subject(NODE, "kominkan-1"), b"{}", timeout=1)
        await tv.subscribe(c.screen_inbox_prefix("kominkan-1") + ".>")
        await tv.flush()

        async def both_refused() -> bool:
            return len(refusals) >= 2

        await wait_for(both_refused, "the server's two refusals", 5)
        assert any("publish" in r and "screen.kominkan-1.sync" in r for r in refusals), refusals
        assert any("subscription" in r and "_scr.kominkan-1" in r for r in refusals), refusals
    finally:
        await tv.close()
        await op.close()
