"""Contracts of payments for other services (svc.<node>.points.payments.*): a facility fee charged to a person's
local currency or settled with one of their coupons, and refunded, through the ledger. Only the bookings service
calls them (its NATS user may; the gateway's may not): the key, `booking:<id>`, makes a retry after a crash
charge once.

Ledger entries: a charge in currency moves the fee `person:<user id>` → `system:facility-fees`; a charge by coupon
marks the coupon used (by the key) and moves the fee `system:redemption` (where the coupon's price went when it was
bought) → `system:facility-fees`; a refund moves the amount `system:facility-fees` → `person:<user id>` in currency
(also for a fee paid by coupon: a used coupon is not handed back).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.points import PersonId
from towntip.kernel.errors import Refusal

EP_CHARGE = "payments.charge"  # ChargeIn -> Charge
EP_REFUND = "payments.refund"  # RefundIn -> Refund
EP_CHARGE_GET = "payments.get"  # ChargeQuery -> ChargeState

FACILITY_FEES = "system:facility-fees"
_IN = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
PaymentKey = Annotated[str, StringConstraints(pattern=r"^[a-z]+:[0-9a-f-]{36}$")]  # booking:<id>
CouponTypeCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]

PAYMENT_INSUFFICIENT = Refusal("payment.insufficient_balance", 409,
                               "the person's local currency does not cover the fee")
PAYMENT_COUPON_NOT_USABLE = Refusal("payment.coupon_not_usable", 409,
                                    "the coupon is not the person's, is used or expired, is not accepted for this "
                                    "fee, or is worth less than the fee")
PAYMENT_KEY_REUSED = Refusal("payment.key_reused", 409, "the key was used for another payment")
PAYMENT_NOT_CHARGED = Refusal("payment.not_charged", 409,
                              "nothing was charged under that key (or less than the refund)")
REFUSALS = (PAYMENT_INSUFFICIENT, PAYMENT_COUPON_NOT_USABLE, PAYMENT_KEY_REUSED, PAYMENT_NOT_CHARGED)


class ChargeIn(BaseModel):
    model_config = _IN
    key: PaymentKey  # booking:<id>: the same key again answers the first charge (status duplicate)
    person: PersonId
    amount: int = Field(strict=True, ge=1, le=10_000_000)
    method: Literal["currency", "coupon"]
    coupon_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")] | None = None  # method coupon
    coupon_types: Annotated[list[CouponTypeCode], Field(max_length=10)] = []  # the coupon kinds accepted
    memo: Annotated[str, StringConstraints(max_length=200)] = ""


class Charge(Frozen):
    key: str
    status: Literal["charged", "duplicate"]
    journal_id: str  # the ledger entry: the booking's payment_ref
    method: str
    amount: int
    coupon_id: str | None = None
    currency_left: int  # the person's local currency after the charge


class RefundIn(BaseModel):
    model_config = _IN
    key: PaymentKey  # the charge's key; the refund's own is <key>:refund
    person: PersonId
    amount: int = Field(strict=True, ge=1, le=10_000_000)  # at most what was charged
    memo: Annotated[str, StringConstraints(max_length=200)] = ""


class Refund(Frozen):
    key: str
    status: Literal["refunded", "duplicate"]
    journal_id: str
    amount: int


class ChargeQuery(BaseModel):
    model_config = _IN
    key: PaymentKey


class ChargeState(Frozen):
    key: str
    charged: bool
    journal_id: str | None = None
    method: str | None = None
    amount: int = 0
    refunded: int = 0
