"""What the waitlist and series tests share beside tests/bookings/helpers.py: more people, a snapshot of every table
of the service (the waitlist's and the series' included), and a refusal that changed nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from services.bookings.models import bookings, bus, facilities, series, waitlist
from tests.bookings.helpers import NODE, Node
from towntip.kernel import errors
from towntip.kernel.contracts import bookings_waitlist as w
from towntip.kernel.contracts.actor import Actor

JIRO = Actor(user_id="user-jiro-0001", global_handle=f"jiro@{NODE}", display_name="佐藤 次郎")
SABURO = Actor(user_id="user-saburo-01", global_handle=f"saburo@{NODE}", display_name="高橋 三郎")


async def snapshot(node: Node) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    async with node.svc.sessions() as s:
        for table in (facilities, bookings, waitlist, series):
            out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
        out["outbox"] = sorted(r[0] for r in await s.execute(select(bus.outbox.c.event_id)))
    return out


async def refused(node: Node, refusal: errors.Refusal, endpoint: str, payload: Any, match: str | None = None) -> str:
    """The call is refused with this refusal (code and status), and no table changed."""
    before = await snapshot(node)
    with pytest.raises(errors.ServiceError, match=match) as info:
        await node.call(endpoint, payload)
    assert (info.value.error_code, info.value.code) == (refusal.code, refusal.status), info.value.reason
    assert await snapshot(node) == before, f"{endpoint} was refused but changed something"
    return info.value.reason


async def kinds(node: Node) -> list[str]:
    """The types of the events in the outbox, in order."""
    return [s.rsplit(".", 1)[1] for s, _ in await node.events()]


def entry_of(listing: dict[str, Any], day: str) -> dict[str, Any]:
    return next(e for e in listing["entries"] if e["start"].startswith(day))


async def mine(node: Node, who: Actor, **more: Any) -> dict[str, Any]:
    return await node.call(w.EP_WAITLIST_MINE, {"actor": who.model_dump(mode="json"), **more})
