"""Usage figures for staff (稼働率): per facility and month, the time booked over the time open for booking, split
by user class. No NATS and no commits here.

Open time is the sum of the layout's slots on every day the facility opens that month (休館日 and public holidays
left out, as the calendar says today). Booked time counts bookings that were granted: confirmed, checked in, and
no-shows (the slot was held for them); requests waiting for approval, offers and cancellations do not count.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import UTC, date, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import availability, facilities
from services.bookings.bookings import is_staff
from services.bookings.models import bookings
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_portal as p
from towntip.kernel.db import aware

COUNTED_STATES = ("confirmed", "checked_in", "no_show")


def open_minutes(f: c.Facility, first: date, days: int) -> int:
    total = 0
    for i in range(days):
        day = first + timedelta(days=i)
        if availability.closed_reason(f, day) is None:
            total += sum(int((s.end - s.start).total_seconds()) // 60 for s in availability.spans(f, day))
    return total


async def usage(session: AsyncSession, *, q: p.UsageQuery) -> p.Usage:
    if not is_staff(q.actor):
        raise p.DAY_STAFF_ONLY("only staff see the usage figures")
    year, month = (int(x) for x in q.month.split("-"))
    first = date(year, month, 1)
    days = calendar.monthrange(year, month)[1]
    start = availability.at(first, time(0, 0)).astimezone(UTC)
    end = availability.at(first + timedelta(days=days), time(0, 0)).astimezone(UTC)
    b = bookings.c
    rows = (await session.execute(select(b.facility_id, b.user_class, b.starts_at, b.ends_at).where(
        b.starts_at >= start, b.starts_at < end, b.state.in_(COUNTED_STATES)))).all()
    booked: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        booked[r.facility_id][r.user_class] += int((aware(r.ends_at) - aware(r.starts_at)).total_seconds()) // 60
        counts[r.facility_id] += 1
    out = []
    for f in (await facilities.list_(session, q=c.FacilityListQuery())).root:
        opened = open_minutes(f, first, days)
        minutes = sum(booked[f.id].values())
        out.append(p.FacilityUsage(
            facility_id=f.id, name_ja=f.name_ja, name_en=f.name_en, open_minutes=opened, booked_minutes=minutes,
            bookings=counts[f.id], rate=round(minutes / opened, 4) if opened else 0.0,
            by_class={k: booked[f.id].get(k, 0) for k in c.USER_CLASSES}))
    return p.Usage(month=q.month, facilities=out)
