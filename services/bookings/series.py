"""Recurring bookings (定期予約): a weekly or monthly-by-weekday series of one time of day. Each date is booked as a
single booking (bookings.create: the same checks, quota and no-double-booking guard), each in a savepoint of the one
transaction, so a date that cannot be had is reported with its refusal's code and the others stand. One date, the
following ones, or all may then be cancelled or changed; a change of time is all or nothing: when any chosen date
cannot have the new time, nothing changes and `series.conflicts` lists each date with its code. No NATS and no
commits here.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import availability, bookings, facilities, waitlist
from services.bookings.models import bookings as bookings_table
from services.bookings.models import bus, series
from towntip.kernel import db
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_waitlist as w
from towntip.kernel.db import aware
from towntip.kernel.errors import ServiceError
from towntip.kernel.uow import sqlstate

LOOKAHEAD_DAYS = 2 * 366  # a series given by count looks this far for its dates at most


# ---- the dates of a pattern -------------------------------------------------------------------------------------


def _weekly(p: w.Weekly, first: date, last: date, count: int) -> list[date]:
    monday = first - timedelta(days=first.weekday())
    days = {c.WEEKDAYS.index(d) for d in p.weekdays}
    out: list[date] = []
    d = first
    while d <= last and len(out) < count:
        if d.weekday() in days and ((d - monday).days // 7) % p.every_weeks == 0:
            out.append(d)
        d += timedelta(days=1)
    return out


def nth_weekday(year: int, month: int, nth: int, weekday: int) -> date | None:
    """The nth `weekday` (0 = Monday) of the month (nth -1: the last), or None when the month has no such day."""
    days = [d for d in range(1, calendar.monthrange(year, month)[1] + 1) if date(year, month, d).weekday() == weekday]
    if nth == -1:
        return date(year, month, days[-1])
    return date(year, month, days[nth - 1]) if nth <= len(days) else None


def _monthly(p: w.MonthlyByWeekday, first: date, last: date, count: int) -> list[date]:
    out: list[date] = []
    year, month = first.year, first.month
    while len(out) < count and date(year, month, 1) <= last:
        d = nth_weekday(year, month, p.nth, c.WEEKDAYS.index(p.weekday))
        if d is not None and first <= d <= last:
            out.append(d)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def dates(pattern: w.Weekly | w.MonthlyByWeekday, first: date, last: date | None, count: int | None) -> list[date]:
    """The series' dates: up to `last` or `count` of them; more than SERIES_MAX up to `last` is refused."""
    until = last if last is not None else first + timedelta(days=LOOKAHEAD_DAYS)
    limit = count if count is not None else w.SERIES_MAX + 1
    found = (_weekly(pattern, first, until, limit) if isinstance(pattern, w.Weekly)
             else _monthly(pattern, first, until, limit))
    if len(found) > w.SERIES_MAX:
        raise w.SERIES_TOO_MANY(f"the pattern gives more than {w.SERIES_MAX} dates up to {until}: end it earlier")
    if not found:
        raise w.SERIES_NO_DATES(f"no date of the pattern from {first} to {until}")
    return found


# ---- views ------------------------------------------------------------------------------------------------------


def view(row: Any) -> w.Series:
    return w.Series.model_validate({
        "id": row.id, "facility_id": row.facility_id, "start_time": row.start_time, "end_time": row.end_time,
        "pattern": row.pattern, "first_day": row.first_day, "last_day": row.last_day, "count": row.count,
        "purpose": row.purpose, "user_class": row.user_class, "booker": row.booker, "booker_name": row.booker_name,
        "booked_by": row.booked_by, "missed": row.missed, "created_at": aware(row.created_at)})


async def _row(session: AsyncSession, series_id: str, actor: Any, *, lock: bool = False) -> Any:
    stmt = select(series).where(series.c.id == series_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None or not (bookings.is_staff(actor) or (actor is not None and row.booker == actor.global_handle)):
        raise w.SERIES_NOT_FOUND(f"no series {series_id}")
    return row


async def _bookings(session: AsyncSession, series_id: str) -> list[Any]:
    b = bookings_table.c
    return list((await session.execute(select(bookings_table).where(b.series_id == series_id)
                                       .order_by(b.starts_at))).all())


async def _detail(session: AsyncSession, series_id: str) -> w.SeriesDetail:
    row = (await session.execute(select(series).where(series.c.id == series_id))).one()
    return w.SeriesDetail(series=view(row), bookings=[bookings.view(r) for r in await _bookings(session, series_id)])


async def get(session: AsyncSession, *, data: w.SeriesQuery) -> w.SeriesDetail:
    await _row(session, data.series_id, data.actor)
    return await _detail(session, data.series_id)


async def mine(session: AsyncSession, *, q: w.SeriesMineQuery) -> w.SeriesList:
    rows = (await session.execute(select(series).where(series.c.booker == q.actor.global_handle)
                                  .order_by(series.c.created_at.desc(), series.c.id))).all()
    return w.SeriesList(series=[view(r) for r in rows])


# ---- booking a series -------------------------------------------------------------------------------------------


def _at(day: date, hm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hm), tzinfo=JST)


async def create(session: AsyncSession, *, node: str, data: w.SeriesCreate, now: datetime) -> w.SeriesReport:
    fid = bookings.local_id(data.facility_id, node)
    if not (2 <= len(fid) <= 48):
        raise c.FACILITY_NOT_FOUND(f"no facility {fid!r} on this node")
    await facilities.row_of(session, fid)
    if data.on_behalf_of is None and data.actor is None:
        raise c.BOOKING_BEHALF_REQUIRED("the admin token is no person: say on_behalf_of whom")
    if data.on_behalf_of is not None and not bookings.is_staff(data.actor):
        raise c.BOOKING_STAFF_ONLY("only staff book on behalf of someone else")
    if (data.last_day is None) == (data.count is None):
        raise w.SERIES_INCOMPLETE("give either last_day or count")
    if not time.fromisoformat(data.start_time) < time.fromisoformat(data.end_time):
        raise c.BOOKING_BAD_RANGE("the end must be after the start, on the same day")
    days = dates(data.pattern, data.first_day, data.last_day, data.count)
    sid = new_id()
    booked: list[c.Booking] = []
    missed: list[w.Missed] = []
    for day in days:
        one = c.BookingCreate(actor=data.actor, facility_id=fid, start=_at(day, data.start_time),
                              end=_at(day, data.end_time), purpose=data.purpose, user_class=data.user_class,
                              on_behalf_of=data.on_behalf_of)
        try:
            async with session.begin_nested():  # a refused date leaves nothing behind (not even a failed insert)
                made = await bookings.create(session, node=node, data=one, now=now)
                await session.execute(update(bookings_table).where(bookings_table.c.id == made.id).values(
                    origin="series", series_id=sid))
        except ServiceError as exc:
            missed.append(w.Missed(date=day, code=exc.error_code or "", reason=exc.reason))
            continue
        booked.append(made.model_copy(update={"origin": "series", "series_id": sid}))
    if not booked:
        raise w.SERIES_NONE_HAD("; ".join(f"{m.date} {m.code}" for m in missed))
    first = booked[0]
    await session.execute(insert(series).values(
        id=sid, facility_id=fid, start_time=data.start_time, end_time=data.end_time,
        pattern=data.pattern.model_dump(mode="json"),
        first_day=data.first_day.isoformat(), last_day=data.last_day.isoformat() if data.last_day else None,
        count=data.count, purpose=data.purpose, user_class=data.user_class, booker=first.booker,
        booker_user_id=data.actor.user_id if data.actor is not None and data.on_behalf_of is None else None,
        booker_name=first.booker_name, booked_by=first.booked_by,
        missed=[m.model_dump(mode="json") for m in missed], created_at=now))
    await announce(session, bus, node=node, at=now, event=w.SeriesBooked(
        series_id=sid, facility_id=fid, booker=first.booker, booked=[b.start.date() for b in booked],
        missed=[m.date for m in missed], at=now))
    row = (await session.execute(select(series).where(series.c.id == sid))).one()
    return w.SeriesReport(series=view(row), booked=booked, missed=missed)


# ---- changing a series ------------------------------------------------------------------------------------------


async def _targets(session: AsyncSession, data: w.SeriesChange, now: datetime) -> list[Any]:
    """The series' bookings the change is for: still holding their slot and not begun, in the chosen scope."""
    rows = await _bookings(session, data.series_id)
    if data.scope != "all":
        chosen = next((r for r in rows if r.id == data.booking_id), None)
        if chosen is None:
            raise w.SERIES_NOT_IN(f"booking {data.booking_id} is not one of series {data.series_id}")
        rows = [chosen] if data.scope == "one" else [r for r in rows if r.starts_at >= chosen.starts_at]
    targets = [r for r in rows if r.state in c.HOLDING_STATES and aware(r.starts_at) > now]
    if not targets:
        raise w.SERIES_NOTHING_LEFT("no booking in that scope is still to come")
    return targets


async def change(session: AsyncSession, *, node: str, data: w.SeriesChange, now: datetime) -> w.SeriesDetail:
    row = await _row(session, data.series_id, data.actor, lock=True)
    if data.scope != "all" and data.booking_id is None:
        raise w.SERIES_INCOMPLETE(f"scope {data.scope} needs the booking_id it starts from")
    if (data.start_time is None) != (data.end_time is None):
        raise w.SERIES_INCOMPLETE("give both start_time and end_time, or neither")
    if data.action == "change" and data.start_time is None and data.purpose is None:
        raise w.SERIES_NO_CHANGE("say the new start_time and end_time, or the new purpose")
    targets = await _targets(session, data, now)
    if data.action == "cancel":
        await _cancel(session, node=node, data=data, targets=targets, now=now)
    else:
        await _change(session, node=node, data=data, targets=targets, now=now)
        values: dict[str, Any] = {}
        if data.scope != "one" and data.start_time is not None and data.end_time is not None:
            values.update(start_time=data.start_time, end_time=data.end_time)
        if data.scope != "one" and data.purpose is not None:
            values["purpose"] = data.purpose
        if values:
            await session.execute(update(series).where(series.c.id == row.id).values(**values))
    await announce(session, bus, node=node, at=now, event=w.SeriesChanged(
        series_id=row.id, facility_id=row.facility_id, scope=data.scope, action=data.action,
        booking_ids=[t.id for t in targets], at=now))
    return await _detail(session, row.id)


async def _cancel(session: AsyncSession, *, node: str, data: w.SeriesChange, targets: list[Any],
                  now: datetime) -> None:
    own = data.actor is not None and targets[0].booker == data.actor.global_handle
    reason = ("booker" if own else "staff") if data.scope == "one" else "series"
    for t in targets:
        await session.execute(update(bookings_table).where(bookings_table.c.id == t.id).values(
            state="cancelled", cancelled_at=now, cancelled_by=bookings.who(data.actor), cancel_reason=reason))
        await announce(session, bus, node=node, at=now, event=c.BookingCancelled(
            booking_id=t.id, facility_id=t.facility_id, start=aware(t.starts_at).astimezone(JST),
            end=aware(t.ends_at).astimezone(JST), booker=t.booker, by="booker" if own else "staff", at=now))
        await waitlist.released(session, node=node, facility_id=t.facility_id, start=aware(t.starts_at),
                                held_until=aware(t.held_until), now=now)


async def _new_times(session: AsyncSession, f: c.Facility, data: w.SeriesChange, targets: list[Any],
                     now: datetime) -> list[tuple[Any, datetime, datetime, int]]:
    """Each target's new (start, end, fee) on its own date; every date that cannot have it is listed in the one
    refusal."""
    assert data.start_time is not None and data.end_time is not None
    ids = {t.id for t in targets}
    out, conflicts = [], []
    for t in sorted(targets, key=lambda r: r.starts_at):
        day = aware(t.starts_at).astimezone(JST).date()
        start, end = _at(day, data.start_time), _at(day, data.end_time)
        try:
            bookings.check_time(f, start, end, now)
            fee = bookings.fee_and_layout(f, start, end, t.user_class)
            if db.dialect_of(session) == "postgresql":
                await bookings.advisory_lock(session, f"bookings.day:{f.id}:{day}")
            held = await availability.held(session, f.id, start, end + timedelta(minutes=f.buffer_minutes))
            if any(h.id not in ids for h in held):
                raise c.BOOKING_TAKEN(bookings.TAKEN_REASON)
        except ServiceError as exc:
            conflicts.append(f"{day} {exc.error_code}")
            continue
        out.append((t, start, end, fee))
    if conflicts:
        raise w.SERIES_CONFLICTS("; ".join(conflicts))
    return out


async def _change(session: AsyncSession, *, node: str, data: w.SeriesChange, targets: list[Any],
                  now: datetime) -> None:
    if data.start_time is None:  # the purpose only
        await session.execute(update(bookings_table).where(bookings_table.c.id.in_([t.id for t in targets]))
                              .values(purpose=data.purpose))
        return
    f = facilities.view(await facilities.row_of(session, targets[0].facility_id))
    moves = await _new_times(session, f, data, targets, now)
    buffer = timedelta(minutes=f.buffer_minutes)
    try:
        async with session.begin_nested():
            for t, start, end, fee in moves:
                await session.execute(update(bookings_table).where(bookings_table.c.id == t.id).values(
                    starts_at=start.astimezone(UTC), ends_at=end.astimezone(UTC),
                    held_until=(end + buffer).astimezone(UTC), fee=fee,
                    **({"purpose": data.purpose} if data.purpose is not None else {})))
    except IntegrityError as exc:
        if sqlstate(exc) == bookings.EXCLUSION_VIOLATION:
            raise w.SERIES_CONFLICTS("a concurrent booking took one of the new times: try again") from None
        raise
    for t, _, _, _ in moves:  # the time each moved away from may now go to someone waiting for it
        await waitlist.released(session, node=node, facility_id=t.facility_id, start=aware(t.starts_at),
                                held_until=aware(t.held_until), now=now)
