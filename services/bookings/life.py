"""A booking's life after it is made: staff approve or reject requests, fees are due by a deadline and paid with local
currency or a coupon (through the points service's ledger) or at the counter, unpaid bookings cancel themselves at
their deadline, and a paid booking cancelled by its booker is refunded less the facility's cancellation fee.
No NATS and no commits here: the points service is reached through `Points` (services/bookings/points.py gives the
real one over the bus), and the adapter owns each transaction.

Applied once, whatever crashes where:
- a payment is charged under the key `booking:<id>` (the points ledger's idempotency key): a retry answers the first
  charge and moves nothing again. Before charging, the booking is marked `payment_ref = "pending"` (cleared again
  when the charge is refused); the deadline job asks the points service about a pending booking before it cancels
  it, and records the payment instead when the charge went through but its answer was lost;
- the deadline job cancels by a conditional update (`state = 'confirmed' AND paid_at IS NULL AND fee_due_at <= now`):
  of two instances running it at once, one changes the row and announces, the other changes nothing;
- a refund is due in the row (`refund_due`, written with the cancellation) and done by the refund job under the key
  `booking:<id>:refund`, then marked (`refunded_at`): a job that dies in between refunds again as a duplicate.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import bookings as bk
from services.bookings import facilities, waitlist
from services.bookings.models import bookings, bus
from towntip.kernel import db, errors
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_life as lc
from towntip.kernel.contracts import payments as pc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)
PENDING = "pending"  # payment_ref while a charge is under way
BATCH = 200  # bookings one round of a job handles at most (the next round takes the rest)


class Points(Protocol):
    """The points service's payments (svc.<node>.points.payments.*)."""

    async def charge(self, q: pc.ChargeIn) -> pc.Charge: ...

    async def refund(self, q: pc.RefundIn) -> pc.Refund: ...

    async def get(self, q: pc.ChargeQuery) -> pc.ChargeState: ...


def pay_key(booking_id: str) -> str:
    return f"booking:{booking_id}"


def due_at(f: c.Facility, start: datetime, now: datetime) -> datetime:
    """When a fee confirmed now must be paid: `pay_within_days` from now, never later than the end of the day before
    the start (midnight, JST); a booking confirmed later than that (for today or tomorrow) pays before it starts."""
    eve = datetime.combine(start.astimezone(JST).date(), time(0), tzinfo=JST)
    due = min(now + timedelta(days=f.rules.pay_within_days), eve)
    return (due if due > now else start).astimezone(UTC)


def cancellation_fee(f: c.Facility, *, fee: int, start: datetime, now: datetime) -> int:
    """What the booker's cancellation keeps of a paid fee: the percent of the tier with the fewest `days_before` that
    still covers the notice, counted in calendar days in JST (the day before = 1, the day itself = 0); none when
    the notice is longer than every tier."""
    notice = (start.astimezone(JST).date() - now.astimezone(JST).date()).days
    for tier in sorted(f.rules.cancel_fees, key=lambda t: t.days_before):
        if notice <= tier.days_before:
            return fee * tier.percent // 100
    return 0


async def cancel_terms(session: AsyncSession, row: Any, *, own: bool, now: datetime) -> dict[str, Any]:
    """The columns a cancellation sets besides its state: the fee kept (the booker's cancellation of a paid booking
    only; staff cancel for the municipality's reasons and keep nothing) and the refund due through the points
    service (a fee paid in cash is given back at the counter)."""
    if row.paid_at is None:
        return {}
    f = facilities.view(await facilities.row_of(session, row.facility_id))
    kept = cancellation_fee(f, fee=row.fee, start=aware(row.starts_at), now=now) if own else 0
    terms: dict[str, Any] = {"cancellation_fee": kept}
    if row.paid_with in ("currency", "coupon") and row.fee > kept:
        terms["refund_due"] = row.fee - kept
    return terms


def _staff(actor: Actor | None) -> None:
    if not bk.is_staff(actor):
        raise lc.DECIDE_STAFF_ONLY("only staff approve or reject requests")


# ---- the approval queue -----------------------------------------------------------------------------------------

async def approvals(session: AsyncSession, *, data: lc.ApprovalsQuery) -> c.BookingList:
    """Requests waiting for staff, oldest first (by facility and day when asked)."""
    _staff(data.actor)
    b = bookings.c
    stmt = select(bookings).where(b.state == "requested")
    if data.facility_id is not None:
        stmt = stmt.where(b.facility_id == data.facility_id)
    if data.date is not None:
        day = datetime.combine(data.date, time(0), tzinfo=JST)
        stmt = stmt.where(b.starts_at >= day.astimezone(UTC), b.starts_at < (day + timedelta(days=1)).astimezone(UTC))
    rows = (await session.execute(stmt.order_by(b.created_at, b.id).limit(data.limit))).all()
    return c.BookingList(bookings=[bk.view(r) for r in rows])


async def _requested(session: AsyncSession, booking_id: str, now: datetime) -> Any:
    row = await bk.get_row(session, booking_id, lock=True)
    if row.state != "requested":
        raise lc.NOT_REQUESTED(f"the booking is {row.state}, not waiting for approval")
    if aware(row.starts_at) <= now:
        raise c.BOOKING_STARTED("the booking's time has begun: it can no longer be approved or rejected")
    return row


async def approve(session: AsyncSession, *, node: str, data: lc.Decision, now: datetime) -> c.Booking:
    """A request becomes confirmed (it held its slot already: no other booking can overlap it); a fee gets its
    deadline from now."""
    _staff(data.actor)
    row = await _requested(session, data.booking_id, now)
    f = facilities.view(await facilities.row_of(session, row.facility_id))
    start, end = aware(row.starts_at), aware(row.ends_at)
    due = due_at(f, start, now) if row.fee > 0 else None
    await session.execute(update(bookings).where(bookings.c.id == row.id, bookings.c.state == "requested").values(
        state="confirmed", confirmed_at=now, decided_by=bk.who(data.actor), decision_note=data.note or None,
        fee_due_at=due))
    await announce(session, bus, node=node, at=now, event=c.BookingConfirmed(
        booking_id=row.id, facility_id=row.facility_id, start=start.astimezone(JST), end=end.astimezone(JST),
        booker=row.booker, at_counter=row.booked_by is not None, fee=row.fee, at=now))
    return await bk.get_row(session, row.id)


async def reject(session: AsyncSession, *, node: str, data: lc.Rejection, now: datetime) -> c.Booking:
    """A request is declined with a reason; its slot is free again."""
    _staff(data.actor)
    row = await _requested(session, data.booking_id, now)
    await session.execute(update(bookings).where(bookings.c.id == row.id, bookings.c.state == "requested").values(
        state="rejected", decided_by=bk.who(data.actor), decision_note=data.reason))
    await announce(session, bus, node=node, at=now, event=lc.BookingRejected(
        booking_id=row.id, facility_id=row.facility_id, start=aware(row.starts_at).astimezone(JST),
        end=aware(row.ends_at).astimezone(JST), booker=row.booker, reason=data.reason, at=now))
    await waitlist.released(session, node=node, facility_id=row.facility_id, start=aware(row.starts_at),
                            held_until=aware(row.held_until), now=now)  # the first in line is offered the slot
    return await bk.get_row(session, row.id)


# ---- paying -----------------------------------------------------------------------------------------------------

def payable(row: Any, now: datetime) -> None:
    """The refusal, if the booking's fee cannot be paid now."""
    if row.state != "confirmed":
        raise lc.NOT_PAYABLE(f"the booking is {row.state}: only a confirmed booking's fee is paid")
    if row.fee <= 0:
        raise lc.NO_FEE("the booking has no fee")
    if row.paid_at is not None:
        raise lc.ALREADY_PAID(f"paid already ({row.paid_with})")
    if row.fee_due_at is not None and aware(row.fee_due_at) <= now:
        raise lc.DEADLINE_PASSED(f"the fee was due by {aware(row.fee_due_at).astimezone(JST):%Y-%m-%d %H:%M} JST")


async def _paid(session: AsyncSession, row: Any, *, node: str, now: datetime, paid_with: str, ref: str | None,
                person: str | None = None) -> c.Booking:
    values: dict[str, Any] = {"paid_at": now, "paid_with": paid_with, "payment_ref": ref}
    if person is not None and row.booker_user_id is None:
        values["booker_user_id"] = person  # a counter booking for a person: their account paid, and is refunded
    await session.execute(update(bookings).where(bookings.c.id == row.id).values(**values))
    await announce(session, bus, node=node, at=now, event=lc.BookingPaid(
        booking_id=row.id, facility_id=row.facility_id, booker=row.booker, fee=row.fee, paid_with=paid_with,
        payment_ref=ref, at=now))
    return await bk.get_row(session, row.id)


async def pay(*, uow: UnitOfWork, node: str, data: lc.PayIn, points: Points) -> c.Booking:
    """The booker pays the fee with local currency or a coupon: the booking is marked pending, the points service
    charges under the key `booking:<id>`, and the payment is recorded (or the mark cleared when refused)."""
    actor = data.actor

    async def begin(session: AsyncSession, now: datetime) -> Any:
        row = await bk.get_row(session, data.booking_id, lock=True)
        if row.booker != actor.global_handle:
            raise c.BOOKING_NOT_YOURS("only the booker pays online; staff record a payment at the counter")
        payable(row, now)
        coupon_types = facilities.view(await facilities.row_of(session, row.facility_id)).rules.coupon_types
        if row.payment_ref != PENDING:
            await session.execute(update(bookings).where(bookings.c.id == row.id).values(payment_ref=PENDING))
        return row, coupon_types

    row, coupon_types = await uow.write(begin)
    try:
        charge = await points.charge(pc.ChargeIn(
            key=pay_key(row.id), person=actor.user_id, amount=row.fee, method=data.method, coupon_id=data.coupon_id,
            coupon_types=coupon_types, memo=f"facility fee {row.facility_id}"))
    except errors.ServiceError as exc:
        await uow.write(lambda s, now: _clear_pending(s, row.id))
        if exc.error_code == pc.PAYMENT_INSUFFICIENT.code:
            raise lc.NOT_ENOUGH_CURRENCY(exc.reason) from None
        if exc.error_code == pc.PAYMENT_COUPON_NOT_USABLE.code:
            raise lc.COUPON_NOT_USABLE(exc.reason) from None
        if exc.error_code == pc.PAYMENT_KEY_REUSED.code:
            raise lc.ALREADY_PAID("this booking was charged another way already") from None
        raise

    async def record(session: AsyncSession, now: datetime) -> c.Booking | None:
        current = await bk.get_row(session, row.id, lock=True)
        if current.paid_at is not None and current.payment_ref == charge.journal_id:
            return bk.view(current)  # a retry of a payment recorded before
        if current.state != "confirmed" or current.paid_at is not None:
            return None  # cancelled (the deadline) or paid at the counter meanwhile: given back below
        return await _paid(session, current, node=node, now=now, paid_with=data.method, ref=charge.journal_id,
                           person=actor.user_id)

    done = await uow.write(record)
    if done is not None:
        return done
    await points.refund(pc.RefundIn(key=pay_key(row.id), person=actor.user_id, amount=row.fee,
                                    memo="charged after the booking was cancelled or paid otherwise"))
    current = await uow.read(lambda s: bk.get_row(s, row.id))
    if current.paid_at is not None:
        raise lc.ALREADY_PAID("paid at the counter meanwhile: the charge was refunded")
    raise lc.DEADLINE_PASSED("the booking was cancelled meanwhile: the charge was refunded")


async def _clear_pending(session: AsyncSession, booking_id: str) -> None:
    await session.execute(update(bookings).where(bookings.c.id == booking_id, bookings.c.payment_ref == PENDING,
                                                 bookings.c.paid_at.is_(None)).values(payment_ref=None))


async def paid_at_counter(session: AsyncSession, *, node: str, data: lc.CounterPayment, now: datetime) -> c.Booking:
    """Staff record the fee paid in cash at the counter (`paid_with = "counter"`, the receipt number as the ref)."""
    if not bk.is_staff(data.actor):
        raise lc.COUNTER_STAFF_ONLY("only staff record a payment at the counter")
    row = await bk.get_row(session, data.booking_id, lock=True)
    payable(row, now)
    return await _paid(session, row, node=node, now=now, paid_with="counter", ref=data.receipt or None)


# ---- the periodic jobs (services/bookings/sweeper.py runs them) -------------------------------------------------

async def _lapse(session: AsyncSession, booking_id: str, *, node: str, now: datetime) -> int:
    """Cancel one booking unpaid at its deadline, if it still is (a conditional update: once, whoever runs it)."""
    b = bookings.c
    done = await session.execute(update(bookings).where(
        b.id == booking_id, b.state == "confirmed", b.paid_at.is_(None), b.fee_due_at <= now).values(
        state="cancelled", cancelled_at=now, cancelled_by="service", cancel_reason="unpaid"))
    if db.rowcount(done) != 1:
        return 0
    row = await bk.get_row(session, booking_id, lock=False)
    await announce(session, bus, node=node, at=now, event=c.BookingCancelled(
        booking_id=row.id, facility_id=row.facility_id, start=row.start, end=row.end, booker=row.booker,
        by="service", reason="unpaid", at=now))
    held_until = (await session.execute(select(b.held_until).where(b.id == booking_id))).scalar_one()
    await waitlist.released(session, node=node, facility_id=row.facility_id, start=row.start,
                            held_until=aware(held_until), now=now)  # the first in line is offered the slot
    return 1


async def _lapse_at(session: AsyncSession, _: datetime, *, booking_id: str, node: str, when: datetime) -> int:
    return await _lapse(session, booking_id, node=node, now=when)


async def _settle_pending(uow: UnitOfWork, points: Points, booking_id: str, *, node: str) -> bool:
    """A booking marked pending at its deadline: True when its charge went through (recorded now as paid)."""
    state = await points.get(pc.ChargeQuery(key=pay_key(booking_id)))
    if not state.charged or state.refunded:
        return False

    async def record(session: AsyncSession, now: datetime) -> bool:
        row = await bk.get_row(session, booking_id, lock=True)
        if row.state == "confirmed" and row.paid_at is None:
            await _paid(session, row, node=node, now=now, paid_with=state.method or "currency", ref=state.journal_id)
        return True

    return await uow.write(record)


async def cancel_unpaid(*, uow: UnitOfWork, node: str, points: Points, now: datetime) -> int:
    """Cancel the bookings whose fee is unpaid at its deadline (`cancel_reason = "unpaid"`); answers how many."""
    b = bookings.c
    now = now.astimezone(UTC)  # compared in SQL: SQLite compares the stored UTC text

    async def overdue(session: AsyncSession) -> list[Any]:
        return list((await session.execute(select(b.id, b.payment_ref).where(
            b.state == "confirmed", b.paid_at.is_(None), b.fee > 0, b.fee_due_at <= now)
            .order_by(b.fee_due_at).limit(BATCH))).all())

    cancelled = 0
    for found in await uow.read(overdue):
        if found.payment_ref == PENDING:
            try:
                if await _settle_pending(uow, points, found.id, node=node):
                    continue
            except errors.Unavailable:
                log.warning("points service unavailable: booking %s stays until the next round", found.id)
                continue
        cancelled += await uow.write(functools.partial(_lapse_at, booking_id=found.id, node=node, when=now))
    return cancelled


async def refund_cancelled(*, uow: UnitOfWork, node: str, points: Points, now: datetime) -> int:
    """Refund the cancelled paid bookings whose refund is due (the points service under `booking:<id>:refund`);
    answers how many were refunded."""
    b = bookings.c
    now = now.astimezone(UTC)

    async def due(session: AsyncSession) -> list[Any]:
        return list((await session.execute(select(b.id, b.booker, b.booker_user_id, b.refund_due, b.cancellation_fee)
                                           .where(b.refund_due > 0, b.refunded_at.is_(None))
                                           .order_by(b.cancelled_at).limit(BATCH))).all())

    refunded = 0
    for row in await uow.read(due):
        if row.booker_user_id is None:
            log.error("booking %s: a refund is due but no account is known", row.id)
            continue
        await points.refund(pc.RefundIn(key=pay_key(row.id), person=row.booker_user_id, amount=row.refund_due,
                                        memo="facility fee refunded on cancellation"))

        async def mark(session: AsyncSession, at: datetime, row: Any = row) -> int:
            done = await session.execute(update(bookings).where(bookings.c.id == row.id,
                                                                bookings.c.refunded_at.is_(None)).values(refunded_at=now))
            if db.rowcount(done) != 1:
                return 0
            await announce(session, bus, node=node, at=now, event=lc.BookingRefunded(
                booking_id=row.id, booker=row.booker, amount=row.refund_due, cancellation_fee=row.cancellation_fee,
                at=now))
            return 1

        refunded += await uow.write(mark)
    return refunded
