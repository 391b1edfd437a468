"""The bookings service's endpoints, one table per domain. Each change runs in the unit of work's transaction and
wakes the outbox relay after the commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.bookings import availability, bookings, checkin, facilities
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_checkin as k
from towntip.kernel.domain import ANYONE, GET, POST, STAFF, Domain, read, write
from towntip.kernel.uow import UnitOfWork

FACILITIES = Domain("facilities", refusals=(c.FACILITY_NOT_FOUND,), ops=(
    write(c.EP_FACILITY_PUT, c.FacilityPut, c.Facility, facilities.put, role=STAFF,
          refusals=(c.FACILITY_STAFF_ONLY, c.FACILITY_INVALID), admin=True,
          http=POST("/facilities", "Create or replace a facility")),
    read(c.EP_FACILITY_LIST, c.FacilityListQuery, c.FacilityList, facilities.list_, role=ANYONE,
         http=GET("/facilities", "Facilities of this node")),
    read(c.EP_FACILITY_GET, c.FacilityQuery, c.Facility, facilities.get, role=ANYONE,
         http=GET("/facilities/{facility_id}", "One facility")),
    read(c.EP_AVAILABILITY, c.AvailabilityQuery, c.Availability, availability.day, role=ANYONE,
         refusals=(c.AVAILABILITY_RANGE,),
         http=GET("/facilities/{facility_id}/availability", "A facility's slots of one day, free or not")),
))

BOOKINGS = Domain("bookings", refusals=(c.BOOKING_NOT_FOUND,), ops=(
    write(c.EP_BOOKING_CREATE, c.BookingCreate, c.Booking, bookings.create, refusals=(
        c.FACILITY_NOT_FOUND, c.BOOKING_UNKNOWN_NODE, c.BOOKING_STAFF_ONLY, c.BOOKING_BAD_RANGE, c.BOOKING_PAST,
        c.BOOKING_CLOSED_DAY, c.BOOKING_OUTSIDE_HOURS, c.BOOKING_TOO_LONG, c.BOOKING_NOTICE, c.BOOKING_TOO_FAR,
        c.BOOKING_OFF_LAYOUT, c.BOOKING_QUOTA, c.BOOKING_TAKEN, c.BOOKING_BEHALF_REQUIRED), admin=True,
          http=POST("/bookings", "Book a facility (staff: on behalf of someone)", status=201)),
    write(c.EP_BOOKING_CANCEL, c.BookingAction, c.Booking, bookings.cancel,
          refusals=(c.BOOKING_NOT_YOURS, c.BOOKING_CANCELLED, c.BOOKING_STARTED), admin=True,
          http=POST("/bookings/{booking_id}/cancel", "Cancel a booking")),
    read(c.EP_BOOKING_GET, c.BookingAction, c.Booking, bookings.get, admin=True,
         http=GET("/bookings/{booking_id}", "One booking (its booker, or staff)")),
    read(c.EP_BOOKING_MINE, c.MineQuery, c.BookingList, bookings.mine,
         http=GET("/bookings", "My bookings")),
))

# Check-in at the counter (a card's touch at the facility's terminal comes through services/bookings/touches.py).
CHECKIN = Domain("checkin", refusals=(c.BOOKING_NOT_FOUND,), ops=(
    write(k.EP_BOOKING_CHECKIN, c.BookingAction, c.Booking, checkin.counter, role=STAFF, admin=True,
          refusals=(k.CHECKIN_STAFF_ONLY, k.CHECKIN_NOT_CONFIRMED, k.CHECKIN_NOT_NOW),
          http=POST("/bookings/{booking_id}/checkin", "Check a booking in at the counter (staff)")),
))

DOMAINS = (FACILITIES, BOOKINGS, CHECKIN)


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, on_commit: Callable[[], None],
                    clock: Callable[[], datetime] = utcnow) -> Endpoints:
    """The service's endpoints from its domains' tables."""
    uow = UnitOfWork(sessions, on_commit=on_commit, clock=clock)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={"node": node})
