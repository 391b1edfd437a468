"""Bookings (予約): made by a person for themself or by staff at the counter, checked against the facility's calendar,
layout and rules, and never overlapping another booking that holds the slot; cancelled by the booker or staff.
No NATS and no commits here: the adapter owns the transaction.

The no-double-booking guarantee: the overlap check below runs inside the writing transaction. On SQLite that
transaction holds the database's write lock from its BEGIN (IMMEDIATE, towntip.kernel.db), so check and insert are
one step for every process sharing the file. On PostgreSQL the attempts at one facility's day queue on an advisory
lock before the check, and whatever passes the check anyway (a row written another way, a later change that forgets
the lock) meets the exclusion constraint `ex_bookings_no_overlap` (migration 0001): the first insert commits, the
other fails with SQLSTATE 23P01, answered as the same refusal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import admission, availability, facilities, life, seen
from services.bookings.models import bookings, bus
from towntip.kernel import db
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware
from towntip.kernel.uow import UnitOfWork, sqlstate

EXCLUSION_VIOLATION = "23P01"
TAKEN_REASON = "that time is booked already"


async def advisory_lock(session: AsyncSession, key: str) -> None:
    """PostgreSQL: a lock held until the transaction ends (taken in one order: the person's, then the day's)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def is_staff(actor: Actor | None) -> bool:
    """Staff, or the node's operator (no actor: the admin token, the operator's tooling)."""
    return actor is None or actor.has("staff", "secretariat")


def who(actor: Actor | None) -> str:
    return actor.global_handle if actor is not None else c.OPERATOR


def view(row: Any) -> c.Booking:
    return c.Booking(
        id=row.id, facility_id=row.facility_id, start=aware(row.starts_at).astimezone(JST),
        end=aware(row.ends_at).astimezone(JST), state=row.state, purpose=row.purpose, user_class=row.user_class,
        fee=row.fee, booker=row.booker, booker_name=row.booker_name, booked_by=row.booked_by,
        created_at=aware(row.created_at), cancelled_at=aware(row.cancelled_at), origin=row.origin,
        group_id=row.group_id, series_id=row.series_id, fee_due_at=jst(row.fee_due_at), paid_at=aware(row.paid_at),
        paid_with=row.paid_with, cancel_reason=row.cancel_reason, cancellation_fee=row.cancellation_fee,
        checked_in_at=aware(row.checked_in_at), offer_expires_at=jst(row.offer_expires_at),
        decided_by=row.decided_by, decision_note=row.decision_note, payment_ref=row.payment_ref,
        refund_due=row.refund_due, refunded_at=aware(row.refunded_at))


def jst(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value).astimezone(JST)


def local_id(facility_id: str, node: str) -> str:
    """The facility's id on this node: `id` or `id@<this node>`; another node's facility is booked there."""
    fid, _, at = facility_id.partition("@")
    if at and at != node:
        raise c.BOOKING_UNKNOWN_NODE(f"{facility_id!r} is a facility of node {at!r}: book it there")
    return fid


def fee_and_layout(f: c.Facility, start: datetime, end: datetime, user_class: c.UserClass) -> int:
    """The fee of [start, end) when both are on the layout's slots of that day; else the refusal."""
    slots = availability.spans(f, start.date())
    starts = [i for i, s in enumerate(slots) if s.start == start]
    ends = [i for i, s in enumerate(slots) if s.end == end]
    if not starts or not ends or ends[0] < starts[0]:
        if isinstance(f.layout, c.Blocks):
            names = ", ".join(f"{b.name_en} {b.start:%H:%M}-{b.end:%H:%M}" for b in f.layout.blocks)
            why = f"book whole blocks ({names})"
        else:
            why = f"start and end on the {f.layout.step_minutes}-minute grid from the opening time"
        raise c.BOOKING_OFF_LAYOUT(f"{start:%H:%M}-{end:%H:%M} is not on the facility's slots: {why}")
    return sum(s.fees.get(user_class, 0) for s in slots[starts[0]:ends[0] + 1])


def check_time(f: c.Facility, start: datetime, end: datetime, now: datetime) -> None:
    """Every rule about the time of day and the calendar, in the order a clerk would explain them."""
    if not start < end or end.date() != start.date():
        raise c.BOOKING_BAD_RANGE("the end must be after the start, on the same day")
    if start < now:
        raise c.BOOKING_PAST(f"{start.isoformat()} has passed")
    reason = availability.closed_reason(f, start.date())
    if reason is not None:
        raise c.BOOKING_CLOSED_DAY(f"{start.date()}: {reason}")
    hours = f.hours[availability.weekday(start.date())]
    if start.time() < hours.open or end.time() > hours.close:
        raise c.BOOKING_OUTSIDE_HOURS(f"open {hours.open:%H:%M}-{hours.close:%H:%M} that day")
    if f.rules.max_minutes is not None and end - start > timedelta(minutes=f.rules.max_minutes):
        raise c.BOOKING_TOO_LONG(f"at most {f.rules.max_minutes} minutes in one booking")
    earliest, last_day = availability.bookable_window(f, now)
    if start < earliest:
        raise c.BOOKING_NOTICE(f"book at least {f.rules.min_notice_minutes} minutes ahead")
    if start.date() > last_day:
        raise c.BOOKING_TOO_FAR(f"bookings open {f.rules.max_days_ahead} days ahead (until {last_day})")


async def check_quota(session: AsyncSession, f: c.Facility, month: str, *, booker: str | None, group: Any) -> None:
    """The facility's monthly quota: a group's bookings count per group; a person's own bookings (not for a group)
    per person."""
    if (booker is None and group is None) or f.rules.max_per_month is None:
        return
    b = bookings.c
    key = f"group:{group.id}" if group is not None else booker
    if db.dialect_of(session) == "postgresql":  # one person's bookings are counted one transaction at a time
        await advisory_lock(session, f"bookings.quota:{key}")
    whose = b.group_id == group.id if group is not None else (b.booker == booker) & b.group_id.is_(None)
    mine = (await session.execute(select(func.count()).select_from(bookings).where(
        whose, b.month == month, b.facility_id == f.id, b.state.in_(c.HOLDING_STATES)))).scalar_one()
    if mine >= f.rules.max_per_month:
        per = "per group" if group is not None else "per person"
        raise c.BOOKING_QUOTA(f"at most {f.rules.max_per_month} bookings of {f.id} in {month} {per}")


async def create(session: AsyncSession, *, node: str, data: c.BookingCreate, now: datetime,
                 open_to_other_nodes: bool = False) -> c.Booking:
    actor = data.actor
    fid = local_id(data.facility_id, node)
    if not (2 <= len(fid) <= 48):
        raise c.FACILITY_NOT_FOUND(f"no facility {fid!r} on this node")
    row = await facilities.row_of(session, fid)
    f = facilities.view(row)
    booker: str | None
    user_id: str | None = None
    phone: str | None = None
    booked_by: str | None = None
    if data.on_behalf_of is None and actor is None:
        raise c.BOOKING_BEHALF_REQUIRED("the admin token is no person: say on_behalf_of whom")
    if data.on_behalf_of is not None:
        if not is_staff(actor):
            raise c.BOOKING_STAFF_ONLY("only staff book on behalf of someone else")
        booked_by = who(actor)
        if isinstance(data.on_behalf_of, c.Walkin):
            booker, name, phone = None, data.on_behalf_of.name, data.on_behalf_of.phone
        else:
            booker = name = data.on_behalf_of
    else:
        assert actor is not None
        booker, user_id, name = actor.global_handle, actor.user_id, actor.display_name
    admission.check_other_node(booker=booker, node=node, facility=f, node_open=open_to_other_nodes)
    group = await admission.group_for(session, group_id=data.group_id, actor=actor)
    user_class: c.UserClass = "city_group" if group is not None else data.user_class
    start, end = data.start.astimezone(JST), data.end.astimezone(JST)
    check_time(f, start, end, now)
    await admission.check_not_in_lottery(session, facility_id=fid, start=start)
    fee = fee_and_layout(f, start, end, user_class)
    month = start.strftime("%Y-%m")
    await check_quota(session, f, month, booker=booker, group=group)
    held_until = end + timedelta(minutes=f.buffer_minutes)
    if db.dialect_of(session) == "postgresql":
        # Attempts at one facility's day queue up here, so that the check below sees the one committed before:
        # without it they all pass the check and wait on each other inside the exclusion constraint (deadlocks).
        await advisory_lock(session, f"bookings.day:{fid}:{start.date()}")
    if await availability.held(session, fid, start, held_until):
        raise c.BOOKING_TAKEN(TAKEN_REASON)
    state = "requested" if f.rules.needs_approval else "confirmed"
    bid = new_id()
    try:
        await session.execute(insert(bookings).values(
            id=bid, facility_id=fid, starts_at=start.astimezone(UTC), ends_at=end.astimezone(UTC),
            held_until=held_until.astimezone(UTC), state=state, purpose=data.purpose, user_class=user_class,
            fee=fee, booker=booker, booker_user_id=user_id, booker_name=name, contact_phone=phone,
            booked_by=booked_by, origin="counter" if booked_by is not None else "direct", month=month,
            group_id=None if group is None else group.id,
            created_at=now, confirmed_at=now if state == "confirmed" else None,
            fee_due_at=life.due_at(f, start, now) if state == "confirmed" and fee > 0 else None))
    except IntegrityError as exc:
        if sqlstate(exc) == EXCLUSION_VIOLATION:  # PostgreSQL: a concurrent booking committed first
            raise c.BOOKING_TAKEN(TAKEN_REASON) from None
        raise
    if state == "confirmed":
        await announce(session, bus, node=node, at=now, event=c.BookingConfirmed(
            booking_id=bid, facility_id=fid, start=start, end=end, booker=booker, at_counter=booked_by is not None,
            fee=fee, at=now))
    return await _get(session, bid)


async def attempt(uow: UnitOfWork, *, node: str, data: c.BookingCreate, open_to_other_nodes: bool = False
                  ) -> c.Booking:
    """`bookings.create` as the endpoint runs it. A slot seen held a moment ago (services/bookings/seen.py) is refused
    from what was seen, without queueing for the writer: under a race for a popular slot that is most attempts, and
    on PostgreSQL they would otherwise wait in turn on the day's advisory lock only to be refused. The rest wait for
    this process's writer of the facility's day and look again, so that those who lost a race to the attempt before
    them are refused from one shared read. Everything else is decided by `create` in the write transaction, which
    checks again under its lock (another instance of the service may have booked the slot)."""
    async def reading(query: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        async def run(session: AsyncSession) -> Any:
            # Nothing to keep consistent between the reads beyond what each statement sees: no transaction (on
            # PostgreSQL that spares a BEGIN and a ROLLBACK round trip per read; on SQLite, the write lock).
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return await query(session)
        return await uow.read(run)

    kept = seen.of(uow.sessions.kw["bind"])

    async def taken() -> bool:
        return await seen_taken(reading, node=node, data=data, now=uow.clock(), kept=kept,
                                open_to_other_nodes=open_to_other_nodes)

    if await taken():
        raise c.BOOKING_TAKEN(TAKEN_REASON)
    async with kept.writer(local_id(data.facility_id, node), data.start.astimezone(JST).date()):
        if await taken():  # booked by the attempt this one waited for
            raise c.BOOKING_TAKEN(TAKEN_REASON)
        return await uow.write(lambda session, now: create(session, node=node, data=data, now=now,
                                                           open_to_other_nodes=open_to_other_nodes))


async def seen_taken(read: seen.Reader, *, node: str, data: c.BookingCreate, now: datetime,
                     kept: seen.Seen, open_to_other_nodes: bool = False) -> bool:
    """True when a booking held the asked time a moment ago (services/bookings/seen.py: kept reads at most half a
    second old). What `create` refuses before it looks at the slot is refused the same way here (who may book for
    whom is left to `create`; the time's rules and the layout raise their own refusals); a facility not found is
    left to `create` to refuse."""
    if data.on_behalf_of is None and data.actor is None or data.on_behalf_of is not None and not is_staff(data.actor):
        return False  # the admin token for no one, or someone not staff for someone else: `create` refuses
    fid = local_id(data.facility_id, node)
    f = await kept.facility(read, fid)
    if f is None:
        return False
    booker = data.actor.global_handle if data.on_behalf_of is None and data.actor is not None else (
        data.on_behalf_of if isinstance(data.on_behalf_of, str) else None)
    admission.check_other_node(booker=booker, node=node, facility=f, node_open=open_to_other_nodes)
    start, end = data.start.astimezone(JST), data.end.astimezone(JST)
    check_time(f, start, end, now)
    fee_and_layout(f, start, end, data.user_class)
    return await kept.held(read, fid, start, end + timedelta(minutes=f.buffer_minutes))


async def _get(session: AsyncSession, booking_id: str, *, lock: bool = False) -> Any:
    stmt = select(bookings).where(bookings.c.id == booking_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise c.BOOKING_NOT_FOUND(f"no booking {booking_id}")
    return row if lock else view(row)


get_row = _get  # for services/bookings/life.py


async def cancel(session: AsyncSession, *, node: str, data: c.BookingAction, now: datetime) -> c.Booking:
    row = await _get(session, data.booking_id, lock=True)
    own = data.actor is not None and row.booker == data.actor.global_handle
    if not own and not is_staff(data.actor):
        raise c.BOOKING_NOT_YOURS("only its booker or staff cancel a booking")
    if row.state == "cancelled":
        raise c.BOOKING_CANCELLED("the booking is cancelled already")
    if aware(row.starts_at) <= now:
        raise c.BOOKING_STARTED("the booking has started: it can no longer be cancelled")
    terms = await life.cancel_terms(session, row, own=own, now=now)  # the fee kept and the refund due, if paid
    await session.execute(update(bookings).where(bookings.c.id == row.id).values(
        state="cancelled", cancelled_at=now, cancelled_by=who(data.actor),
        cancel_reason="booker" if own else "staff", **terms))
    await announce(session, bus, node=node, at=now, event=c.BookingCancelled(
        booking_id=row.id, facility_id=row.facility_id, start=aware(row.starts_at).astimezone(JST),
        end=aware(row.ends_at).astimezone(JST), booker=row.booker, by="booker" if own else "staff", at=now,
        reason="booker" if own else "staff", cancellation_fee=terms.get("cancellation_fee", 0)))
    if row.state in c.HOLDING_STATES:  # the freed time goes to the first in line, in this same transaction
        from services.bookings import waitlist

        await waitlist.released(session, node=node, facility_id=row.facility_id, start=aware(row.starts_at),
                                held_until=aware(row.held_until), now=now)
    return await _get(session, row.id)


async def get(session: AsyncSession, *, data: c.BookingAction) -> c.Booking:
    found: c.Booking = await _get(session, data.booking_id)
    if not is_staff(data.actor) and (data.actor is None or found.booker != data.actor.global_handle):
        raise c.BOOKING_NOT_FOUND(f"no booking {data.booking_id}")
    return found


async def mine(session: AsyncSession, *, q: c.MineQuery) -> c.BookingList:
    stmt = select(bookings).where(bookings.c.booker == q.actor.global_handle)
    if not q.include_cancelled:
        stmt = stmt.where(bookings.c.state != "cancelled")
    rows = (await session.execute(stmt.order_by(bookings.c.starts_at.desc()).limit(q.limit))).all()
    return c.BookingList(bookings=[view(r) for r in rows])
