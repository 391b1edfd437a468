"""The wallet, local currency and coupons. No NATS, no commits here.

A person's local currency (地域通貨) buys coupons the node offers (公民館の施設使用料, 市営バス, partner shops): the
price moves from `person:<id>` to `system:redemption` in one ledger entry whose idempotency key the buyer's form
made, so a double submission buys one coupon. A coupon has a single-use code, redeemed at a counter by staff (or at a
terminal in coupon mode), before it expires. Its code is never stored: it is HMAC(card key, "coupon:" + id), shown to
its owner whenever they look, and its SHA-256 is what the counter's lookup finds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.coupons.models import coupon_types, coupons
from services.points.ledger import service as ledger
from services.points.ledger.models import assets, balances
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import new_id, utcnow
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware as _aware

CURRENCY = "local-currency"
REDEMPTION = "system:redemption"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # base32 without 0/O and 1/I


def person_account(person: str) -> str:
    return f"person:{person}"


def coupon_code(key: bytes, coupon_id: str) -> str:
    """10 characters (50 bits) from the node's secret and the coupon's id: the same every time its owner looks."""
    digest = hmac.new(key, f"coupon:{coupon_id}".encode(), hashlib.sha256).digest()
    raw = base64.b32encode(digest).decode()[:10]
    return raw.translate(str.maketrans("OI01", "XYZ9"))  # nothing a person could misread


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _staff(actor: Actor) -> None:
    if not actor.has("staff"):
        raise cc.COUPON_STAFF_ONLY("only the node's staff may do this / 職員のみが操作できます")


# ---- the wallet -------------------------------------------------------------------------------------------------


async def wallet(session: AsyncSession, *, person: str) -> cc.Wallet:
    """Every asset of the node, with the person's balance (0 where they hold none)."""
    mine = person_account(person)
    rows = await session.execute(
        select(assets.c.code, assets.c.kind, assets.c.name_ja, assets.c.name_en, assets.c.unit,
               func.coalesce(balances.c.balance, 0).label("balance"))
        .select_from(assets.outerjoin(balances, (balances.c.asset == assets.c.code)
                                      & (balances.c.account_id == mine)))
        .order_by(assets.c.code))
    order = {"points": 0, "credits": 1, "currency": 2}
    out = [cc.AssetBalance(asset=r.code, kind=r.kind, name_ja=r.name_ja, name_en=r.name_en, unit=r.unit,
                           balance=int(r.balance)) for r in rows]
    return cc.Wallet(balances=sorted(out, key=lambda b: (order.get(b.kind, 9), b.asset)))


async def award_currency(session: AsyncSession, *, q: cc.CurrencyAwardIn, node: str) -> cc.Wallet:
    _staff(q.actor)
    [r] = await ledger.post_entries(session, [ledger.Entry(
        key=f"currency:{q.key}", kind="currency_award", actor=f"staff:{q.actor.user_id}", memo=q.memo,
        legs=(ledger.Leg(ledger.ISSUANCE, CURRENCY, -q.amount),
              ledger.Leg(person_account(q.person), CURRENCY, q.amount)),
    )], node=node)
    if isinstance(r, errors.ServiceError):
        raise r
    return await wallet(session, person=q.person)


# ---- coupon types -------------------------------------------------------------------------------------------------


def _type_out(r: Any) -> cc.CouponType:
    return cc.CouponType(code=r.code, title_ja=r.title_ja, title_en=r.title_en, issuer=r.issuer, price=r.price,
                         valid_days=r.valid_days, active=r.active)


async def put_type(session: AsyncSession, *, q: cc.CouponTypeIn) -> cc.CouponType:
    """Create a kind of coupon or change it (coupons already bought keep their price and expiry)."""
    _staff(q.actor)
    now = utcnow()
    values = {"title_ja": q.title_ja, "title_en": q.title_en, "issuer": q.issuer, "price": q.price,
              "valid_days": q.valid_days, "active": q.active, "updated_at": now}
    stmt = db.insert_on_conflict(session, coupon_types).values(code=q.code, created_at=now, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=values))
    row = (await session.execute(select(coupon_types).where(coupon_types.c.code == q.code))).one()
    return _type_out(row)


async def list_types(session: AsyncSession) -> cc.CouponTypeList:
    rows = await session.execute(select(coupon_types).order_by(coupon_types.c.price, coupon_types.c.code))
    return cc.CouponTypeList(types=[_type_out(r) for r in rows])


# ---- buying and redeeming ---------------------------------------------------------------------------------------


def _coupon_out(r: Any, key: bytes, now: Any) -> cc.CouponOut:
    status = "redeemed" if r.redeemed_at is not None else "expired" if _aware(r.expires_at) <= now else "active"
    return cc.CouponOut(id=r.id, type_code=r.type_code, title_ja=r.title_ja, title_en=r.title_en, issuer=r.issuer,
                        price=r.price, code=coupon_code(key, r.id), bought_at=_aware(r.bought_at),
                        expires_at=_aware(r.expires_at), status=status, redeemed_at=_aware(r.redeemed_at))


def _coupon_query() -> Any:
    return (select(coupons, coupon_types.c.title_ja, coupon_types.c.title_en, coupon_types.c.issuer)
            .join(coupon_types, coupon_types.c.code == coupons.c.type_code))


async def buy(session: AsyncSession, *, q: cc.CouponBuyIn, key: bytes, node: str) -> cc.CouponBought:
    """Exchange local currency for a coupon; the same purchase key again answers the coupon it bought."""
    now = utcnow()
    purchase_key = f"coupon:{q.person}:{q.key}"
    mine = person_account(q.person)
    done = (await session.execute(_coupon_query().where(coupons.c.purchase_key == purchase_key))).first()
    if done is not None:
        if done.person_account != mine or done.type_code != q.type_code:
            raise cc.COUPON_KEY_REUSED("this purchase key was used for another purchase / 別の購入に使われたキーです")
        left = await ledger.balance(session, mine, CURRENCY)
        return cc.CouponBought(coupon=_coupon_out(done, key, now), status="duplicate", currency_left=left)
    kind = (await session.execute(select(coupon_types).where(coupon_types.c.code == q.type_code))).first()
    if kind is None or not kind.active:
        raise cc.COUPON_NOT_OFFERED(f"no coupon {q.type_code!r} on offer / このクーポンは扱っていません")
    [paid] = await ledger.post_entries(session, [ledger.Entry(
        key=purchase_key, kind="coupon_purchase", actor=mine, memo=f"coupon {q.type_code}",
        legs=(ledger.Leg(mine, CURRENCY, -kind.price), ledger.Leg(REDEMPTION, CURRENCY, kind.price)),
    )], node=node)
    if isinstance(paid, errors.Conflict) and "below zero" in paid.reason:
        raise cc.COUPON_NOT_ENOUGH_CURRENCY(f"not enough local currency: the coupon costs {kind.price} "
                              f"/ 地域通貨が足りません（{kind.price}円必要です）")
    if isinstance(paid, errors.ServiceError):
        raise paid
    cid = new_id()
    await session.execute(coupons.insert().values(
        id=cid, purchase_key=purchase_key, code_hash=_hash(coupon_code(key, cid)), type_code=kind.code,
        person_account=mine, price=kind.price, bought_at=now, expires_at=now + timedelta(days=kind.valid_days)))
    row = (await session.execute(_coupon_query().where(coupons.c.id == cid))).one()
    left = await ledger.balance(session, mine, CURRENCY)
    return cc.CouponBought(coupon=_coupon_out(row, key, now), status="bought", currency_left=left)


async def mine(session: AsyncSession, *, person: str, key: bytes) -> cc.CouponList:
    now = utcnow()
    rows = await session.execute(_coupon_query().where(coupons.c.person_account == person_account(person))
                                 .order_by(coupons.c.bought_at.desc()))
    return cc.CouponList(coupons=[_coupon_out(r, key, now) for r in rows])


async def redeem(session: AsyncSession, *, code: str, by: str, key: bytes,
                 owner: str | None = None, type_code: str | None = None) -> cc.CouponOut:
    """Use a coupon once. At the counter staff type its code; at a terminal in coupon mode the owner's card finds
    their oldest active coupon of the terminal's kind (`owner`, `type_code`; `code` empty)."""
    now = utcnow()
    q = _coupon_query()
    if owner is not None:
        q = (q.where(coupons.c.person_account == owner, coupons.c.type_code == type_code,
                     coupons.c.redeemed_at.is_(None), coupons.c.expires_at > now)
             .order_by(coupons.c.expires_at, coupons.c.bought_at).limit(1))
    else:
        q = q.where(coupons.c.code_hash == _hash(code))
    row = (await session.execute(q)).first()
    if row is None:
        raise cc.COUPON_NOT_FOUND("no such coupon / クーポンが見つかりません" if owner is None
                              else f"no active {type_code!r} coupon on this card's account / "
                                   "使えるクーポンがありません")
    if row.redeemed_at is not None:
        raise cc.COUPON_ALREADY_USED(f"this coupon was already used on {_aware(row.redeemed_at):%Y-%m-%d %H:%M} UTC "
                              "/ このクーポンは使用済みです")
    if _aware(row.expires_at) <= now:
        raise cc.COUPON_EXPIRED("this coupon has expired / このクーポンは有効期限切れです")
    # Single use even under concurrent redemptions: only the update that still finds it unused counts.
    done = await session.execute(update(coupons).where(coupons.c.id == row.id, coupons.c.redeemed_at.is_(None))
                                 .values(redeemed_at=now, redeemed_by=by))
    if db.rowcount(done) != 1:
        raise cc.COUPON_ALREADY_USED("this coupon was just used / このクーポンは使用済みです")
    return _coupon_out((await session.execute(_coupon_query().where(coupons.c.id == row.id))).one(), key, now)


async def redeem_at_counter(session: AsyncSession, *, q: cc.CouponRedeemIn, key: bytes) -> cc.CouponOut:
    _staff(q.actor)
    return await redeem(session, code=q.code, by=f"staff:{q.actor.user_id}", key=key)


async def redeem_by_touch(session: AsyncSession, tap: Any, *, card_key: bytes, duplicate: bool) -> Any:
    """A touch at a terminal in coupon mode (on the bus, at the hall's door): the card's owner uses their coupon of
    the terminal's kind (`tap.ref`, e.g. `city-bus`) that expires first. The touch's key marks the coupon, so the
    same touch heard twice answers duplicate and uses nothing more."""
    from services.points.taps.models import card_bindings
    from services.points.taps.service import card_account_id
    from towntip.kernel.contracts.points import TapOutcome

    by = tap.key
    if duplicate:
        row = (await session.execute(_coupon_query().where(coupons.c.redeemed_by == by))).first()
        if row is None:
            return pc.TAP_REPEAT_OF_REFUSED("repeat of a touch that was refused")
        return TapOutcome(tap_id=tap.tap_id, status="duplicate", points=0, balance=0, display=row.title_ja)
    card = card_account_id(card_key, tap.card_idm)
    owner = (await session.execute(select(card_bindings.c.person_account)
                                   .where(card_bindings.c.card_account == card))).scalar_one_or_none()
    if owner is None:
        return cc.COUPON_CARD_NOT_REGISTERED("this card is not registered to an account; coupons belong to accounts "
                               "/ このカードはアカウントに登録されていません")
    try:
        used = await redeem(session, code="", by=by, key=card_key, owner=owner, type_code=(tap.ref or "").lower())
    except errors.ServiceError as exc:
        return exc
    left = (await session.execute(select(func.count()).select_from(coupons).where(
        coupons.c.person_account == owner, coupons.c.type_code == used.type_code, coupons.c.redeemed_at.is_(None),
        coupons.c.expires_at > utcnow()))).scalar_one()
    return TapOutcome(tap_id=tap.tap_id, status="credited", points=0, balance=0,
                      display=f"{used.title_ja}（残り{left}枚 / {left} left）")
