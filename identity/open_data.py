"""The identity service's open data (svc.<node>.identity.open_data, public) and registered people over time
(svc.<node>.identity.usage.months, staff): how many people registered at this node, per month and in all (the
seed's ポータルサイト登録者). No NATS and no commits here.

Counted: accounts whose home is this node (people of other nodes who logged in here are theirs to count), by the
month they registered; a deleted account is no longer counted. Only counts leave: never a handle, an e-mail, a name
or a district. In the open data a month's figures are withheld where they would show fewer than
towntip.kernel.open_data.SUPPRESS_BELOW people (towntip.kernel.open_data.cumulative).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from identity.models import users
from towntip.kernel import open_data as od
from towntip.kernel.contracts import open_data as c
from towntip.kernel.contracts.actor import Actor


async def registered(session: AsyncSession, *, now: datetime) -> c.Usage:
    times = (await session.execute(select(users.c.created_at).where(users.c.home_node.is_(None)))).scalars().all()
    return od.usage("registered", times, now=now)


async def usage(session: AsyncSession, *, actor: Actor, now: datetime) -> c.Usage:
    if not actor.has("staff"):
        raise c.USAGE_STAFF_ONLY("only the node's staff see the usage figures / 職員のみが見られます")
    return await registered(session, now=now)


async def tables(session: AsyncSession, *, now: datetime) -> c.OpenData:
    return c.OpenData(tables=[], usage=[od.published(await registered(session, now=now))])
