"""When a facility can be booked: its closed days (休館日 by weekday, by date, every year, and Japan's public holidays
from jpholiday), its slots of a day (fixed blocks or a grid within the day's opening hours), and which of them are
free. No NATS and no commits here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import jpholiday
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import facilities
from services.bookings.models import bookings
from towntip.kernel.clock import JST  # c.TIMEZONE: every facility's hours, days and months are in JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.db import aware

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PAST_DAYS = 31  # availability is answered this many days back (for a clerk looking at last month)


@dataclass(frozen=True)
class Span:
    """One bookable slot of a day: a fixed block or a step of the grid."""

    start: datetime  # aware, JST
    end: datetime
    name_ja: str | None
    fees: c.Fees


def weekday(day: date) -> str:
    """The day's key in a facility's hours and closed weekdays ("mon" … "sun")."""
    return c.WEEKDAYS[day.weekday()]


def at(day: date, t: time) -> datetime:
    return datetime.combine(day, t, tzinfo=JST)


def today(now: datetime) -> date:
    return now.astimezone(JST).date()


def closed_reason(f: c.Facility, day: date) -> str | None:
    """Why the facility is closed all `day`, or None when it opens that day."""
    if weekday(day) in f.closed_weekdays:
        return f"closed on {WEEKDAY_NAMES[day.weekday()]}s (休館日)"
    if day in f.closed_dates:
        return f"closed on {day.isoformat()} (休館日)"
    if day.strftime("%m-%d") in f.closed_yearly:
        return f"closed every year on {day:%m-%d} (休館日)"
    if f.closed_on_holidays:
        name = jpholiday.is_holiday_name(day)
        if name:
            return f"public holiday: {name}"
    if weekday(day) not in f.hours:
        return f"not open on {WEEKDAY_NAMES[day.weekday()]}s"
    return None


def spans(f: c.Facility, day: date) -> list[Span]:
    """The slots of `day` by the facility's layout and the day's hours (whether or not the day is closed)."""
    hours = f.hours.get(weekday(day))
    if hours is None:
        return []
    if isinstance(f.layout, c.Blocks):
        return [Span(at(day, b.start), at(day, b.end), b.name_ja, b.fees) for b in f.layout.blocks
                if hours.open <= b.start and b.end <= hours.close]
    step = timedelta(minutes=f.layout.step_minutes)
    out, t, close = [], at(day, hours.open), at(day, hours.close)
    while t + step <= close:
        out.append(Span(t, t + step, None, f.layout.fees_per_step))
        t += step
    return out


async def held(session: AsyncSession, facility_id: str, start: datetime, end: datetime) -> list[Any]:
    """The bookings holding any of [start, end) of the facility (their held range: the booking and its buffer)."""
    b = bookings.c
    return list((await session.execute(
        select(b.id, b.starts_at, b.held_until)
        .where(b.facility_id == facility_id, b.state.in_(c.HOLDING_STATES),
               b.starts_at < end.astimezone(UTC), b.held_until > start.astimezone(UTC))
        .order_by(b.starts_at))).all())


def bookable_window(f: c.Facility, now: datetime) -> tuple[datetime, date]:
    """The earliest start the rules let anyone book now, and the last day they may book."""
    return now + timedelta(minutes=f.rules.min_notice_minutes), today(now) + timedelta(days=f.rules.max_days_ahead)


def is_free(span: Span, taken: Sequence[Any], buffer: timedelta) -> bool:
    """No held range overlaps the span with its own buffer after it (what the exclusion constraint compares)."""
    until = span.end + buffer
    return not any(aware(r.starts_at) < until and span.start < aware(r.held_until) for r in taken)


async def day(session: AsyncSession, *, q: c.AvailabilityQuery, now: datetime) -> c.Availability:
    f = await facilities.get(session, facility_id=q.facility_id)
    first, last = today(now) - timedelta(days=PAST_DAYS), today(now) + timedelta(days=c.MAX_DAYS_AHEAD_LIMIT)
    if not first <= q.date <= last:
        raise c.AVAILABILITY_RANGE(f"availability is answered from {first} to {last}")
    reason = closed_reason(f, q.date)
    slots = spans(f, q.date)
    if reason is not None or not slots:
        return c.Availability(facility_id=f.id, date=q.date, closed=True, closed_reason=reason,
                              slots=[c.Slot(start=s.start, end=s.end, free=False, name_ja=s.name_ja) for s in slots])
    buffer = timedelta(minutes=f.buffer_minutes)
    taken = await held(session, f.id, slots[0].start, slots[-1].end + buffer)
    earliest, last_day = bookable_window(f, now)
    return c.Availability(facility_id=f.id, date=q.date, closed=False, slots=[
        c.Slot(start=s.start, end=s.end, name_ja=s.name_ja,
               free=s.start >= earliest and q.date <= last_day and is_free(s, taken, buffer))
        for s in slots])
