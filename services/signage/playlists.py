"""Playlists and schedules (再生スケジュール): loops of items with durations, dayparts, priorities and interrupts, for
some screens or groups (or all); and the preview of what a screen plays at a given time, from the same pure plan()
the player runs. No NATS, no commits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage import manifest, state
from services.signage import screens as screens_
from services.signage.models import items, playlists, screens
from services.signage.screens import require_staff
from towntip.kernel import db
from towntip.kernel.contracts import signage as c
from towntip.kernel.db import aware
from towntip.kernel.signage_schedule import timeline


def view(row: Any) -> c.PlaylistView:
    return c.PlaylistView(
        id=row.id,
        name=row.name,
        priority=row.priority,
        dayparts=row.dayparts,
        entries=row.entries,
        interrupt_share=row.interrupt_share,
        valid_from=aware(row.valid_from),
        valid_until=aware(row.valid_until),
        screens=tuple(row.screens),
        groups=tuple(row.groups),
        updated_by=row.updated_by,
        updated_at=aware(row.updated_at),
    )


async def put(session: AsyncSession, *, data: c.PlaylistPut, now: datetime) -> c.PlaylistView:
    """Create a playlist or replace one whole; the screens it reaches sync after the commit."""
    require_staff(data.actor)
    if not data.entries:
        raise c.PLAYLIST_EMPTY("a playlist needs at least one item")
    if data.valid_from and data.valid_until and data.valid_until <= data.valid_from:
        raise c.VALIDITY("valid_until must be after valid_from")
    wanted = {e.item_id for e in data.entries}
    known = {r.id for r in await session.execute(select(items.c.id).where(items.c.id.in_(wanted)))}
    if wanted - known:
        raise c.PLAYLIST_ITEM_UNKNOWN(f"no items {', '.join(sorted(wanted - known))}")
    if data.screens:
        found = {r.name for r in await session.execute(select(screens.c.name).where(screens.c.name.in_(data.screens)))}
        if set(data.screens) - found:
            raise c.SCREEN_NOT_FOUND(f"no screens {', '.join(sorted(set(data.screens) - found))}")
    values = {
        "name": data.name,
        "priority": data.priority,
        "dayparts": [d.model_dump(mode="json") for d in data.dayparts],
        "entries": [e.model_dump(mode="json") for e in data.entries],
        "interrupt_share": data.interrupt_share,
        "valid_from": data.valid_from,
        "valid_until": data.valid_until,
        "screens": sorted(set(data.screens)),
        "groups": sorted(set(data.groups)),
        "updated_by": data.actor.global_handle if data.actor else None,
        "updated_at": now,
    }
    pid = data.id or str(uuid.uuid4())
    if data.id is not None:
        done = await session.execute(playlists.update().where(playlists.c.id == pid).values(**values))
        if not db.rowcount(done):
            raise c.PLAYLIST_NOT_FOUND(f"no playlist {pid}")
    else:
        await session.execute(playlists.insert().values(id=pid, **values))
    await state.bump(session)
    return view((await session.execute(select(playlists).where(playlists.c.id == pid))).one())


async def list_(session: AsyncSession, *, data: c.PlaylistListQuery) -> c.PlaylistList:
    require_staff(data.actor)
    rows = await session.execute(select(playlists).order_by(playlists.c.priority.desc(), playlists.c.name))
    return c.PlaylistList(playlists=tuple(view(r) for r in rows))


async def delete_(session: AsyncSession, *, data: c.PlaylistAction) -> c.PlaylistList:
    require_staff(data.actor)
    done = await session.execute(delete(playlists).where(playlists.c.id == data.id))
    if not db.rowcount(done):
        raise c.PLAYLIST_NOT_FOUND(f"no playlist {data.id}")
    await state.bump(session)
    return await list_(session, data=c.PlaylistListQuery(actor=data.actor))


async def preview(session: AsyncSession, *, data: c.PreviewQuery) -> c.Preview:
    """What the screen plays in the hour holding `at`: its manifest as of `at`, laid out by the shared plan."""
    require_staff(data.actor)
    screen = await screens_.info(session, name=data.screen)
    if screen is None:
        raise c.SCREEN_NOT_FOUND(f"no screen named {data.screen!r}")
    schedule = await manifest.schedule_for(session, screen, now=data.at)
    hour, slots = timeline(schedule, data.at)
    titles = {i.id: i.title for i in schedule.items}
    names = {p.id: p.name for p in schedule.playlists}
    offset = (data.at - hour).total_seconds()
    playing = next((s.item_id for s in slots if s.start <= offset < s.end), None)
    return c.Preview(
        screen=data.screen,
        at=data.at,
        hour=hour,
        emergency=await manifest.active_emergency(session, screen),
        now_playing=playing,
        slots=tuple(
            c.PreviewSlot(
                start=hour + timedelta(seconds=s.start),
                item_id=s.item_id,
                title=titles.get(s.item_id, ""),
                duration_s=s.duration_s,
                playlist=names.get(s.playlist_id, ""),
                interrupt=s.interrupt,
            )
            for s in slots
        ),
    )
