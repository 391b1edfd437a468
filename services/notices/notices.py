"""Notices written by staff (お知らせ): a target with its recipients counted before sending, publishing now or at a
time, a second staff member's approval above the node's threshold, correction and withdrawal with their history,
and what staff see afterwards: how many it reached and opened, never who.

The sending itself is the fan-out job's (services/notices/fanout.py): creating or approving a notice only schedules
it. Nothing here returns a person: a staff answer carries counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices import targeting, towns
from services.notices.audiences import Audiences
from services.notices.models import bus, inbox_entries, items, notice_history, notices
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts import notices_towns as tc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware
from towntip.kernel.uow import UnitOfWork

PAST_GRACE = timedelta(minutes=1)  # a form sent a moment after the time it names is not "in the past"


def staff(actor: Actor) -> str:
    if not actor.has("staff", "secretariat"):
        raise c.NOTICE_STAFF_ONLY("only staff write, send and read notices' figures")
    return actor.global_handle


async def _reach(uow: UnitOfWork, audiences: Audiences, target: c.Target, districts: tuple[str, ...]) -> int:
    """How many people the target reaches now (the same query the fan-out runs)."""
    targeting.check(target, districts)
    if target.kind in targeting.AUDIENCE_KINDS:
        return len(set(await audiences.handles(target)))
    return await uow.read(lambda s: targeting.count(s, target.kind, target.value))


async def preview(*, uow: UnitOfWork, data: c.PreviewIn, audiences: Audiences, districts: tuple[str, ...],
                  approval_over: int) -> c.RecipientCount:
    staff(data.actor)
    n = await _reach(uow, audiences, data.target, districts)
    return c.RecipientCount(count=n, needs_approval=n > approval_over, approval_over=approval_over)


def _check_content(content: c.NoticeContent, now: datetime) -> None:
    if content.valid_until is not None and (content.valid_until <= now or (
            content.valid_from is not None and content.valid_until <= content.valid_from)):
        raise c.NOTICE_BAD_PERIOD("the validity ends before it starts, or has ended")


def _content(content: c.NoticeContent, sender: str) -> dict[str, Any]:
    return {"title": content.title, "body": content.body, "links": [ln.model_dump() for ln in content.links],
            "category": content.category, "valid_from": _utc(content.valid_from),
            "valid_until": _utc(content.valid_until), "sender": content.sender or sender}


def _utc(at: datetime | None) -> datetime | None:
    """Stored in UTC like every time here: SQLite keeps no offset, and reads a time back as UTC."""
    return at.astimezone(UTC) if at is not None else None


async def _history(session: AsyncSession, notice_id: str, version: int, action: str, actor: str, now: datetime
                   ) -> None:
    item = (await session.execute(select(items.c.title, items.c.body).where(items.c.id == notice_id))).one()
    await session.execute(insert(notice_history).values(
        notice_id=notice_id, version=version, action=action, actor=actor, at=now,
        snapshot={"title": item.title, "body": item.body}))


async def create(*, uow: UnitOfWork, data: c.NoticeCreate, now: datetime, node: str, audiences: Audiences,
                 districts: tuple[str, ...], approval_over: int, town_name: str) -> c.StaffNotice:
    author = staff(data.actor)
    _check_content(data, now)
    if data.publish_at is not None and data.publish_at < now - PAST_GRACE:
        raise c.NOTICE_PUBLISH_PAST("the publishing time has passed")
    reach = await _reach(uow, audiences, data.target, districts)
    notice_id = str(uuid.uuid4())

    async def write(session: AsyncSession, at: datetime) -> c.StaffNotice:
        await session.execute(insert(items).values(
            id=notice_id, kind=c.KIND_NOTICE, origin_node=node, version=1, created_at=at, updated_at=at,
            **_content(data, town_name)))
        await session.execute(insert(notices).values(
            id=notice_id, target_kind=data.target.kind, target_value=data.target.value,
            state="awaiting_approval" if reach > approval_over else "scheduled",
            publish_at=data.publish_at or at, created_by=author, recipients=reach, created_at=at))
        await _history(session, notice_id, 1, "created", author, at)
        return await _one(session, notice_id)

    return await uow.write(write)


async def _row(session: AsyncSession, notice_id: str, *, lock: bool = False) -> Any:
    stmt = select(notices, items.c.version, items.c.withdrawn_at).join(items, items.c.id == notices.c.id).where(
        notices.c.id == notice_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise c.NOTICE_NOT_FOUND(f"no notice {notice_id}")
    return row


async def approve(*, session: AsyncSession, data: c.NoticeAction, now: datetime) -> c.StaffNotice:
    """A second staff member lets a notice to many people go: at its time, or now if that has passed."""
    who = staff(data.actor)
    row = await _row(session, data.notice_id, lock=True)
    if row.state != "awaiting_approval":
        raise c.NOTICE_NOT_AWAITING(f"the notice is {row.state}")
    if row.created_by == who:
        raise c.NOTICE_SELF_APPROVAL("its author cannot approve it")
    await session.execute(update(notices).where(notices.c.id == row.id).values(
        state="scheduled", approved_by=who))
    await _history(session, row.id, row.version, "approved", who, now)
    return await _one(session, row.id)


async def correct(*, session: AsyncSession, data: c.NoticeCorrect, now: datetime, node: str,
                  town_name: str) -> c.StaffNotice:
    """A new version of the content: every inbox that holds the notice shows it, marked as corrected; the history
    keeps each version."""
    who = staff(data.actor)
    row = await _row(session, data.notice_id, lock=True)
    if row.withdrawn_at is not None:
        raise c.NOTICE_WITHDRAWN("a withdrawn notice is not corrected")
    _check_content(data, now)
    version = row.version + 1
    await session.execute(update(items).where(items.c.id == row.id).values(
        version=version, updated_at=now, **_content(data, town_name)))
    await _history(session, row.id, version, "corrected", who, now)
    if row.state in ("sending", "sent"):
        public = row.target_kind == "everyone"
        await announce(session, bus, c.NoticeCorrected(
            notice_id=row.id, version=version, public=public, title=data.title if public else "",
            body=data.body if public else "", at=now), node=node)
        if public and row.state == "sent":  # peers took it when it was sent (towns.py); while sending, not yet
            item = (await session.execute(select(items).where(items.c.id == row.id))).one()
            await announce(session, bus, towns.public_event(item, node=node, at=now, corrected=True), node=node)
    return await _one(session, row.id)


async def withdraw(*, session: AsyncSession, data: c.NoticeAction, now: datetime, node: str) -> c.StaffNotice:
    """Withdrawn: not sent any further, and shown as withdrawn wherever it arrived (kept, with its history)."""
    who = staff(data.actor)
    row = await _row(session, data.notice_id, lock=True)
    if row.withdrawn_at is not None:
        raise c.NOTICE_WITHDRAWN("the notice is withdrawn already")
    await session.execute(update(items).where(items.c.id == row.id).values(withdrawn_at=now, updated_at=now))
    await session.execute(update(notices).where(notices.c.id == row.id).values(state="withdrawn"))
    await _history(session, row.id, row.version, "withdrawn", who, now)
    await announce(session, bus, c.NoticeWithdrawn(notice_id=row.id, at=now), node=node)
    if row.target_kind == "everyone" and row.state == "sent":
        await announce(session, bus, tc.PublicNoticeWithdrawn(notice_id=row.id, origin_node=node, at=now), node=node)
    return await _one(session, row.id)


# ---- what staff read: the notice and its counts, never its readers -----------------------------------------------


def _counted() -> Any:
    delivered = (select(func.count()).where(inbox_entries.c.item_id == notices.c.id)
                 .correlate(notices).scalar_subquery())
    opened = (select(func.count()).where(inbox_entries.c.item_id == notices.c.id,
                                         inbox_entries.c.opened_at.is_not(None))
              .correlate(notices).scalar_subquery())
    content = [items.c[n] for n in ("title", "body", "links", "category", "sender", "valid_from", "valid_until",
                                     "version")]
    return (select(notices, *content, delivered.label("delivered"), opened.label("opened"))
            .join(items, items.c.id == notices.c.id))


def _out(r: Any) -> c.StaffNotice:
    return c.StaffNotice(
        id=r.id, title=r.title, category=r.category, sender=r.sender,
        target=c.Target(kind=r.target_kind, value=r.target_value), state=r.state,
        publish_at=aware(r.publish_at), created_by=r.created_by, approved_by=r.approved_by,
        recipients=r.recipients, delivered=r.delivered, opened=r.opened, version=r.version,
        created_at=aware(r.created_at), sent_at=aware(r.sent_at))


async def _one(session: AsyncSession, notice_id: str) -> c.StaffNotice:
    return _out((await session.execute(_counted().where(notices.c.id == notice_id))).one())


async def list_(*, session: AsyncSession, data: c.StaffQuery) -> c.StaffNoticeList:
    staff(data.actor)
    rows = await session.execute(_counted().order_by(notices.c.created_at.desc()).limit(data.limit))
    return c.StaffNoticeList(notices=[_out(r) for r in rows])


async def get(*, session: AsyncSession, data: c.NoticeAction) -> c.StaffNoticeDetail:
    staff(data.actor)
    r = (await session.execute(_counted().where(notices.c.id == data.notice_id))).first()
    if r is None:
        raise c.NOTICE_NOT_FOUND(f"no notice {data.notice_id}")
    history = [c.HistoryEntry(version=h.version, action=h.action, actor=h.actor, at=aware(h.at),
                              title=h.snapshot.get("title", ""), body=h.snapshot.get("body", ""))
               for h in await session.execute(select(notice_history).where(
                   notice_history.c.notice_id == r.id).order_by(notice_history.c.seq))]
    return c.StaffNoticeDetail(**_out(r).model_dump(), body=r.body, links=r.links, valid_from=aware(r.valid_from),
                               valid_until=aware(r.valid_until), history=history)
