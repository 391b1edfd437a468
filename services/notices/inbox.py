"""The person's inbox (電子私書箱): their rows of inbox_entries with the items they point at. Every query is bound
to the actor's own handle: nobody reads another person's inbox, staff included."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
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
                       archived_at=aware(row.archived_at), withdrawn=row.withdrawn_at is not None)


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
               e.c.delivered_at, e.c.read_at, e.c.archived_at)
        .join(items, items.c.id == e.c.item_id).where(*where)
        .order_by(e.c.delivered_at.desc(), e.c.item_id.desc()).limit(data.limit + 1))).all()
    more = len(rows) > data.limit
    page = [_item(r) for r in rows[:data.limit]]
    return c.InboxPage(items=page, unread=await unread(session, person),
                       next_before=page[-1].delivered_at if more else None)
