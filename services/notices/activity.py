"""Activity notifications (issue 18, point 4): recorded once per person and thing, listed and marked read by their
person, each kind switched on or off, a daily mail digest for those who ask. No NATS and no commits here.

Who may: a person sees, reads and sets only their own (the actor the gateway passes); nobody else, staff included,
lists another's notifications. Notifications are made by this service from the other services' events only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices.activity_models import activity_bookings, activity_notes, activity_prefs, push_subscriptions
from towntip.kernel import db
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices_activity as c
from towntip.kernel.mail import check_address, queue_mail

DIGEST_HOUR = 7  # the digest of the day before goes out from 07:00 JST


@dataclass(frozen=True)
class NewNote:
    person: str
    kind: c.Kind
    subject: str
    source_key: str
    at: datetime
    who: str = ""
    link: str = ""


async def _off(session: AsyncSession, people: set[str]) -> dict[str, set[str]]:
    rows = await session.execute(
        select(activity_prefs.c.person, activity_prefs.c.off_kinds).where(
            db.among(session, activity_prefs.c.person, sorted(people))
        )
    )
    return {r.person: set(r.off_kinds or ()) for r in rows}


async def _pushed(session: AsyncSession, people: set[str]) -> set[str]:
    rows = await session.execute(
        select(push_subscriptions.c.person)
        .distinct()
        .where(db.among(session, push_subscriptions.c.person, sorted(people)))
    )
    return set(rows.scalars())


async def record(session: AsyncSession, notes: Sequence[NewNote]) -> int:
    """Store the notifications whose kind their person has not switched off; one per person and `source_key`, so a
    thing told twice (an event delivered again, a job run twice) is stored once. Answers how many are new."""
    if not notes:
        return 0
    people = {n.person for n in notes}
    off, pushed = await _off(session, people), await _pushed(session, people)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "person": n.person,
            "kind": n.kind,
            "subject": n.subject[:300],
            "who": n.who[:120],
            "link": n.link[:300],
            "at": n.at,
            "read_at": None,
            "source_key": n.source_key[:200],
            "push_due": n.person in pushed,
            "digested": False,
        }
        for n in notes
        if n.kind not in off.get(n.person, set())
    ]
    if not rows:
        return 0
    stmt = (
        db.insert_on_conflict(session, activity_notes)
        .on_conflict_do_nothing(index_elements=["person", "source_key"])
        .returning(activity_notes.c.id)
    )
    new = 0
    for row in rows:  # one statement each: RETURNING of a multi-row ON CONFLICT insert is not portable to SQLite
        new += (await session.execute(stmt.values(**row))).first() is not None
    return new


def _note(r: Any) -> c.Note:
    return c.Note(
        id=r.id, kind=r.kind, subject=r.subject, who=r.who, link=r.link, at=db.aware(r.at), read=r.read_at is not None
    )


async def _unread(session: AsyncSession, person: str) -> int:
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(activity_notes)
                .where(activity_notes.c.person == person, activity_notes.c.read_at.is_(None))
            )
        ).scalar_one()
    )


async def list_(session: AsyncSession, *, q: c.ActivityQuery) -> c.ActivityList:
    me = q.actor.global_handle
    stmt = select(activity_notes).where(activity_notes.c.person == me)
    if q.unread_only:
        stmt = stmt.where(activity_notes.c.read_at.is_(None))
    rows = await session.execute(stmt.order_by(activity_notes.c.at.desc(), activity_notes.c.id).limit(q.limit))
    return c.ActivityList(items=[_note(r) for r in rows], unread=await _unread(session, me))


async def mark_read(session: AsyncSession, *, data: c.ActivityRead, now: datetime) -> c.ActivityList:
    """Mark the person's own notifications read (ids of another person's match nothing)."""
    me = data.actor.global_handle
    cond = [activity_notes.c.person == me, activity_notes.c.read_at.is_(None)]
    if not data.all:
        if not data.ids:
            return await list_(session, q=c.ActivityQuery(actor=data.actor))
        cond.append(db.among(session, activity_notes.c.id, data.ids))
    await session.execute(update(activity_notes).where(*cond).values(read_at=now, push_due=False))
    return await list_(session, q=c.ActivityQuery(actor=data.actor))


async def _prefs(session: AsyncSession, person: str) -> Any:
    return (await session.execute(select(activity_prefs).where(activity_prefs.c.person == person))).first()


async def settings(session: AsyncSession, *, q: c.SettingsQuery) -> c.ActivitySettings:
    me = q.actor.global_handle
    row = await _prefs(session, me)
    off = set(row.off_kinds or ()) if row is not None else set()
    browsers = (
        await session.execute(
            select(func.count()).select_from(push_subscriptions).where(push_subscriptions.c.person == me)
        )
    ).scalar_one()
    return c.ActivitySettings(
        kinds={k: k not in off for k in c.KINDS},
        digest=bool(row is not None and row.digest),
        push_browsers=int(browsers),
    )


async def set_settings(session: AsyncSession, *, data: c.SettingsIn, now: datetime) -> c.ActivitySettings:
    """Switch kinds on or off, the digest on (with the account's address) or off (the address is forgotten)."""
    me = data.actor.global_handle
    row = await _prefs(session, me)
    off = set(row.off_kinds or ()) if row is not None else set()
    off |= {k for k, on in data.kinds.items() if not on}
    off -= {k for k, on in data.kinds.items() if on}
    digest = bool(row is not None and row.digest) if data.digest is None else data.digest
    digest_to = row.digest_to if row is not None and data.digest is None else None
    if data.digest:
        try:
            digest_to = check_address(data.digest_to or "")
        except ValueError:
            raise c.DIGEST_NO_ADDRESS("switch the digest on from an account with a verified e-mail address") from None
    values = {"off_kinds": sorted(off), "digest": digest, "digest_to": digest_to if digest else None, "updated_at": now}
    stmt = db.insert_on_conflict(session, activity_prefs).values(person=me, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["person"], set_=values))
    if off:  # what is switched off is not pushed either, even if it was waiting
        await session.execute(
            update(activity_notes)
            .where(
                activity_notes.c.person == me,
                activity_notes.c.push_due.is_(True),
                db.among(session, activity_notes.c.kind, sorted(off)),
            )
            .values(push_due=False)
        )
    return await settings(session, q=c.SettingsQuery(actor=data.actor))


# ---- jobs (run by services/notices/activity_jobs.py with the service's clock) -----------------------------------


def _jst_day(now: datetime, days: int = 0) -> tuple[datetime, datetime]:
    """[start, end) of the JST calendar day `days` after today's, as aware times."""
    day = now.astimezone(JST).date() + timedelta(days=days)
    start = datetime.combine(day, time(0), tzinfo=JST)
    return start, start + timedelta(days=1)


async def remind_tomorrow(session: AsyncSession, *, now: datetime) -> int:
    """A reminder for each confirmed booking that starts tomorrow (JST); a booking is reminded once."""
    start, end = _jst_day(now, 1)
    rows = list(
        await session.execute(
            select(activity_bookings).where(activity_bookings.c.starts_at >= start, activity_bookings.c.starts_at < end)
        )
    )
    return await record(
        session,
        [
            NewNote(
                person=r.booker,
                kind="booking_reminder",
                subject=db.aware(r.starts_at).astimezone(JST).strftime("%m/%d %H:%M"),
                who=r.facility_id,
                link=f"/bookings/{r.booking_id}",
                source_key=f"bookings:reminder:{r.booking_id}",
                at=now,
            )
            for r in rows
        ],
    )


async def forget_old(session: AsyncSession, *, now: datetime) -> int:
    """Delete notifications past their keeping time and bookings already begun (personal data kept no longer)."""
    gone = db.rowcount(
        await session.execute(delete(activity_notes).where(activity_notes.c.at < now - timedelta(days=c.KEEP_DAYS)))
    )
    await session.execute(delete(activity_bookings).where(activity_bookings.c.starts_at < now))
    return gone


def digest_text(notes: Sequence[Any], words: dict[str, str]) -> str:
    lines = ["まちづくりポータルの新しいお知らせです / Your new activity on the town portal", ""]
    for n in notes:
        when = db.aware(n.at).astimezone(JST).strftime("%m/%d %H:%M")
        lines.append(f"- {when} {words.get(n.kind, n.kind)}: {n.subject}" + (f" ({n.who})" if n.who else ""))
    lines += [
        "",
        "配信の停止は「通知の設定」から / Stop these mails in your notification settings:",
        "/notifications/settings",
    ]
    return "\n".join(lines)


DIGEST_WORDS = {
    "comment": "コメント",
    "friend_request": "トモダチ申請",
    "followed_change": "フォロー中の更新",
    "booking_reminder": "明日の予約",
    "points_credited": "ポイント付与",
    "moderation": "職員による対応",
    "opening_applied": "募集への応募",
    "opening_accepted": "応募の承認",
    "opening_declined": "応募の見送り",
}


async def queue_digests(session: AsyncSession, *, now: datetime, mail: Table) -> int:
    """Once a JST day from 07:00: to each person with the digest on, one mail of their unread notifications not
    mailed before (none: no mail). The mail's key names the person and day, so a second run queues nothing."""
    local = now.astimezone(JST)
    if local.hour < DIGEST_HOUR:
        return 0
    today = local.date().isoformat()
    prefs = list(
        await session.execute(
            select(activity_prefs).where(
                activity_prefs.c.digest.is_(True),
                activity_prefs.c.digest_to.is_not(None),
                (activity_prefs.c.digest_sent_on.is_(None)) | (activity_prefs.c.digest_sent_on != today),
            )
        )
    )
    sent = 0
    for p in prefs:
        cond = and_(
            activity_notes.c.person == p.person,
            activity_notes.c.read_at.is_(None),
            activity_notes.c.digested.is_(False),
        )
        notes = list(await session.execute(select(activity_notes).where(cond).order_by(activity_notes.c.at).limit(50)))
        if notes:
            sent += await queue_mail(
                session,
                mail,
                key=f"activity-digest:{p.person}:{today}",
                to=p.digest_to,
                subject=f"お知らせのまとめ {today} / Your activity digest",
                text=digest_text(notes, DIGEST_WORDS),
            )
            await session.execute(
                update(activity_notes)
                .where(db.among(session, activity_notes.c.id, [n.id for n in notes]))
                .values(digested=True)
            )
        await session.execute(
            update(activity_prefs).where(activity_prefs.c.person == p.person).values(digest_sent_on=today)
        )
    return sent
