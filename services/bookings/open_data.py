"""The bookings service's open data (svc.<node>.bookings.open_data, public): facilities and their usage (稼働率) per
month, counted as the staff's usage figures count them (services/bookings/figures.py). No NATS and no commits here.

What leaves: each facility's name, kind of place and capacity as the portal shows them, and per month the hours
open for booking, the number of granted bookings and the hours they hold. Never who booked (handles, names, a
walk-in's phone, groups). A month with under towntip.kernel.open_data.SUPPRESS_BELOW bookings at a facility has its
bookings, hours and rate withheld: a few bookings of a small room can point at a regular user.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import availability, facilities
from services.bookings.figures import COUNTED_STATES, open_minutes
from services.bookings.models import bookings
from towntip.kernel import open_data as od
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import open_data as o
from towntip.kernel.db import aware

MONTHS = 24  # at most the last two years, this month included


def _months(first: date, last: date) -> list[date]:
    out, d = [], first.replace(day=1)
    while d <= last:
        out.append(d)
        d = (d + timedelta(days=32)).replace(day=1)
    return out[-MONTHS:]


async def tables(session: AsyncSession, *, now: datetime) -> o.OpenData:
    b = bookings.c
    listed = (await facilities.list_(session, q=c.FacilityListQuery())).root
    facility_rows = [[f.name_ja, f.name_en, f.kind, f.capacity] for f in listed]
    earliest = (await session.execute(select(func.min(b.starts_at)).where(b.state.in_(COUNTED_STATES)))).scalar()
    today = now.astimezone(JST).date()
    usage_rows: list[list[o.Cell]] = []
    if earliest is not None:
        months = _months(min(aware(earliest).astimezone(JST).date(), today), today)
        start = availability.at(months[0], time(0, 0)).astimezone(UTC)
        rows = (await session.execute(select(b.facility_id, b.starts_at, b.ends_at).where(
            b.starts_at >= start, b.state.in_(COUNTED_STATES)))).all()
        minutes: dict[tuple[str, str], int] = defaultdict(int)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for r in rows:
            key = (r.facility_id, aware(r.starts_at).astimezone(JST).strftime("%Y-%m"))
            minutes[key] += int((aware(r.ends_at) - aware(r.starts_at)).total_seconds()) // 60
            counts[key] += 1
        for f in listed:
            for m in months:
                key = (f.id, m.strftime("%Y-%m"))
                opened = open_minutes(f, m, calendar.monthrange(m.year, m.month)[1])
                n = counts.get(key, 0)
                hidden = od.small(n)
                usage_rows.append([f.name_ja, key[1], round(opened / 60, 2), None if hidden else n,
                                   None if hidden else round(minutes.get(key, 0) / 60, 2),
                                   None if hidden else (round(minutes.get(key, 0) / opened, 4) if opened else 0)])
    return o.OpenData(tables=[
        o.OpenDataTable(
            name="facilities", title_ja="施設", title_en="Facilities",
            columns_ja=["施設名", "施設名（英語）", "種類", "定員"],
            columns_en=["Facility", "Facility (English)", "Kind", "Capacity"],
            rows=facility_rows),
        o.OpenDataTable(
            name="facility_usage_by_month", title_ja="施設の月別利用状況（稼働率）",
            title_en="Facility usage per month",
            columns_ja=["施設名", "月", "予約可能時間(h)", "予約件数", "予約時間(h)", "稼働率"],
            columns_en=["Facility", "Month", "Hours open for booking", "Bookings", "Hours booked", "Usage rate"],
            rows=usage_rows,
            notes_ja="予約件数は確定・利用済み・無断キャンセルの予約です（承認待ち・取消は含みません）。稼働率は予約時間÷予約可能時間。",
            notes_en="Bookings: confirmed, checked in and no-shows (not requests waiting or cancelled). Usage rate: "
                     "hours booked over hours open for booking."),
    ])
