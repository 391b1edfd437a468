"""The staff's day sheet (当日の利用一覧): every facility's bookings of one day in order of time, with the booker,
purpose, state and whether the fee is paid, and a walk-in's phone; and a person's own bookings split into upcoming,
past and cancelled. No NATS and no commits here."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import availability
from services.bookings.bookings import is_staff, view
from services.bookings.models import bookings, facilities
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_portal as p


async def day_sheet(session: AsyncSession, *, q: p.DaySheetQuery) -> p.DaySheet:
    if not is_staff(q.actor):
        raise p.DAY_STAFF_ONLY("only staff see the day sheet")
    start = availability.at(q.date, time(0, 0))
    b, f = bookings.c, facilities.c
    stmt = (select(bookings, f.name_ja.label("facility_name_ja"))
            .join(facilities, f.id == b.facility_id)
            .where(b.starts_at >= start.astimezone(UTC), b.starts_at < (start + timedelta(days=1)).astimezone(UTC)))
    if not q.include_cancelled:
        stmt = stmt.where(b.state != "cancelled")
    rows = (await session.execute(stmt.order_by(b.starts_at, b.facility_id, b.created_at))).all()
    found = (await session.execute(select(f.id, f.name_ja, f.name_en).where(f.active.is_(True))
                                   .order_by(f.id))).all()
    return p.DaySheet(
        date=q.date,
        facilities=[p.DayFacility(id=r.id, name_ja=r.name_ja, name_en=r.name_en) for r in found],
        entries=[p.DayEntry(booking=view(r), facility_name_ja=r.facility_name_ja, contact_phone=r.contact_phone)
                 for r in rows])


async def overview(session: AsyncSession, *, q: p.OverviewQuery, now: datetime) -> p.Overview:
    """The person's bookings split by this service's clock (the portal's clock may differ from it)."""
    b = bookings.c
    mine = b.booker == q.actor.global_handle
    ended = ("cancelled", "rejected")
    upcoming = (await session.execute(select(bookings).where(
        mine, b.state.in_(c.HOLDING_STATES), b.ends_at > now.astimezone(UTC))
        .order_by(b.starts_at).limit(c.PAGE_MAX))).all()
    past = (await session.execute(select(bookings).where(
        mine, b.state.not_in(ended), b.ends_at <= now.astimezone(UTC))
        .order_by(b.starts_at.desc()).limit(c.PAGE_MAX))).all()
    gone = (await session.execute(select(bookings).where(mine, b.state.in_(ended))
                                  .order_by(b.starts_at.desc()).limit(c.PAGE_MAX))).all()
    names = dict((await session.execute(select(facilities.c.id, facilities.c.name_ja))).tuples().all())
    return p.Overview(today=availability.today(now), upcoming=[view(r) for r in upcoming],
                      past=[view(r) for r in past], ended=[view(r) for r in gone], facility_names=names)
