"""Contracts of a booking's check-in (issue 17, point 4): by a card's touch at the facility's terminal (the points
service's TapRecorded / CheckinRepeated name the person, consumed through the inbox), or by staff at the counter; and
the release of a no-show after the facility's `rules.no_show_minutes` (services/bookings/checkin.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from towntip.kernel.contracts.bookings import BookingsEvent
from towntip.kernel.errors import Refusal

EP_BOOKING_CHECKIN = "bookings.checkin"  # BookingAction -> Booking (staff at the counter)

# A booking may be checked in from this long before its start until its end.
EARLY = timedelta(minutes=15)

CHECKIN_STAFF_ONLY = Refusal("checkin.staff_only", 403, "only staff check a booking in at the counter")
CHECKIN_NOT_CONFIRMED = Refusal("checkin.not_confirmed", 409,
                                "only a confirmed booking is checked in (not one requested, cancelled or released)")
CHECKIN_NOT_NOW = Refusal("checkin.not_now", 409,
                          "a booking is checked in from 15 minutes before its start until its end")


class BookingCheckedIn(BookingsEvent):
    """The booker arrived: by touching a card at the facility's terminal, or checked in by staff at the counter."""

    booking_id: str
    facility_id: str
    booker: str | None
    by: Literal["card", "counter"]
    terminal_id: str | None = None
    at: datetime


class BookingNoShow(BookingsEvent):
    """A confirmed booking not checked in within the facility's no-show time: released, the rest of its slot free."""

    booking_id: str
    facility_id: str
    booker: str | None
    start: datetime
    at: datetime
