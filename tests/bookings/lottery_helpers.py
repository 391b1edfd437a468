"""What the tests of groups, other-node bookers and lotteries share: a node whose clock the test moves, and a
snapshot that also covers the groups' and lotteries' tables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import nats
import pytest
from sqlalchemy import select

from services.bookings.app import BookingsService
from services.bookings.models import group_members, groups, lottery_entries, lottery_rounds
from tests.bookings.conftest import settings
from tests.bookings.helpers import NODE, NOW, Actor, Node, a
from towntip.kernel.contracts import bookings_lottery as lc

JIRO = Actor(user_id="user-jiro-0001", global_handle=f"jiro@{NODE}", display_name="佐藤 次郎")
KENJI = Actor(user_id="user-kenji-001", global_handle="kenji@suginami", display_name="高橋 健二")  # another node


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class LotteryNode(Node):
    def __init__(self, nc: nats.NATS, svc: BookingsService, clock: Clock) -> None:
        super().__init__(nc, svc)
        self.clock = clock

    async def snapshot(self) -> dict[str, list[str]]:
        out = await super().snapshot()
        async with self.svc.sessions() as s:
            for table in (groups, group_members, lottery_rounds, lottery_entries):
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
        return out

    async def group(self, who: Actor, name: str, **more: Any) -> dict[str, Any]:
        return await self.call(lc.EP_GROUP_APPLY, {"actor": a(who), "name": name, "member_count": 10, **more})

    async def decide(self, who: Actor | None, group_id: str, decision: str) -> dict[str, Any]:
        return await self.call(lc.EP_GROUP_DECIDE, {**({"actor": a(who)} if who else {}), "group_id": group_id,
                                                    "decision": decision})


@pytest.fixture(name="lnode")
async def lottery_node(nats_server, database, tmp_path) -> AsyncIterator[LotteryNode]:
    clock = Clock(NOW)
    svc = BookingsService(settings(nats_server.url, database, tmp_path), clock=clock)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield LotteryNode(nc, svc, clock)
    finally:
        await nc.close()
        await svc.stop()
