"""A screen's manifest (its sync reply): the screen, the playlists meant for it, their approved items, the active
emergency; its version is a hash of all of that, so a screen learns whether anything changed. No NATS, no commits."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage import screens as screens_
from services.signage.models import emergencies, items, playlists
from towntip.kernel.contracts import signage as c
from towntip.kernel.db import aware


def targets(screen: c.ScreenInfo, names: Iterable[str] | None, groups: Iterable[str]) -> bool:
    """Whether something addressed to these screens and groups reaches `screen` (neither given: every screen)."""
    names = tuple(names or ())
    groups = tuple(groups)
    if not names and not groups:
        return True
    return screen.name in names or bool(set(groups) & set(screen.groups))


def item_view(row: Any) -> c.Item:
    return c.Item(
        id=row.id,
        kind=row.kind,
        sha256=row.sha256,
        bytes=row.bytes,
        duration_s=row.duration_s,
        valid_from=aware(row.valid_from),
        valid_until=aware(row.valid_until),
        title=row.title,
        mime=row.mime,
    )


def playlist_view(row: Any) -> c.Playlist:
    return c.Playlist(
        id=row.id,
        name=row.name,
        priority=row.priority,
        dayparts=row.dayparts,
        entries=row.entries,
        interrupt_share=row.interrupt_share,
        valid_from=aware(row.valid_from),
        valid_until=aware(row.valid_until),
    )


def emergency_view(row: Any) -> c.Emergency:
    return c.Emergency(
        id=row.id,
        title=row.title,
        body=row.body,
        severity=row.severity,
        screens=None if row.screens is None else tuple(row.screens),
        groups=tuple(row.groups),
        issued_at=aware(row.issued_at),
        cleared=row.cleared_at is not None,
        source=row.source,
    )


@dataclass(frozen=True)
class Snapshot:
    """Everything the manifests are made of, read at once: one read serves every screen of a generation."""

    screens: dict[str, c.ScreenInfo]
    playlists: list[tuple[c.Playlist, tuple[str, ...], tuple[str, ...]]]  # with its screens and groups
    items: dict[str, c.Item]  # approved
    emergencies: list[c.Emergency]  # not cleared, newest first


async def snapshot(session: AsyncSession) -> Snapshot:
    screen_rows = await session.execute(select(screens_.screens))
    infos = {
        r.name: c.ScreenInfo(
            name=r.name,
            orientation=r.orientation,
            width=r.width,
            height=r.height,
            place=r.place,
            groups=tuple(r.groups),
        )
        for r in screen_rows
    }
    rows = (await session.execute(select(playlists).order_by(playlists.c.id))).all()
    lists = [(playlist_view(r), tuple(r.screens), tuple(r.groups)) for r in rows]
    found = await session.execute(select(items).where(items.c.status == "approved").order_by(items.c.id))
    approved = {r.id: item_view(r) for r in found}
    ems = await session.execute(
        select(emergencies).where(emergencies.c.cleared_at.is_(None)).order_by(emergencies.c.issued_at.desc())
    )
    return Snapshot(infos, lists, approved, [emergency_view(r) for r in ems])


def emergency_for(snap: Snapshot, screen: c.ScreenInfo) -> c.Emergency | None:
    """The latest emergency not cleared that reaches this screen."""
    return next((e for e in snap.emergencies if targets(screen, e.screens, e.groups)), None)


def schedule_of(snap: Snapshot, screen: c.ScreenInfo, *, now: datetime) -> c.Schedule:
    """The playlists meant for the screen (not expired) and their approved items (not expired; items valid later
    come too, so the screen has them in its cache when they start)."""
    mine = [
        p
        for p, names, groups in snap.playlists
        if targets(screen, names, groups) and (p.valid_until is None or p.valid_until > now)
    ]
    wanted = sorted({e.item_id for p in mine for e in p.entries})
    found = [snap.items[i] for i in wanted if i in snap.items]
    live = [i for i in found if i.valid_until is None or i.valid_until > now]
    return c.Schedule(playlists=tuple(mine), items=tuple(live))


async def active_emergency(session: AsyncSession, screen: c.ScreenInfo) -> c.Emergency | None:
    return emergency_for(await snapshot(session), screen)


async def schedule_for(session: AsyncSession, screen: c.ScreenInfo, *, now: datetime) -> c.Schedule:
    return schedule_of(await snapshot(session), screen, now=now)


def version_of(screen: c.ScreenInfo, schedule: c.Schedule, emergency: c.Emergency | None) -> str:
    body = json.dumps(
        {
            "screen": screen.model_dump(mode="json"),
            "schedule": schedule.model_dump(mode="json"),
            "emergency": emergency.model_dump(mode="json") if emergency else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def build_from(snap: Snapshot, *, name: str, have: str | None, now: datetime) -> c.SyncReply:
    """The screen's manifest (only the version, `unchanged`, when the screen has it already)."""
    screen = snap.screens.get(name)
    if screen is None:
        raise c.SCREEN_UNKNOWN(f"screen {name!r} is enrolled on the bus but not registered with the service")
    schedule = schedule_of(snap, screen, now=now)
    emergency = emergency_for(snap, screen)
    version = version_of(screen, schedule, emergency)
    if have == version:
        return c.SyncReply(version=version, screen=screen, emergency=emergency, node_time=now, unchanged=True)
    return c.SyncReply(
        version=version,
        screen=screen,
        emergency=emergency,
        node_time=now,
        playlists=schedule.playlists,
        items=schedule.items,
    )


async def build(session: AsyncSession, *, name: str, have: str | None, now: datetime) -> c.SyncReply:
    return build_from(await snapshot(session), name=name, have=have, now=now)


async def item_for_screen(session: AsyncSession, *, name: str, item_id: str, now: datetime) -> Any:
    """The item row if it is in the screen's manifest now (a screen fetches nothing else)."""
    screen = await screens_.info(session, name=name)
    if screen is None:
        raise c.SCREEN_UNKNOWN(f"screen {name!r} is not registered with the signage service")
    schedule = await schedule_for(session, screen, now=now)
    if item_id not in {i.id for i in schedule.items}:
        raise c.ITEM_NOT_FOR_SCREEN(f"item {item_id} is not in screen {name}'s manifest")
    return (await session.execute(select(items).where(items.c.id == item_id))).first()
