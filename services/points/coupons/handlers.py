"""NATS adapters of the wallet, local currency awarded by staff, coupons bought with it and redeemed at the counter."""

from __future__ import annotations

from services.points.coupons import service as coupons
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import points as contract
from towntip.kernel.uow import UnitOfWork


def add_endpoints(eps: Endpoints, *, tx: UnitOfWork, node: str, card_key: bytes) -> None:
    @eps.add(cc.EP_WALLET, contract.PersonQuery)
    async def wallet(q: contract.PersonQuery) -> cc.Wallet:
        return await tx.read(lambda s: coupons.wallet(s, person=q.person))

    @eps.add(cc.EP_CURRENCY_AWARD, cc.CurrencyAwardIn)
    async def award(q: cc.CurrencyAwardIn) -> cc.Wallet:
        return await tx.write(lambda s, _now: coupons.award_currency(s, q=q, node=node))

    @eps.add(cc.EP_COUPON_TYPE_PUT, cc.CouponTypeIn)
    async def put_type(q: cc.CouponTypeIn) -> cc.CouponType:
        return await tx.write(lambda s, _now: coupons.put_type(s, q=q))

    @eps.add(cc.EP_COUPON_TYPES)
    async def types(_: None) -> cc.CouponTypeList:
        return await tx.read(coupons.list_types)

    @eps.add(cc.EP_COUPON_BUY, cc.CouponBuyIn)
    async def buy(q: cc.CouponBuyIn) -> cc.CouponBought:
        return await tx.write(lambda s, _now: coupons.buy(s, q=q, key=card_key, node=node))

    @eps.add(cc.EP_COUPON_MINE, contract.PersonQuery)
    async def mine(q: contract.PersonQuery) -> cc.CouponList:
        return await tx.read(lambda s: coupons.mine(s, person=q.person, key=card_key))

    @eps.add(cc.EP_COUPON_REDEEM, cc.CouponRedeemIn)
    async def redeem(q: cc.CouponRedeemIn) -> cc.CouponOut:
        return await tx.write(lambda s, _now: coupons.redeem_at_counter(s, q=q, key=card_key))
