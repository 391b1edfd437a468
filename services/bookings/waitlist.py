"""The waitlist (キャンセル待ち): people wait in line for a taken slot; when a booking holding that time is released,
the slot is offered to the first in line whose time is now free, as a booking in state `offered` that holds the slot
until its deadline; accepted, it is confirmed (or requested where staff approve); declined or expired, the next in
line gets it. No NATS and no commits here: the adapter (or the periodic job's loop) owns the transaction.

Every path that releases a slot calls `released(...)` in its own transaction, so the offer commits with the release
or not at all. The offer is written under the same guard as a new booking (bookings.create): the facility's day lock
and the overlap check on PostgreSQL (the exclusion constraint behind them), the write lock on SQLite; a new booking
racing for the freed slot and the offer queue on that lock, and whichever comes second finds it taken.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import availability, bookings, facilities
from services.bookings.models import bookings as bookings_table
from services.bookings.models import bus, waitlist
from towntip.kernel import db
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_waitlist as w
from towntip.kernel.db import aware
from towntip.kernel.errors import ServiceError
from towntip.kernel.uow import sqlstate

OPEN = ("waiting", "offered")  # entries still in line (or holding an offer)
SYSTEM = "system"  # `cancelled_by` of an offer that expired
# The longest buffer a facility may have (contracts.bookings.FacilityPut.buffer_minutes): an entry ending this long
# before the freed start may still have been kept out by its own buffer, so the first query looks that far back.
MAX_BUFFER = timedelta(minutes=240)


def _jst(value: datetime) -> datetime:
    return aware(value).astimezone(JST)


async def _position(session: AsyncSession, row: Any) -> int | None:
    """1 + the entries waiting before this one for a time that overlaps its own."""
    if row.state != "waiting":
        return None
    q = waitlist.c
    ahead = (await session.execute(select(func.count()).select_from(waitlist).where(
        q.facility_id == row.facility_id, q.state == "waiting", q.seq < row.seq,
        q.starts_at < row.ends_at, q.ends_at > row.starts_at))).scalar_one()
    return int(ahead) + 1


async def view(session: AsyncSession, row: Any) -> w.WaitlistEntry:
    expires = None
    if row.state == "offered" and row.booking_id is not None:
        expires = (await session.execute(select(bookings_table.c.offer_expires_at).where(
            bookings_table.c.id == row.booking_id))).scalar_one_or_none()
    return w.WaitlistEntry(
        id=row.id, facility_id=row.facility_id, start=_jst(row.starts_at), end=_jst(row.ends_at),
        purpose=row.purpose, user_class=row.user_class, person=row.person, booked_by=row.booked_by, state=row.state,
        position=await _position(session, row), booking_id=row.booking_id,
        offer_expires_at=None if expires is None else _jst(expires), created_at=aware(row.created_at))


async def _entry(session: AsyncSession, entry_id: str, *, lock: bool = False) -> Any:
    stmt = select(waitlist).where(waitlist.c.id == entry_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise w.WAITLIST_NOT_FOUND(f"no waitlist entry {entry_id}")
    return row


# ---- joining and leaving ----------------------------------------------------------------------------------------


async def join(session: AsyncSession, *, node: str, data: w.WaitlistJoin, now: datetime) -> w.WaitlistEntry:
    actor = data.actor
    fid = bookings.local_id(data.facility_id, node)
    if not (2 <= len(fid) <= 48):
        raise c.FACILITY_NOT_FOUND(f"no facility {fid!r} on this node")
    f = facilities.view(await facilities.row_of(session, fid))
    if data.on_behalf_of is None and actor is None:
        raise c.BOOKING_BEHALF_REQUIRED("the admin token is no person: say on_behalf_of whom")
    booked_by: str | None = None
    if data.on_behalf_of is not None:
        if not bookings.is_staff(actor):
            raise c.BOOKING_STAFF_ONLY("only staff put someone else on the waitlist")
        booked_by = bookings.who(actor)
        person, user_id, name = data.on_behalf_of, None, data.on_behalf_of
    else:
        assert actor is not None
        person, user_id, name = actor.global_handle, actor.user_id, actor.display_name
    start, end = data.start.astimezone(JST), data.end.astimezone(JST)
    bookings.check_time(f, start, end, now)
    bookings.fee_and_layout(f, start, end, data.user_class)
    held_until = end + timedelta(minutes=f.buffer_minutes)
    if db.dialect_of(session) == "postgresql":
        await bookings.advisory_lock(session, f"bookings.day:{fid}:{start.date()}")
    holders = await availability.held(session, fid, start, held_until)
    if not holders:
        raise w.WAITLIST_SLOT_FREE("nothing holds that time: book it instead")
    b, q = bookings_table.c, waitlist.c
    mine = (await session.execute(select(func.count()).select_from(bookings_table).where(
        b.id.in_([h.id for h in holders]), b.booker == person))).scalar_one()
    waiting = (await session.execute(select(q.person).where(
        q.facility_id == fid, q.starts_at == start.astimezone(UTC), q.ends_at == end.astimezone(UTC),
        q.state.in_(OPEN)))).scalars().all()
    if mine or person in waiting:
        raise w.WAITLIST_ALREADY(f"{person} waits for or holds that time already")
    if len(waiting) >= w.WAITLIST_MAX:
        raise w.WAITLIST_FULL(f"{w.WAITLIST_MAX} people wait for that time already")
    eid = new_id()
    await session.execute(insert(waitlist).values(
        id=eid, facility_id=fid, starts_at=start.astimezone(UTC), ends_at=end.astimezone(UTC), purpose=data.purpose,
        user_class=data.user_class, person=person, person_user_id=user_id, person_name=name, booked_by=booked_by,
        state="waiting", created_at=now, updated_at=now))
    await announce(session, bus, node=node, at=now, event=w.WaitlistJoined(
        entry_id=eid, facility_id=fid, start=start, end=end, person=person, at=now))
    return await view(session, await _entry(session, eid))


def _may(actor: Any, person: str | None) -> bool:
    return bookings.is_staff(actor) or (actor is not None and actor.global_handle == person)


async def leave(session: AsyncSession, *, data: w.WaitlistAction, now: datetime) -> w.WaitlistEntry:
    row = await _entry(session, data.entry_id, lock=True)
    if not _may(data.actor, row.person):
        raise w.WAITLIST_NOT_FOUND(f"no waitlist entry {data.entry_id}")
    if row.state != "waiting":
        raise w.WAITLIST_NOT_WAITING(f"the entry is {row.state}, no longer waiting")
    await session.execute(update(waitlist).where(waitlist.c.id == row.id).values(state="left", updated_at=now))
    return await view(session, await _entry(session, row.id))


async def mine(session: AsyncSession, *, q: w.WaitlistMineQuery, now: datetime) -> w.WaitlistList:
    stmt = select(waitlist).where(waitlist.c.person == q.actor.global_handle)
    if not q.include_done:
        stmt = stmt.where(waitlist.c.state.in_(OPEN), waitlist.c.starts_at > now)
    rows = (await session.execute(stmt.order_by(waitlist.c.starts_at, waitlist.c.seq))).all()
    return w.WaitlistList(entries=[await view(session, r) for r in rows])


# ---- offers -----------------------------------------------------------------------------------------------------


async def released(session: AsyncSession, *, node: str, facility_id: str, start: datetime, held_until: datetime,
                   now: datetime) -> list[str]:
    """A booking holding [start, held_until) of the facility let go of it (cancelled, rejected, expired, a
    no-show): offer what is now free to the first in line. Any release path calls this in its own transaction.
    Answers the ids of the bookings offered."""
    return await offer_next(session, node=node, facility_id=facility_id, start=start, held_until=held_until, now=now)


async def offer_next(session: AsyncSession, *, node: str, facility_id: str, start: datetime, held_until: datetime,
                     now: datetime) -> list[str]:
    """Offer the freed time to the waiting entries that overlap it, in order of joining, each whose own time
    (with the buffer) is free now; one freed afternoon may satisfy a morning entry and an afternoon entry."""
    q = waitlist.c
    candidates = (await session.execute(select(waitlist).where(
        q.facility_id == facility_id, q.state == "waiting", q.starts_at < held_until.astimezone(UTC),
        q.ends_at > (start - MAX_BUFFER).astimezone(UTC), q.starts_at > now).order_by(q.seq))).all()
    if not candidates:
        return []
    f = facilities.view(await facilities.row_of(session, facility_id))
    buffer = timedelta(minutes=f.buffer_minutes)
    offered: list[str] = []
    for entry in candidates:
        s, e = aware(entry.starts_at), aware(entry.ends_at)
        if not (s < held_until and start < e + buffer):
            continue
        bid = await _offer(session, node=node, f=f, entry=entry, now=now)
        if bid is not None:
            offered.append(bid)
    return offered


async def _offer(session: AsyncSession, *, node: str, f: c.Facility, entry: Any, now: datetime) -> str | None:
    start, end = _jst(entry.starts_at), _jst(entry.ends_at)
    held_until = end + timedelta(minutes=f.buffer_minutes)
    try:
        fee = bookings.fee_and_layout(f, start, end, entry.user_class)
    except ServiceError:  # the facility's layout changed since: the entry cannot be offered any more
        await session.execute(update(waitlist).where(waitlist.c.seq == entry.seq).values(
            state="expired", updated_at=now))
        return None
    if db.dialect_of(session) == "postgresql":
        await bookings.advisory_lock(session, f"bookings.day:{f.id}:{start.date()}")
    if await availability.held(session, f.id, start, held_until):
        return None
    expires = min(now + timedelta(hours=f.rules.offer_hours), start)
    bid = new_id()
    try:
        async with session.begin_nested():
            await session.execute(insert(bookings_table).values(
                id=bid, facility_id=f.id, starts_at=start.astimezone(UTC), ends_at=end.astimezone(UTC),
                held_until=held_until.astimezone(UTC), state="offered", purpose=entry.purpose,
                user_class=entry.user_class, fee=fee, booker=entry.person, booker_user_id=entry.person_user_id,
                booker_name=entry.person_name, booked_by=entry.booked_by, origin="waitlist",
                month=start.strftime("%Y-%m"), created_at=now, offer_expires_at=expires.astimezone(UTC)))
    except IntegrityError as exc:
        if sqlstate(exc) == bookings.EXCLUSION_VIOLATION:  # held by a row written past the day's lock
            return None
        raise
    await session.execute(update(waitlist).where(waitlist.c.seq == entry.seq).values(
        state="offered", booking_id=bid, updated_at=now))
    await announce(session, bus, node=node, at=now, event=w.SlotOffered(
        entry_id=entry.id, booking_id=bid, facility_id=f.id, start=start, end=end, person=entry.person,
        expires_at=expires.astimezone(JST), at=now))
    return bid


async def _open_offer(session: AsyncSession, data: w.OfferAction) -> Any:
    row = (await session.execute(select(bookings_table).where(bookings_table.c.id == data.booking_id)
                                 .with_for_update())).first()
    if row is None or not _may(data.actor, row.booker):
        raise c.BOOKING_NOT_FOUND(f"no booking {data.booking_id}")
    if row.state != "offered":
        raise w.OFFER_NOT_OPEN(f"the booking is {row.state}, not an open offer")
    return row


async def _settle_entry(session: AsyncSession, booking_id: str, state: str, now: datetime) -> Any:
    await session.execute(update(waitlist).where(waitlist.c.booking_id == booking_id).values(
        state=state, updated_at=now))
    return (await session.execute(select(waitlist).where(waitlist.c.booking_id == booking_id))).first()


async def accept(session: AsyncSession, *, node: str, data: w.OfferAction, now: datetime) -> c.Booking:
    row = await _open_offer(session, data)
    if row.offer_expires_at is not None and aware(row.offer_expires_at) <= now:
        raise w.OFFER_EXPIRED(f"the offer ended at {_jst(row.offer_expires_at).isoformat()}")
    f = facilities.view(await facilities.row_of(session, row.facility_id))
    state = "requested" if f.rules.needs_approval else "confirmed"
    await session.execute(update(bookings_table).where(bookings_table.c.id == row.id).values(
        state=state, confirmed_at=now if state == "confirmed" else None))
    await _settle_entry(session, row.id, "booked", now)
    if state == "confirmed":
        await announce(session, bus, node=node, at=now, event=c.BookingConfirmed(
            booking_id=row.id, facility_id=row.facility_id, start=_jst(row.starts_at), end=_jst(row.ends_at),
            booker=row.booker, at_counter=row.booked_by is not None, fee=row.fee, at=now))
    return await bookings.get(session, data=c.BookingAction(actor=data.actor, booking_id=row.id))


async def decline(session: AsyncSession, *, node: str, data: w.OfferAction, now: datetime) -> c.Booking:
    row = await _open_offer(session, data)
    own = data.actor is not None and data.actor.global_handle == row.booker
    await session.execute(update(bookings_table).where(bookings_table.c.id == row.id).values(
        state="cancelled", cancelled_at=now, cancelled_by=bookings.who(data.actor),
        cancel_reason="booker" if own else "staff"))
    await _settle_entry(session, row.id, "declined", now)
    await announce(session, bus, node=node, at=now, event=c.BookingCancelled(
        booking_id=row.id, facility_id=row.facility_id, start=_jst(row.starts_at), end=_jst(row.ends_at),
        booker=row.booker, by="booker" if own else "staff", at=now))
    await released(session, node=node, facility_id=row.facility_id, start=aware(row.starts_at),
                   held_until=aware(row.held_until), now=now)
    return await bookings.get(session, data=c.BookingAction(actor=data.actor, booking_id=row.id))


async def expire_offers(session: AsyncSession, *, node: str, now: datetime) -> int:
    """The periodic job: every offer past its deadline is cancelled (`offer_expired`) and its slot offered to the
    next in line. Run twice, it does the work once (the second run finds no offer past its deadline)."""
    b = bookings_table.c
    stmt = select(bookings_table).where(b.state == "offered", b.offer_expires_at <= now).order_by(b.offer_expires_at)
    rows = (await session.execute(stmt.with_for_update(skip_locked=True))).all()
    for row in rows:
        await session.execute(update(bookings_table).where(b.id == row.id, b.state == "offered").values(
            state="cancelled", cancelled_at=now, cancelled_by=SYSTEM, cancel_reason="offer_expired"))
        entry = await _settle_entry(session, row.id, "expired", now)
        await announce(session, bus, node=node, at=now, event=w.OfferExpired(
            entry_id=entry.id if entry is not None else "", booking_id=row.id, facility_id=row.facility_id,
            start=_jst(row.starts_at), person=row.booker or "", at=now))
        await released(session, node=node, facility_id=row.facility_id, start=aware(row.starts_at),
                       held_until=aware(row.held_until), now=now)
    return len(rows)
