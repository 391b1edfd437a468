"""Contracts of a booking's life after it is made (svc.<node>.bookings.*, issue 17 points 4, 6, 8, 10): staff approve
or reject requests (the approval queue), a fee is paid with local currency or a coupon through the points service
(svc.<node>.points.payments.*) or at the counter, an unpaid booking cancels itself at its deadline, and a paid
booking cancelled by its booker is refunded less the facility's cancellation fee (services/bookings/life.py)."""

from __future__ import annotations

import datetime as dt
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.bookings import NOT_BLANK, PAGE_MAX, BookingId, BookingsEvent, FacilityId
from towntip.kernel.errors import Refusal

EP_APPROVALS = "bookings.approvals"  # ApprovalsQuery -> BookingList (staff: requests waiting, oldest first)
EP_APPROVE = "bookings.approve"  # Decision -> Booking (staff)
EP_REJECT = "bookings.reject"  # Rejection -> Booking (staff)
EP_PAY = "bookings.pay"  # PayIn -> Booking (its booker: local currency or a coupon)
EP_PAID_AT_COUNTER = "bookings.paid_at_counter"  # CounterPayment -> Booking (staff: cash at the counter)

NOTE_MAX = 200
_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=NOTE_MAX)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NOTE_MAX,
                                          pattern=NOT_BLANK)]

NOT_REQUESTED = Refusal("booking.not_requested", 409, "the booking is not waiting for approval (decided already)")
DECIDE_STAFF_ONLY = Refusal("booking.decide_staff_only", 403, "only staff approve or reject requests")
NOT_PAYABLE = Refusal("booking.not_payable", 409, "only a confirmed booking's fee is paid (not a request, nor a "
                      "cancelled or rejected booking)")
NO_FEE = Refusal("booking.no_fee", 409, "the booking has no fee to pay")
ALREADY_PAID = Refusal("booking.already_paid", 409, "the fee is paid already")
DEADLINE_PASSED = Refusal("booking.payment_deadline_passed", 409,
                          "the fee's deadline has passed: the booking is (being) cancelled")
NOT_ENOUGH_CURRENCY = Refusal("booking.insufficient_balance", 409, "not enough local currency for the fee")
COUPON_NOT_USABLE = Refusal("booking.coupon_not_usable", 409,
                            "the coupon cannot pay this fee (not yours, used, expired, not accepted here, or worth "
                            "less than the fee)")
COUNTER_STAFF_ONLY = Refusal("booking.counter_staff_only", 403, "only staff record a payment at the counter")


def _iso_day(value: object) -> object:
    """A day as `YYYY-MM-DD` (or a date), never a number (pydantic would read 0 or "0" as 1970-01-01)."""
    if isinstance(value, dt.date) or isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    raise ValueError("a day is written YYYY-MM-DD")


IsoDay = Annotated[dt.date, BeforeValidator(_iso_day)]


class ApprovalsQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # staff; None: the operator (admin token)
    facility_id: FacilityId | None = None
    date: IsoDay | None = None  # the day of the start (JST)
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 50


class Decision(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    booking_id: BookingId
    note: Note = ""  # optional, shown to the booker


class Rejection(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    booking_id: BookingId
    reason: Reason  # required: the booker is told why


class PayIn(BaseModel):
    model_config = _IN
    actor: Actor
    booking_id: BookingId
    method: Literal["currency", "coupon"]
    coupon_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")] | None = None  # method coupon


class CounterPayment(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    booking_id: BookingId
    receipt: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""  # the counter's receipt no.


class BookingRejected(BookingsEvent):
    """Staff declined a request: the slot is free again; the booker is told why."""

    booking_id: str
    facility_id: str
    start: datetime
    end: datetime
    booker: str | None
    reason: str
    at: datetime


class BookingPaid(BookingsEvent):
    booking_id: str
    facility_id: str
    booker: str | None
    fee: int
    paid_with: Literal["currency", "coupon", "counter"]
    payment_ref: str | None  # the ledger entry (currency, coupon) or the counter's receipt
    at: datetime


class BookingRefunded(BookingsEvent):
    """A paid booking was cancelled: the fee less the cancellation fee went back to the booker's local currency."""

    booking_id: str
    booker: str | None
    amount: int
    cancellation_fee: int
    at: datetime
