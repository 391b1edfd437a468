"""The node's content generation: one counter bumped in the transaction of every change a screen's manifest could
show, so that a push after the commit tells the screens something changed (they sync and compare versions)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage.models import state
from towntip.kernel import db

GENERATION = "generation"


async def bump(session: AsyncSession) -> None:
    """One more generation (the row is made on first use); the row's lock also orders concurrent writers."""
    ins = db.insert_on_conflict(session, state).values(key=GENERATION, value=1)
    await session.execute(ins.on_conflict_do_update(index_elements=[state.c.key], set_={"value": state.c.value + 1}))


async def generation(session: AsyncSession) -> int:
    row = (await session.execute(select(state.c.value).where(state.c.key == GENERATION))).first()
    return int(row.value) if row else 0
