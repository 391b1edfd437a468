"""Facility fees paid through the ledger for the bookings service: charged to a person's local currency or settled
with a coupon they bought, refunded in local currency. No NATS, no commits here.

Applied once: the ledger entry's idempotency key is the caller's (`booking:<id>`; the refund's `booking:<id>:refund`),
so a retry after a crash (the answer lost on the way back) finds the entry and answers `duplicate` without moving
anything again; a coupon is marked used by the same key in the same transaction as the entry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.coupons.models import coupons
from services.points.coupons.service import CURRENCY, REDEMPTION, person_account
from services.points.ledger import service as ledger
from services.points.ledger.models import journal
from towntip.kernel import db
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.contracts import payments as pc


def _entry(data: pc.ChargeIn) -> ledger.Entry:
    if data.method == "currency":
        legs = (ledger.Leg(person_account(data.person), CURRENCY, -data.amount),
                ledger.Leg(pc.FACILITY_FEES, CURRENCY, data.amount))
        return ledger.Entry(key=data.key, kind="facility_fee", legs=legs, actor=person_account(data.person),
                            memo=data.memo)
    legs = (ledger.Leg(REDEMPTION, CURRENCY, -data.amount), ledger.Leg(pc.FACILITY_FEES, CURRENCY, data.amount))
    return ledger.Entry(key=data.key, kind="facility_fee_coupon", legs=legs, actor=person_account(data.person),
                        memo=f"coupon {data.coupon_id}")


def _raise(r: ledger.PostResult) -> ledger.Posted:
    if isinstance(r, ledger.Posted):
        return r
    if r.error_code == lc.LEDGER_KEY_REUSED.code:
        raise pc.PAYMENT_KEY_REUSED(f"{r.reason}")
    if r.error_code == lc.LEDGER_INSUFFICIENT.code:
        raise pc.PAYMENT_INSUFFICIENT("not enough local currency for the fee / 地域通貨が足りません")
    raise r


async def _use_coupon(session: AsyncSession, data: pc.ChargeIn, now: datetime) -> None:
    """The person's coupon, unused, unexpired, of a kind the facility accepts and worth at least the fee, marked used
    by the charge's key (the surplus of a dearer coupon is not given back: documented in docs/bookings.md)."""
    if data.coupon_id is None:
        raise pc.PAYMENT_COUPON_NOT_USABLE("say which coupon pays the fee")
    row = (await session.execute(select(coupons).where(coupons.c.id == data.coupon_id))).first()
    why = None
    if row is None or row.person_account != person_account(data.person):
        why = "no such coupon of yours"
    elif row.redeemed_at is not None:
        why = "the coupon is used already"
    elif db.aware(row.expires_at) <= now:
        why = "the coupon has expired"
    elif row.type_code not in data.coupon_types:
        why = f"coupons of kind {row.type_code!r} are not accepted for this fee"
    elif row.price < data.amount:
        why = f"the coupon is worth {row.price}, less than the fee {data.amount}"
    if why is not None:
        raise pc.PAYMENT_COUPON_NOT_USABLE(why)
    done = await session.execute(update(coupons).where(coupons.c.id == data.coupon_id, coupons.c.redeemed_at.is_(None))
                                 .values(redeemed_at=now, redeemed_by=data.key))
    if db.rowcount(done) != 1:
        raise pc.PAYMENT_COUPON_NOT_USABLE("the coupon was just used")


async def charge(session: AsyncSession, *, data: pc.ChargeIn, node: str, now: datetime) -> pc.Charge:
    entry = _entry(data)
    stored = (await session.execute(select(journal.c.id).where(journal.c.idempotency_key == data.key))).first()
    if stored is None and data.method == "coupon":
        await _use_coupon(session, data, now)
    [r] = await ledger.post_entries(session, [entry], node=node)
    posted = _raise(r)
    left = await ledger.balance(session, person_account(data.person), CURRENCY)
    return pc.Charge(key=data.key, status="charged" if posted.status == "posted" else "duplicate",
                     journal_id=posted.journal_id, method=data.method, amount=data.amount,
                     coupon_id=data.coupon_id, currency_left=left)


def _fees(legs: list[ledger.Leg]) -> int:
    return sum(leg.amount for leg in legs if leg.account == pc.FACILITY_FEES)


async def refund(session: AsyncSession, *, data: pc.RefundIn, node: str) -> pc.Refund:
    charged = _fees(await ledger.entry_legs(session, data.key))
    if charged < data.amount:
        raise pc.PAYMENT_NOT_CHARGED(f"{charged} was charged under {data.key}, less than the refund {data.amount}")
    entry = ledger.Entry(key=f"{data.key}:refund", kind="facility_fee_refund", actor=pc.FACILITY_FEES,
                         memo=data.memo, legs=(ledger.Leg(pc.FACILITY_FEES, CURRENCY, -data.amount),
                                               ledger.Leg(person_account(data.person), CURRENCY, data.amount)))
    [r] = await ledger.post_entries(session, [entry], node=node)
    posted = _raise(r)
    return pc.Refund(key=data.key, status="refunded" if posted.status == "posted" else "duplicate",
                     journal_id=posted.journal_id, amount=data.amount)


async def get(session: AsyncSession, *, data: pc.ChargeQuery) -> pc.ChargeState:
    row = (await session.execute(select(journal.c.id, journal.c.kind)
                                 .where(journal.c.idempotency_key == data.key))).first()
    if row is None:
        return pc.ChargeState(key=data.key, charged=False)
    refunded = -_fees(await ledger.entry_legs(session, f"{data.key}:refund"))
    return pc.ChargeState(key=data.key, charged=True, journal_id=row.id,
                          method="coupon" if row.kind == "facility_fee_coupon" else "currency",
                          amount=_fees(await ledger.entry_legs(session, data.key)), refunded=refunded)
