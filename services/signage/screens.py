"""Screens (映像端末): registered by staff or the operator's enrolment with their place, orientation, resolution and
groups; their heartbeats kept (last seen, what plays, cache, version, the latest screenshot). No NATS, no commits."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage import state
from services.signage.models import bus, items, screens
from towntip.kernel import db
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def require_staff(actor: Actor | None) -> None:
    """Staff and the secretariat manage signage; None is the operator's CLI (the gateway always sends an actor)."""
    if actor is not None and not actor.has("staff", "secretariat"):
        raise c.STAFF_ONLY("only staff manage screens, content and schedules")


def view(row: Any, *, now: datetime, titles: dict[str, str] | None = None, screenshot: bool = False) -> c.Screen:
    seen = aware(row.last_seen) if row.last_seen is not None else None
    return c.Screen(
        name=row.name,
        place=row.place,
        orientation=row.orientation,
        width=row.width,
        height=row.height,
        groups=tuple(row.groups),
        enrolled_at=aware(row.enrolled_at),
        last_seen=seen,
        online=seen is not None and now - seen <= timedelta(seconds=c.OFFLINE_AFTER_SECONDS),
        playing=row.playing,
        playing_title=(titles or {}).get(row.playing or ""),
        version=row.version,
        cache_bytes=row.cache_bytes,
        player_version=row.player_version,
        screenshot_at=aware(row.screenshot_at) if row.screenshot_at is not None else None,
        screenshot_png_b64=row.screenshot if screenshot else None,
    )


async def _titles(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    ids.discard("")
    if not ids:
        return {}
    rows = await session.execute(select(items.c.id, items.c.title).where(items.c.id.in_(ids)))
    return {r.id: r.title for r in rows}


async def register(session: AsyncSession, *, node: str, data: c.ScreenRegister, now: datetime) -> c.Screen:
    """Add a screen or change where it stands (its heartbeat state stays)."""
    require_staff(data.actor)
    groups = sorted(dict.fromkeys(data.groups))
    values = {
        "place": data.place,
        "orientation": data.orientation,
        "width": data.width,
        "height": data.height,
        "groups": groups,
    }
    found = (await session.execute(select(screens.c.name).where(screens.c.name == data.name))).first()
    if found:
        await session.execute(update(screens).where(screens.c.name == data.name).values(**values))
    else:
        await session.execute(screens.insert().values(name=data.name, enrolled_at=now, **values))
    await state.bump(session)
    await announce(
        session, bus, c.ScreenRegistered(name=data.name, place=data.place, groups=tuple(groups)), node=node, at=now
    )
    return await get(session, data=c.ScreenQuery(name=data.name, actor=data.actor), now=now)


async def get(session: AsyncSession, *, data: c.ScreenQuery, now: datetime) -> c.Screen:
    require_staff(data.actor)
    row = (await session.execute(select(screens).where(screens.c.name == data.name))).first()
    if row is None:
        raise c.SCREEN_NOT_FOUND(f"no screen named {data.name!r}")
    return view(row, now=now, titles=await _titles(session, {row.playing or ""}), screenshot=True)


async def list_(session: AsyncSession, *, data: c.ScreenListQuery, now: datetime) -> c.ScreenList:
    require_staff(data.actor)
    rows = (await session.execute(select(screens).order_by(screens.c.name))).all()
    groups = sorted({g for r in rows for g in r.groups})
    if data.group:
        rows = [r for r in rows if data.group in r.groups]
    titles = await _titles(session, {r.playing or "" for r in rows})
    return c.ScreenList(screens=tuple(view(r, now=now, titles=titles) for r in rows), groups=tuple(groups))


async def info(session: AsyncSession, *, name: str) -> c.ScreenInfo | None:
    """The screen as its manifest describes it; None for a name nobody registered."""
    row = (await session.execute(select(screens).where(screens.c.name == name))).first()
    if row is None:
        return None
    return c.ScreenInfo(
        name=row.name,
        orientation=row.orientation,
        width=row.width,
        height=row.height,
        place=row.place,
        groups=tuple(row.groups),
    )


def screenshot_of(status: c.ScreenStatus) -> str | None:
    """The heartbeat's screenshot if it is a PNG of at most SCREENSHOT_MAX_BYTES; anything else is dropped (a
    screen's bytes are shown to staff: only a real PNG is)."""
    if not status.screenshot_png_b64:
        return None
    if len(status.screenshot_png_b64) > (c.SCREENSHOT_MAX_BYTES * 4) // 3 + 4:
        return None
    try:
        raw = base64.b64decode(status.screenshot_png_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return status.screenshot_png_b64 if raw.startswith(PNG_MAGIC) else None


async def record_status(session: AsyncSession, *, name: str, status: c.ScreenStatus, now: datetime) -> bool:
    """Keep a screen's heartbeat; False for a screen that is not registered (nothing kept)."""
    values: dict[str, Any] = {
        "last_seen": now,
        "playing": status.playing,
        "version": status.version,
        "cache_bytes": status.cache_bytes,
        "player_version": status.player_version,
    }
    shot = screenshot_of(status)
    if shot is not None:
        values |= {"screenshot": shot, "screenshot_at": now}
    result = await session.execute(update(screens).where(screens.c.name == name).values(**values))
    return db.rowcount(result) > 0
