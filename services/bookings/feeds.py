"""What the iCalendar feeds are made of: a facility's held times (public, no personal data) and a person's own
bookings, reached by a private token. The token is made here, answered once, and kept only as its SHA-256; a new
token replaces the old one, whose URL then stops working. No NATS and no commits here."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import availability, facilities
from services.bookings.bookings import view
from services.bookings.models import bookings, feed_tokens
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_portal as p
from towntip.kernel.db import aware


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def busy(session: AsyncSession, *, q: p.BusyQuery, now: datetime) -> p.Busy:
    f = await facilities.get(session, facility_id=q.facility_id)
    first = q.start if q.start is not None else availability.today(now) - timedelta(days=7)
    start = availability.at(first, time(0, 0))
    end = start + timedelta(days=q.days)
    b = bookings.c
    rows = (await session.execute(select(b.starts_at, b.ends_at, b.state).where(
        b.facility_id == f.id, b.state.in_(c.HOLDING_STATES), b.starts_at < end.astimezone(UTC),
        b.ends_at > start.astimezone(UTC)).order_by(b.starts_at))).all()
    return p.Busy(facility_id=f.id, name_ja=f.name_ja, name_en=f.name_en, address=f.address, times=[
        p.BusyTime(start=aware(r.starts_at).astimezone(JST),
                   end=aware(r.ends_at).astimezone(JST), state=r.state) for r in rows])


async def new_token(session: AsyncSession, *, data: p.FeedTokenIn, now: datetime) -> p.FeedToken:
    token = secrets.token_urlsafe(32)
    await session.execute(delete(feed_tokens).where(feed_tokens.c.booker == data.actor.global_handle))
    await session.execute(insert(feed_tokens).values(booker=data.actor.global_handle, token_hash=token_hash(token),
                                                     created_at=now))
    return p.FeedToken(token=token, created_at=now)


async def status(session: AsyncSession, *, q: p.FeedStatusQuery) -> p.FeedStatus:
    row = (await session.execute(select(feed_tokens.c.created_at)
                                 .where(feed_tokens.c.booker == q.actor.global_handle))).first()
    return p.FeedStatus(active=row is not None, created_at=aware(row.created_at) if row is not None else None)


async def person(session: AsyncSession, *, q: p.FeedQuery, now: datetime) -> p.PersonFeed:
    row = (await session.execute(select(feed_tokens.c.booker)
                                 .where(feed_tokens.c.token_hash == token_hash(q.token)))).first()
    if row is None:
        raise p.FEED_NOT_FOUND("no feed with that token")
    b = bookings.c
    rows = (await session.execute(select(bookings).where(
        b.booker == row.booker, b.state.in_(c.HOLDING_STATES),
        b.starts_at >= (now - timedelta(days=p.FEED_PAST_DAYS)).astimezone(UTC),
        b.starts_at < (now + timedelta(days=p.FEED_DAYS_AHEAD)).astimezone(UTC)).order_by(b.starts_at))).all()
    names = {f.id: f.name_ja for f in (await facilities.list_(session, q=c.FacilityListQuery())).root}
    return p.PersonFeed(booker=row.booker, bookings=[view(r) for r in rows], facility_names=names)
