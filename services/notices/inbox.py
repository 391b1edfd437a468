"""The person's inbox (電子私書箱): their rows of inbox_entries with the items they point at. Every query is bound
to the actor's own handle: nobody reads another person's inbox, staff included."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices.models import inbox_entries as e
from services.notices.models import items
from towntip.kernel.contracts import notices as c
from towntip.kernel.db import aware


def _folder(folder: str) -> Any:
    if folder == "archive":
        return e.c.archived_at.is_not(None)
    if folder == "unread":
        return and_(e.c.archived_at.is_(None), e.c.read_at.is_(None))
    return e.c.archived_at.is_(None)


def _search(q: str) -> Any:
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(items.c.title.ilike(like, escape="\\"), items.c.body.ilike(like, escape="\\"))


def _item(row: Any) -> c.InboxItem:
    return c.InboxItem(id=row.id, kind=row.kind, title=row.title, sender=row.sender, category=row.category,
                       delivered_at=aware(row.delivered_at), read_at=aware(row.read_at),
                       archived_at=aware(row.archived_at), withdrawn=row.withdrawn_at is not None,
                       origin_node=row.origin_node)


async def unread(session: AsyncSession, person: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(e).where(
        e.c.person == person, e.c.archived_at.is_(None), e.c.read_at.is_(None))) or 0)


async def list_(*, session: AsyncSession, data: c.InboxQuery) -> c.InboxPage:
    """A page of the person's inbox, newest first; `before` continues where the last page ended."""
    person = data.actor.global_handle
    where = [e.c.person == person, _folder(data.folder)]
    if data.q:
        where.append(_search(data.q))
    if data.before is not None:
        where.append(e.c.delivered_at < data.before)
    rows = (await session.execute(
        select(items.c.id, e.c.kind, items.c.title, items.c.sender, items.c.category, items.c.withdrawn_at,
               items.c.origin_node, e.c.delivered_at, e.c.read_at, e.c.archived_at)
        .join(items, items.c.id == e.c.item_id).where(*where)
        .order_by(e.c.delivered_at.desc(), e.c.item_id.desc()).limit(data.limit + 1))).all()
    more = len(rows) > data.limit
    page = [_item(r) for r in rows[:data.limit]]
    return c.InboxPage(items=page, unread=await unread(session, person),
                       next_before=page[-1].delivered_at if more else None)


async def _entry(session: AsyncSession, person: str, item_id: str) -> Any:
    row = (await session.execute(
        select(items, e.c.kind.label("entry_kind"), e.c.delivered_at, e.c.read_at, e.c.opened_at, e.c.archived_at)
        .join(e, e.c.item_id == items.c.id).where(e.c.person == person, e.c.item_id == item_id))).first()
    if row is None:  # another person's item is not found either: its existence is not told
        raise c.ITEM_NOT_FOUND(f"no item {item_id} in your inbox")
    return row


async def get(*, session: AsyncSession, data: c.ItemAction, now: datetime) -> c.InboxDetail:
    """One item of the person's inbox, opened: read from now on (the staff's count of opened notices counts it)."""
    person = data.actor.global_handle
    row = await _entry(session, person, data.item_id)
    read_at = row.read_at or now
    if row.read_at is None or row.opened_at is None:
        await session.execute(update(e).where(e.c.person == person, e.c.item_id == data.item_id).values(
            read_at=read_at, opened_at=row.opened_at or now))
    return c.InboxDetail(
        id=row.id, kind=row.entry_kind, title=row.title, sender=row.sender, category=row.category,
        delivered_at=aware(row.delivered_at), read_at=aware(read_at), archived_at=aware(row.archived_at),
        withdrawn=row.withdrawn_at is not None, origin_node=row.origin_node, body=row.body, links=row.links,
        valid_from=aware(row.valid_from),
        valid_until=aware(row.valid_until), version=row.version, updated_at=aware(row.updated_at))


_MARKS = {"read": ("read_at", True), "unread": ("read_at", False), "archive": ("archived_at", True),
          "unarchive": ("archived_at", False)}


async def mark(*, session: AsyncSession, data: c.MarkIn, now: datetime) -> c.InboxItem:
    person = data.actor.global_handle
    await _entry(session, person, data.item_id)
    column, on = _MARKS[data.mark]
    await session.execute(update(e).where(e.c.person == person, e.c.item_id == data.item_id).values(
        {column: now if on else None}))
    row = await _entry(session, person, data.item_id)
    return c.InboxItem(id=row.id, kind=row.entry_kind, title=row.title, sender=row.sender, category=row.category,
                       delivered_at=aware(row.delivered_at), read_at=aware(row.read_at),
                       archived_at=aware(row.archived_at), withdrawn=row.withdrawn_at is not None,
                       origin_node=row.origin_node)
