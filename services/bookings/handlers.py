"""The bookings service's endpoints, one table per domain. Each change runs in the unit of work's transaction and
wakes the outbox relay after the commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.bookings import availability, bookings, checkin, facilities, life, open_data, privacy
from services.bookings import series as series_
from services.bookings import waitlist as waitlist_
from services.bookings.lottery_handlers import GROUPS, LOTTERY
from services.bookings.portal import PHOTOS, PORTAL
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_checkin as k
from towntip.kernel.contracts import bookings_life as lc
from towntip.kernel.contracts import bookings_lottery as lt
from towntip.kernel.contracts import bookings_waitlist as w
from towntip.kernel.contracts import open_data as od
from towntip.kernel.contracts import privacy as pv
from towntip.kernel.domain import ANYONE, GATEWAY, GET, POST, STAFF, Domain, own, read, write
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
    own(c.EP_BOOKING_CREATE, c.BookingCreate, c.Booking, bookings.attempt, refusals=(
        c.FACILITY_NOT_FOUND, c.BOOKING_UNKNOWN_NODE, c.BOOKING_STAFF_ONLY, c.BOOKING_BAD_RANGE, c.BOOKING_PAST,
        c.BOOKING_CLOSED_DAY, c.BOOKING_OUTSIDE_HOURS, c.BOOKING_TOO_LONG, c.BOOKING_NOTICE, c.BOOKING_TOO_FAR,
        c.BOOKING_OFF_LAYOUT, c.BOOKING_QUOTA, c.BOOKING_TAKEN, c.BOOKING_BEHALF_REQUIRED,
        *lt.BOOKING_REFUSALS), admin=True,
          http=POST("/bookings", "Book a facility (staff: on behalf of someone)", status=201)),
    write(c.EP_BOOKING_CANCEL, c.BookingAction, c.Booking, bookings.cancel,
          refusals=(c.BOOKING_NOT_YOURS, c.BOOKING_CANCELLED, c.BOOKING_STARTED), admin=True,
          http=POST("/bookings/{booking_id}/cancel", "Cancel a booking")),
    read(c.EP_BOOKING_GET, c.BookingAction, c.Booking, bookings.get, admin=True,
         http=GET("/bookings/{booking_id}", "One booking (its booker, or staff)")),
    read(c.EP_BOOKING_MINE, c.MineQuery, c.BookingList, bookings.mine,
         http=GET("/bookings", "My bookings")),
))

# A booking's life (services/bookings/life.py): the approval queue, fees paid through the points service or at the
# counter (the deadline and refund jobs run in services/bookings/sweeper.py).
LIFE = Domain("life", refusals=(c.BOOKING_NOT_FOUND,), ops=(
    read(lc.EP_APPROVALS, lc.ApprovalsQuery, c.BookingList, life.approvals, role=STAFF, admin=True,
         refusals=(lc.DECIDE_STAFF_ONLY,), http=GET("/booking-approvals", "Requests waiting for approval")),
    write(lc.EP_APPROVE, lc.Decision, c.Booking, life.approve, role=STAFF, admin=True,
          refusals=(lc.DECIDE_STAFF_ONLY, lc.NOT_REQUESTED, c.BOOKING_STARTED),
          http=POST("/bookings/{booking_id}/approve", "Approve a request")),
    write(lc.EP_REJECT, lc.Rejection, c.Booking, life.reject, role=STAFF, admin=True,
          http=POST("/bookings/{booking_id}/reject", "Reject a request, with a reason")),
    own(lc.EP_PAY, lc.PayIn, c.Booking, life.pay, refusals=(
        c.BOOKING_NOT_YOURS, lc.NOT_PAYABLE, lc.NO_FEE, lc.ALREADY_PAID, lc.DEADLINE_PASSED, lc.NOT_ENOUGH_CURRENCY,
        lc.COUPON_NOT_USABLE), http=POST("/bookings/{booking_id}/pay", "Pay a booking's fee (local currency, coupon)")),
    write(lc.EP_PAID_AT_COUNTER, lc.CounterPayment, c.Booking, life.paid_at_counter, role=STAFF, admin=True,
          refusals=(lc.COUNTER_STAFF_ONLY, lc.NOT_PAYABLE, lc.NO_FEE, lc.ALREADY_PAID, lc.DEADLINE_PASSED),
          http=POST("/bookings/{booking_id}/paid-at-counter", "Record a fee paid in cash at the counter")),
))

# The waitlist (キャンセル待ち) and recurring series (定期予約): contracts.bookings_waitlist.
_CHECKS = (c.FACILITY_NOT_FOUND, c.BOOKING_UNKNOWN_NODE, c.BOOKING_STAFF_ONLY, c.BOOKING_BAD_RANGE, c.BOOKING_PAST,
           c.BOOKING_CLOSED_DAY, c.BOOKING_OUTSIDE_HOURS, c.BOOKING_TOO_LONG, c.BOOKING_NOTICE, c.BOOKING_TOO_FAR,
           c.BOOKING_OFF_LAYOUT, c.BOOKING_BEHALF_REQUIRED)
WAITLIST = Domain("waitlist", refusals=(w.WAITLIST_NOT_FOUND,), ops=(
    write(w.EP_WAITLIST_JOIN, w.WaitlistJoin, w.WaitlistEntry, waitlist_.join, admin=True,
          refusals=(*_CHECKS, w.WAITLIST_SLOT_FREE, w.WAITLIST_ALREADY, w.WAITLIST_FULL),
          http=POST("/waitlist", "Wait for a taken slot (キャンセル待ち)", status=201)),
    write(w.EP_WAITLIST_LEAVE, w.WaitlistAction, w.WaitlistEntry, waitlist_.leave, admin=True,
          refusals=(w.WAITLIST_NOT_WAITING,), http=POST("/waitlist/{entry_id}/leave", "Leave the waitlist")),
    read(w.EP_WAITLIST_MINE, w.WaitlistMineQuery, w.WaitlistList, waitlist_.mine,
         http=GET("/waitlist", "My waitlist entries, with my place in line")),
    write(w.EP_OFFER_ACCEPT, w.OfferAction, c.Booking, waitlist_.accept, admin=True,
          refusals=(c.BOOKING_NOT_FOUND, c.FACILITY_NOT_FOUND, w.OFFER_NOT_OPEN, w.OFFER_EXPIRED),
          http=POST("/offers/{booking_id}/accept", "Accept a slot offered from the waitlist")),
    write(w.EP_OFFER_DECLINE, w.OfferAction, c.Booking, waitlist_.decline, admin=True,
          refusals=(c.BOOKING_NOT_FOUND, c.FACILITY_NOT_FOUND, w.OFFER_NOT_OPEN),
          http=POST("/offers/{booking_id}/decline", "Decline a slot offered from the waitlist")),
))

SERIES = Domain("series", refusals=(w.SERIES_NOT_FOUND,), ops=(
    write(w.EP_SERIES_CREATE, w.SeriesCreate, w.SeriesReport, series_.create, admin=True,
          refusals=(*_CHECKS, w.SERIES_TOO_MANY, w.SERIES_NO_DATES, w.SERIES_NONE_HAD, w.SERIES_INCOMPLETE),
          http=POST("/series", "Book a recurring series (定期予約): the dates booked and those not had", status=201)),
    read(w.EP_SERIES_GET, w.SeriesQuery, w.SeriesDetail, series_.get, admin=True,
         http=GET("/series/{series_id}", "One series and its bookings (its booker, or staff)")),
    read(w.EP_SERIES_MINE, w.SeriesMineQuery, w.SeriesList, series_.mine, http=GET("/series", "My series")),
    write(w.EP_SERIES_CHANGE, w.SeriesChange, w.SeriesDetail, series_.change, admin=True,
          refusals=(w.SERIES_NOT_IN, w.SERIES_NOTHING_LEFT, w.SERIES_NO_CHANGE, w.SERIES_CONFLICTS,
                    w.SERIES_INCOMPLETE, c.FACILITY_NOT_FOUND),
          http=POST("/series/{series_id}/change", "Cancel or change one, the following, or all of a series")),
))

# Check-in at the counter (a card's touch at the facility's terminal comes through services/bookings/touches.py).
CHECKIN = Domain("checkin", refusals=(c.BOOKING_NOT_FOUND,), ops=(
    write(k.EP_BOOKING_CHECKIN, c.BookingAction, c.Booking, checkin.counter, role=STAFF, admin=True,
          refusals=(k.CHECKIN_STAFF_ONLY, k.CHECKIN_NOT_CONFIRMED, k.CHECKIN_NOT_NOW),
          http=POST("/bookings/{booking_id}/checkin", "Check a booking in at the counter (staff)")),
))

DOMAINS: tuple[Domain, ...] = (FACILITIES, BOOKINGS, LIFE, WAITLIST, SERIES, GROUPS, LOTTERY, CHECKIN, PORTAL, PHOTOS)

# Open data: facilities and their usage per month, public, small counts withheld (issue 20 point 8).
OPEN_DATA = Domain("open_data", ops=(
    read(od.EP_OPEN_DATA, od.OpenDataQuery, od.OpenData, open_data.tables, role=ANYONE),
))
DOMAINS += (OPEN_DATA,)

# A person's data (issue 20 point 7): the gateway's export of the person's part (services/bookings/privacy.py).
PRIVACY = Domain("privacy", ops=(
    read(pv.EP_PERSON_EXPORT, pv.ExportQuery, pv.PersonData, privacy.export, role=GATEWAY),
))
DOMAINS += (PRIVACY,)


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, on_commit: Callable[[], None],
                    clock: Callable[[], datetime] = utcnow, points: life.Points | None = None,
                    open_to_other_nodes: bool = False) -> Endpoints:
    """The service's endpoints from its domains' tables (`points`: the points service's payments;
    `open_to_other_nodes`: the node's setting `bookings_open_to_other_nodes`, for every facility)."""
    uow = UnitOfWork(sessions, on_commit=on_commit, clock=clock)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={"node": node, "points": points,
                                                             "open_to_other_nodes": open_to_other_nodes})
