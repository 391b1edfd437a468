"""Proof-of-play figures for staff: plays and seconds per item or per screen over a period (the page also gives
them as CSV). No NATS, no commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.signage.models import items, plays, screens
from services.signage.screens import require_staff
from towntip.kernel import db
from towntip.kernel.contracts import signage as c


def _seconds(session: AsyncSession) -> ColumnElement[Any]:
    """A play's length in seconds, as each database subtracts times."""
    if db.dialect_of(session) == "postgresql":
        return func.extract("epoch", plays.c.ended_at - plays.c.started_at)
    return (func.julianday(plays.c.ended_at) - func.julianday(plays.c.started_at)) * 86400.0


async def summary(session: AsyncSession, *, data: c.PlaysQuery) -> c.PlaysSummary:
    require_staff(data.actor)
    key = plays.c.item_id if data.by == "item" else plays.c.screen
    rows = (
        await session.execute(
            select(key.label("key"), func.count().label("n"), func.sum(_seconds(session)).label("s"))
            .where(plays.c.started_at >= data.since, plays.c.started_at < data.until)
            .group_by(key)
        )
    ).all()
    counts = {r.key: (int(r.n), int(round(r.s or 0))) for r in rows}
    if data.by == "item":
        labels = {
            r.id: r.title
            for r in await session.execute(select(items.c.id, items.c.title).where(items.c.id.in_(counts)))
        }
    else:
        labels = {r.name: r.place for r in await session.execute(select(screens.c.name, screens.c.place))}
    out = [
        c.PlaysRow(key=k, label=labels.get(k, ""), plays=v[0], seconds=v[1])
        for k, v in sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    return c.PlaysSummary(since=data.since, until=data.until, by=data.by, rows=tuple(out))
