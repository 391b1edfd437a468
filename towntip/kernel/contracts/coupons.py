"""Contracts of the wallet (every asset a person holds), local currency awarded by staff, and coupons bought with it:
svc.<node>.points.wallet, currency.award, coupons.*."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.points import PersonId
from towntip.kernel.errors import Refusal, check_failed

EP_WALLET = "wallet"  # PersonQuery -> Wallet
EP_CURRENCY_AWARD = "currency.award"  # CurrencyAwardIn -> Wallet (staff)
EP_COUPON_TYPE_PUT = "coupons.types.put"  # CouponTypeIn -> CouponType (staff)
EP_COUPON_TYPES = "coupons.types.list"  # {} -> CouponTypeList (anyone)
EP_COUPON_BUY = "coupons.buy"  # CouponBuyIn -> CouponBought
EP_COUPON_MINE = "coupons.mine"  # PersonQuery -> CouponList
EP_COUPON_REDEEM = "coupons.redeem"  # CouponRedeemIn -> CouponOut (staff, at the counter)

_IN = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


def _coupon_code(v: str) -> str:
    v = v.replace("-", "").replace(" ", "").upper()
    if len(v) != 10 or not v.isalnum():
        raise check_failed("coupon.code_malformed", "a coupon code is the 10 letters and digits printed on it")
    return v


class AssetBalance(Frozen):
    asset: str
    kind: str  # points | credits | currency
    name_ja: str
    name_en: str
    unit: str
    balance: int


class Wallet(Frozen):
    balances: list[AssetBalance]


class CurrencyAwardIn(BaseModel):
    """Staff give local currency for an activity (「参加した活動によっては地域通貨がもらえる」)."""

    model_config = _IN
    actor: Actor
    person: PersonId
    amount: int = Field(strict=True, ge=1, le=100_000)
    memo: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    key: Key  # made by the form that asked, so a resubmitted form awards once


class CouponTypeIn(BaseModel):
    model_config = _IN
    actor: Actor
    code: Code
    title_ja: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    title_en: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    issuer: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    price: int = Field(strict=True, ge=1, le=1_000_000)
    valid_days: int = Field(strict=True, ge=1, le=3650)
    active: bool = True


class CouponType(Frozen):
    code: str
    title_ja: str
    title_en: str
    issuer: str
    price: int
    valid_days: int
    active: bool


class CouponTypeList(Frozen):
    types: list[CouponType]


class CouponBuyIn(BaseModel):
    model_config = _IN
    person: PersonId
    type_code: Code
    key: Key  # the purchase's idempotency key, made by the form: a double click buys one coupon


class CouponOut(Frozen):
    id: str
    type_code: str
    title_ja: str
    title_en: str
    issuer: str
    price: int
    code: str  # shown to its owner only (never stored: derived from a node secret and the coupon's id)
    bought_at: datetime
    expires_at: datetime
    status: Literal["active", "redeemed", "expired"]
    redeemed_at: datetime | None = None


class CouponBought(Frozen):
    coupon: CouponOut
    status: Literal["bought", "duplicate"]  # duplicate: this purchase key was used before; that coupon is answered
    currency_left: int


class CouponList(Frozen):
    coupons: list[CouponOut]


class CouponRedeemIn(BaseModel):
    model_config = _IN
    actor: Actor
    code: Annotated[str, StringConstraints(max_length=20), AfterValidator(_coupon_code)]


# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

COUPON_STAFF_ONLY = Refusal("coupon.staff_only", 403, "only the node's staff may do this")
COUPON_KEY_REUSED = Refusal("coupon.purchase_key_reused", 409, "the purchase key was used for another purchase")
COUPON_NOT_OFFERED = Refusal("coupon.not_offered", 404, "no such coupon on offer")
COUPON_NOT_ENOUGH_CURRENCY = Refusal("coupon.not_enough_currency", 409, "not enough local currency for the coupon")
COUPON_NOT_FOUND = Refusal("coupon.not_found", 404, "no such coupon (or no active one of that kind on the card)")
COUPON_ALREADY_USED = Refusal("coupon.already_used", 409, "the coupon was used already")
COUPON_EXPIRED = Refusal("coupon.expired", 409, "the coupon has expired")
COUPON_CARD_NOT_REGISTERED = Refusal("coupon.card_not_registered", 404,
                                     "the card is bound to no account; coupons belong to accounts")
