"""The endpoint table of the wallet, local currency awarded by staff, coupons bought with it and redeemed at the
counter."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.points.coupons import service as coupons
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import points as contract
from towntip.kernel.domain import ANYONE, GATEWAY, STAFF, Domain, read, write


async def buy(*, session: AsyncSession, data: cc.CouponBuyIn, card_key: bytes, node: str) -> cc.CouponBought:
    return await coupons.buy(session, q=data, key=card_key, node=node)


async def mine(*, session: AsyncSession, person: str, card_key: bytes) -> cc.CouponList:
    return await coupons.mine(session, person=person, key=card_key)


async def redeem(*, session: AsyncSession, data: cc.CouponRedeemIn, card_key: bytes) -> cc.CouponOut:
    return await coupons.redeem_at_counter(session, q=data, key=card_key)


DOMAIN = Domain("coupons", refusals=(
    cc.COUPON_STAFF_ONLY, cc.COUPON_KEY_REUSED, cc.COUPON_NOT_OFFERED, cc.COUPON_NOT_ENOUGH_CURRENCY,
    cc.COUPON_NOT_FOUND, cc.COUPON_ALREADY_USED, cc.COUPON_EXPIRED,
), ops=(
    read(cc.EP_WALLET, contract.PersonQuery, cc.Wallet, coupons.wallet, role=GATEWAY),
    write(cc.EP_CURRENCY_AWARD, cc.CurrencyAwardIn, cc.Wallet, coupons.award_currency, role=STAFF),
    write(cc.EP_COUPON_TYPE_PUT, cc.CouponTypeIn, cc.CouponType, coupons.put_type, role=STAFF),
    read(cc.EP_COUPON_TYPES, None, cc.CouponTypeList, coupons.list_types, role=ANYONE),
    write(cc.EP_COUPON_BUY, cc.CouponBuyIn, cc.CouponBought, buy, role=GATEWAY),
    read(cc.EP_COUPON_MINE, contract.PersonQuery, cc.CouponList, mine, role=GATEWAY),
    write(cc.EP_COUPON_REDEEM, cc.CouponRedeemIn, cc.CouponOut, redeem, role=STAFF),
))
