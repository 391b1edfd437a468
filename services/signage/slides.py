"""Slides the node makes from its own data (データスライド): staff add one with a source, a second staff member
approves it like any item, and the service keeps its bytes current from the owning service's public data
(slide_feed.py asks them over the bus). This module holds the rows and the rendering: no NATS, no commits.

What a slide shows is public already (the portal shows it to anyone): an event's name, date and seats left, a
community's name and its posts' titles (never their authors), the node's public notices, published themes, totals
per district, and a facility's held times (never who booked). The item's bytes are a `SlideBody` in JSON, which the
player's kiosk page lays out with its own template; a change of the data changes the bytes (a new sha256), so the
screens fetch it on their next sync. Approval is of the slide's source and validity, not of each refresh."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage import blobs, state
from services.signage.content import view as item_view
from services.signage.models import blobs as blob_table
from services.signage.models import bus, items, slides
from services.signage.screens import require_staff
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings_portal as bp
from towntip.kernel.contracts import notebook as nb
from towntip.kernel.contracts import notices_feeds as nf
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import sns as sc
from towntip.kernel.db import aware

LINES_MAX = 6  # what a screen read from a few metres away holds
WEEKDAYS = "月火水木金土日"

# Per source: the kicker (Japanese, then English) and the default title.
KICKERS: dict[str, tuple[str, str]] = {
    "events": ("イベント Events", "これからのイベント"),
    "news": ("コミュニティ Community news", "コミュニティの新着"),
    "notices": ("お知らせ Notices", "まちのお知らせ"),
    "themes": ("共創パートナー募集 Partners wanted", "一緒に取り組むパートナーを募集しています"),
    "points": ("まちづくりポイント Points by district", "地区別 まちづくりポイント"),
    "bookings": ("施設予約 Today's bookings", "本日の利用予定"),
}


# ---- the rows ---------------------------------------------------------------------------------------------------


def _bytes(body: c.SlideBody) -> bytes:
    return json.dumps(body.model_dump(mode="json"), ensure_ascii=False, sort_keys=True).encode()


def preparing(source: str, title: str) -> c.SlideBody:
    """A new slide's body until its data first comes (a screen never shows an empty slide)."""
    return c.SlideBody(kicker=KICKERS[source][0], title=title, body="準備中です Getting ready")


def _view(row: Any) -> c.DataSlide:
    """The slide with what its screen shows now (the last good data, marked stale while its source is failing)."""
    slide = _stored(row)
    return slide.model_copy(update={"body": unavailable(slide)}) if slide.failing else slide


def _stored(row: Any) -> c.DataSlide:
    return c.DataSlide(
        item=item_view(row),
        source=row.slide_source,
        facility_id=row.facility_id,
        refreshed_at=aware(row.refreshed_at),
        data_at=aware(row.data_at),
        failing=row.failing,
        body=c.SlideBody.model_validate(row.body),
    )


def _joined() -> Any:
    return select(
        items,
        slides.c.source.label("slide_source"),  # items has a `source` of its own ('slide')
        slides.c.facility_id,
        slides.c.body,
        slides.c.refreshed_at,
        slides.c.data_at,
        slides.c.failing,
    ).join(slides, slides.c.item_id == items.c.id)


async def create(session: AsyncSession, *, node: str, data: c.SlideCreate, now: datetime) -> c.DataSlide:
    """A slide from data, pending until a second staff member approves it (content.approve, as any item)."""
    require_staff(data.actor)
    if data.valid_until is not None and data.valid_until <= data.valid_from:
        raise c.VALIDITY("valid_until must be after valid_from")
    if (data.source == "bookings") != (data.facility_id is not None):
        raise c.SLIDE_FACILITY("name the facility for a slide of its bookings, and for no other slide")
    title = data.title or KICKERS[data.source][1]
    body = preparing(data.source, title)
    raw = _bytes(body)
    digest = await blobs.put(session, raw)
    item_id = str(uuid.uuid4())
    await session.execute(
        items.insert().values(
            id=item_id, kind="slide", title=title, mime=c.SLIDE_MIME, sha256=digest, bytes=len(raw),
            duration_s=data.duration_s, valid_from=data.valid_from, valid_until=data.valid_until, status="pending",
            source="slide", created_by=data.actor.global_handle if data.actor else None, created_at=now,
            updated_at=now, offered=False,
        )
    )
    await session.execute(
        slides.insert().values(
            item_id=item_id, source=data.source, facility_id=data.facility_id, body=body.model_dump(mode="json"),
            failing=False,
        )
    )
    await announce(session, bus, c.ContentAdded(item_id=item_id, kind="slide", title=title), node=node, at=now)
    return await get(session, item_id)


async def get(session: AsyncSession, item_id: str) -> c.DataSlide:
    row = (await session.execute(_joined().where(items.c.id == item_id))).first()
    if row is None:
        raise c.ITEM_NOT_FOUND(f"no data slide {item_id}")
    return _view(row)


async def list_(session: AsyncSession, *, data: c.SlideListQuery) -> c.SlideList:
    require_staff(data.actor)
    rows = await session.execute(_joined().order_by(items.c.created_at.desc(), items.c.id))
    return c.SlideList(slides=tuple(_view(r) for r in rows))


async def due(session: AsyncSession, *, now: datetime) -> list[c.DataSlide]:
    """The slides to refresh: pending (the approver sees them current) or approved, and not expired."""
    rows = await session.execute(
        _joined().where(items.c.status.in_(("pending", "approved"))).order_by(items.c.id)
    )
    return [s for s in (_view(r) for r in rows) if s.item.valid_until is None or s.item.valid_until > now]


async def store(
    session: AsyncSession, *, item_id: str, body: c.SlideBody, answered: bool, now: datetime
) -> bool:
    """What a refresh made of the slide; True when its bytes changed (a new generation: the screens sync).
    `answered`: the source answered (`body` is its data); otherwise `body` is the last good one marked stale."""
    row = (await session.execute(select(items.c.sha256, items.c.status).where(items.c.id == item_id))).first()
    if row is None or row.status not in ("pending", "approved"):
        return False  # withdrawn or rejected meanwhile: left as it is
    values: dict[str, Any] = {"refreshed_at": now, "failing": not answered}
    if answered:
        values |= {"body": body.model_dump(mode="json"), "data_at": now}
    await session.execute(update(slides).where(slides.c.item_id == item_id).values(**values))
    raw = _bytes(body)
    digest = await blobs.put(session, raw)
    if digest == row.sha256:
        return False
    await session.execute(
        update(items).where(items.c.id == item_id).values(sha256=digest, bytes=len(raw), updated_at=now)
    )
    if (await session.execute(select(items.c.id).where(items.c.sha256 == row.sha256).limit(1))).first() is None:
        await session.execute(delete(blob_table).where(blob_table.c.sha256 == row.sha256))  # nobody plays it now
    await state.bump(session)
    return True


# ---- the rendering: each source's public data → what the screen shows ---------------------------------------------


def when(t: datetime, *, date_only: bool = False) -> str:
    """12/9(水) 14:00, in the town's time."""
    local = t.astimezone(JST)
    day = f"{local.month}/{local.day}({WEEKDAYS[local.weekday()]})"
    return day if date_only else f"{day} {local:%H:%M}"


def _body(
    source: str, title: str, lines: Sequence[str], *, empty: str, body: str = "", footer: str = ""
) -> c.SlideBody:
    return c.SlideBody(
        kicker=KICKERS[source][0], title=title, lines=tuple(lines[:LINES_MAX]), body=body or ("" if lines else empty),
        footer=footer,
    )


def events(data: pc.EventList, *, title: str, now: datetime) -> c.SlideBody:
    """Upcoming events (not yet over) and their sign-up status."""
    upcoming = sorted(
        (e for e in data.events if e.starts_at is not None and (e.ends_at or e.starts_at) >= now),
        key=lambda e: (e.starts_at, e.code),
    )
    lines = []
    for e in upcoming:
        assert e.starts_at is not None
        parts = [f"{when(e.starts_at)} {e.name}"]
        if e.venue_name:
            parts.append(e.venue_name)
        if e.seats_left is not None:
            parts.append(f"残り{e.seats_left}席" if e.seats_left > 0 else "満席")
            if e.waitlisted:
                parts.append(f"キャンセル待ち{e.waitlisted}人")
        elif e.signed_up:
            parts.append(f"申込{e.signed_up}人")
        lines.append(" — ".join(parts))
    return _body("events", title, lines, empty="予定されているイベントはありません No events ahead")


def news(posts: Sequence[tuple[sc.Community, sc.Post]], *, title: str, now: datetime) -> c.SlideBody:
    """The newest posts (of the last 30 days) of open communities: the community's name and the post's title, never
    its author."""
    fresh = [(com, p) for com, p in posts if p.hidden is None and p.created_at >= now - timedelta(days=30)]
    fresh.sort(key=lambda cp: cp[1].created_at, reverse=True)
    lines = [f"{when(p.created_at, date_only=True)} {com.name}：{p.title or p.body[:40]}" for com, p in fresh]
    return _body("news", title, lines, empty="新しい投稿はまだありません No posts yet")


def notices(data: nf.PublicNotices, *, title: str) -> c.SlideBody:
    lines = [f"{when(n.published_at, date_only=True)} {n.title}" for n in data.notices]
    return _body("notices", title, lines, empty="新しいお知らせはありません No notices")


def themes(data: prc.ThemeList, *, title: str, node: str, now: datetime) -> c.SlideBody:
    """This town's published themes in phase 2 (対話形成: looking for partners), their call's deadline if open."""
    lines = []
    for t in data.themes:
        if t.status != "published" or t.phase != 2 or t.origin_node != node:
            continue
        req = t.requirements
        if req is not None and req.call_opened_at is not None and req.deadline > now:
            lines.append(f"{t.title} — 提案締切 {when(req.deadline, date_only=True)}")
        else:
            lines.append(t.title)
    return _body(
        "themes",
        title,
        lines,
        empty="募集中のテーマはありません No themes open",
        footer="詳しくはポータルで Details on the portal",
    )


def points(data: nb.DistrictFigures, *, title: str) -> c.SlideBody:
    lines = [f"{d.district} {d.points:,} pt（参加 {d.participations:,} 回）" for d in data.districts]
    return _body(
        "points", title, lines, empty="まだ集計がありません No figures yet", footer=f"まち全体 {data.points:,} pt"
    )


def bookings(data: bp.Busy, *, title: str) -> c.SlideBody:
    """A facility's held times today: the time and the room, never the booker."""
    lines = [f"{b.start.astimezone(JST):%H:%M}〜{b.end.astimezone(JST):%H:%M} 利用予定" for b in data.times]
    return _body("bookings", f"{title} — {data.name_ja}", lines, empty="本日の予約はありません Free all day")


def unavailable(slide: c.DataSlide) -> c.SlideBody:
    """The source did not answer: the last good data with its time, or a short note if there never was any."""
    if slide.data_at is None:
        return c.SlideBody(
            kicker=KICKERS[slide.source][0],
            title=slide.item.title,
            body="ただいま情報を取得できません Not available right now",
        )
    return slide.body.model_copy(
        update={"footer": f"{when(slide.data_at)} 時点の情報です As of {slide.data_at.astimezone(JST):%H:%M}"}
    )


def today(now: datetime) -> Any:
    """The town's date now (a facility's day)."""
    return now.astimezone(JST).date()
