"""Contracts of the bookings service's waitlist (キャンセル待ち) and recurring bookings (定期予約), beside
contracts.bookings (svc.<node>.bookings.waitlist.*, svc.<node>.bookings.series.*).

Waitlist: a person (or staff on behalf of a person) waits for a taken slot. When a booking holding that time is
released (cancelled, rejected, expired, a no-show), the slot is offered to the first in line as a booking in state
`offered` (origin `waitlist`) that holds the slot until `offer_expires_at` (the facility's `offer_hours`, never past
the start); the person accepts (→ confirmed, or requested when the facility needs approval) or declines; an offer not
accepted in time is cancelled (`offer_expired`) and the next in line gets the slot.

Series: a weekly (every N weeks on given weekdays) or monthly-by-weekday (第2火曜) series of bookings at one time of
day; each date is booked like a single booking (the same checks and guard) in one transaction, and the answer names
the dates not had with the refusal code of each. One date, the following ones, or all may be cancelled or changed
(time or purpose); a change of time is all or nothing (`series.conflicts`, whose reason lists `YYYY-MM-DD code`
pairs, one per date that cannot be had).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.bookings import (
    NOT_BLANK,
    BookingId,
    BookingsEvent,
    Purpose,
    UserClass,
    Walkin,
    Weekday,
)
from towntip.kernel.contracts.bookings import Booking as Booking
from towntip.kernel.errors import Refusal

# Endpoints (the tail of svc.<node>.bookings.<name>).
EP_WAITLIST_JOIN = "waitlist.join"  # WaitlistJoin -> WaitlistEntry (signed in; staff on behalf of a person)
EP_WAITLIST_LEAVE = "waitlist.leave"  # WaitlistAction -> WaitlistEntry (the person, or staff)
EP_WAITLIST_MINE = "waitlist.mine"  # WaitlistMineQuery -> WaitlistList (entries with their place in line)
EP_OFFER_ACCEPT = "waitlist.accept"  # OfferAction -> Booking (the offered booking: confirmed or requested)
EP_OFFER_DECLINE = "waitlist.decline"  # OfferAction -> Booking (cancelled; the next in line gets the offer)
EP_SERIES_CREATE = "series.create"  # SeriesCreate -> SeriesReport (the dates booked and the dates not had)
EP_SERIES_GET = "series.get"  # SeriesQuery -> SeriesDetail (its booker, or staff)
EP_SERIES_MINE = "series.mine"  # SeriesMineQuery -> SeriesList
EP_SERIES_CHANGE = "series.change"  # SeriesChange -> SeriesDetail (cancel or change one / following / all)

WAITLIST_MAX = 20  # people waiting for one slot at most
SERIES_MAX = 52  # dates in one series at most (a year of weeks)

WaitState = Literal["waiting", "offered", "booked", "declined", "expired", "left"]

WAITLIST_NOT_FOUND = Refusal("waitlist.not_found", 404, "no such waitlist entry (or not yours)")
WAITLIST_SLOT_FREE = Refusal("waitlist.slot_free", 409, "the slot is free: book it instead of waiting")
WAITLIST_ALREADY = Refusal("waitlist.already_waiting", 409, "the person waits for (or holds) that slot already")
WAITLIST_FULL = Refusal("waitlist.full", 409, f"{WAITLIST_MAX} people wait for that slot already")
WAITLIST_NOT_WAITING = Refusal("waitlist.not_waiting", 409, "the entry is no longer waiting (offered, booked or "
                               "left): an offer is accepted or declined")
OFFER_NOT_OPEN = Refusal("waitlist.offer_not_open", 409, "the booking is not an open offer (accepted, declined or "
                         "expired)")
OFFER_EXPIRED = Refusal("waitlist.offer_expired", 409, "the offer's time to accept has passed")
SERIES_NOT_FOUND = Refusal("series.not_found", 404, "no such series (or not yours)")
SERIES_TOO_MANY = Refusal("series.too_many", 400, f"a series has at most {SERIES_MAX} dates")
SERIES_NO_DATES = Refusal("series.no_dates", 400, "the pattern gives no date between the first and the last day")
SERIES_NONE_HAD = Refusal("series.none_available", 409, "none of the series' dates can be had: nothing was booked")
SERIES_CONFLICTS = Refusal("series.conflicts", 409, "the new time cannot be had on some of the dates: nothing "
                           "changed (the reason lists each date and its code)")
SERIES_NOTHING_LEFT = Refusal("series.nothing_to_change", 409, "no booking of the series in that scope can still "
                              "be changed (all cancelled or begun)")
SERIES_NOT_IN = Refusal("series.not_in_series", 400, "that booking is not one of the series' bookings")
SERIES_INCOMPLETE = Refusal("series.incomplete", 400, "a part of the request is missing: either last_day or count "
                             "(not both); booking_id for one or following; start_time with end_time")
SERIES_NO_CHANGE = Refusal("series.no_change", 400, "a change needs a new time or a new purpose")

REFUSALS: tuple[Refusal, ...] = (
    WAITLIST_NOT_FOUND, WAITLIST_SLOT_FREE, WAITLIST_ALREADY, WAITLIST_FULL, WAITLIST_NOT_WAITING, OFFER_NOT_OPEN,
    OFFER_EXPIRED, SERIES_NOT_FOUND, SERIES_TOO_MANY, SERIES_NO_DATES, SERIES_NONE_HAD, SERIES_CONFLICTS,
    SERIES_NOTHING_LEFT, SERIES_NOT_IN, SERIES_NO_CHANGE, SERIES_INCOMPLETE,
)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
EntryId = Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]
SeriesId = Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]
FacilityRef = Annotated[str, Field(min_length=1, max_length=120, pattern=NOT_BLANK)]  # id[@node]
# A time of day in Japan, "HH:MM" (no offset: each date's time is in JST).
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


# ---- waitlist ---------------------------------------------------------------------------------------------------

class WaitlistJoin(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # None: the node's operator (admin token), only on behalf of a person
    facility_id: FacilityRef
    start: AwareDatetime
    end: AwareDatetime
    purpose: Purpose
    user_class: UserClass = "city_group"
    on_behalf_of: GlobalHandle | None = None  # staff only: the person who waits (offers go to them)


class WaitlistAction(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    entry_id: EntryId


class WaitlistMineQuery(BaseModel):
    model_config = _IN
    actor: Actor
    include_done: bool = False  # also entries booked, declined, expired or left


class OfferAction(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # the person the slot is offered to, or staff
    booking_id: BookingId


class WaitlistEntry(Frozen):
    id: str
    facility_id: str
    start: datetime  # +09:00
    end: datetime
    purpose: str
    user_class: str
    person: str  # global handle
    booked_by: str | None = None  # staff who put the person on the list
    state: WaitState
    position: int | None = None  # 1: next in line; None when no longer waiting
    booking_id: str | None = None  # the offered (then booked) booking
    offer_expires_at: datetime | None = None  # state `offered`: accept before this
    created_at: datetime


class WaitlistList(Frozen):
    entries: list[WaitlistEntry]


# ---- recurring series -------------------------------------------------------------------------------------------

class Weekly(BaseModel):
    """Every `every_weeks` weeks on the given weekdays, counted from the week of the first day."""

    model_config = _IN
    kind: Literal["weekly"]
    every_weeks: Annotated[int, Field(ge=1, le=8)] = 1
    weekdays: Annotated[list[Weekday], Field(min_length=1, max_length=7)]


class MonthlyByWeekday(BaseModel):
    """Every month on the nth weekday (第2火曜: nth 2, tue); nth -1 is the last one of the month."""

    model_config = _IN
    kind: Literal["monthly"]
    nth: Literal[1, 2, 3, 4, 5, -1]
    weekday: Weekday


Pattern = Annotated[Weekly | MonthlyByWeekday, Field(discriminator="kind")]


class SeriesCreate(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # None: the node's operator (admin token), only on behalf of someone
    facility_id: FacilityRef
    start_time: ClockTime  # in Japan's time, each date
    end_time: ClockTime
    pattern: Pattern
    first_day: date
    last_day: date | None = None  # the series ends on this day, or after `count` dates (one of the two)
    count: Annotated[int, Field(ge=1, le=SERIES_MAX)] | None = None
    purpose: Purpose
    user_class: UserClass = "city_group"
    on_behalf_of: GlobalHandle | Walkin | None = None  # staff only


class SeriesQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    series_id: SeriesId


class SeriesMineQuery(BaseModel):
    model_config = _IN
    actor: Actor


Scope = Literal["one", "following", "all"]


class SeriesChange(BaseModel):
    """Cancel or change one booking of a series (`booking_id`), it and the following ones, or all that are still
    to come. A new time applies to each chosen booking's own date; nothing changes when any of them cannot be had."""

    model_config = _IN
    actor: Actor | None = None
    series_id: SeriesId
    scope: Scope
    booking_id: BookingId | None = None  # required for `one` and `following`
    action: Literal["cancel", "change"]
    start_time: ClockTime | None = None
    end_time: ClockTime | None = None
    purpose: Purpose | None = None


class Missed(Frozen):
    """A date of a series that could not be had, with the refusal a single booking of it got."""

    date: date
    code: str  # booking.slot_taken, booking.closed_day, booking.too_far_ahead, booking.monthly_quota, …
    reason: str


class Series(Frozen):
    id: str
    facility_id: str
    start_time: time
    end_time: time
    pattern: Pattern
    first_day: date
    last_day: date | None
    count: int | None
    purpose: str
    user_class: str
    booker: str | None
    booker_name: str
    booked_by: str | None = None
    missed: list[Missed]  # the dates not had when the series was booked
    created_at: datetime


class SeriesReport(Frozen):
    series: Series
    booked: list[Booking]
    missed: list[Missed]


class SeriesDetail(Frozen):
    series: Series
    bookings: list[Booking]  # every booking of the series (cancelled ones too), by start


class SeriesList(Frozen):
    series: list[Series]


# ---- events -----------------------------------------------------------------------------------------------------

class WaitlistJoined(BookingsEvent):
    entry_id: str
    facility_id: str
    start: datetime
    end: datetime
    person: str
    at: datetime


class SlotOffered(BookingsEvent):
    """The first in line is offered a freed slot until `expires_at` (the notices service may tell them)."""

    entry_id: str
    booking_id: str
    facility_id: str
    start: datetime
    end: datetime
    person: str
    expires_at: datetime
    at: datetime


class OfferExpired(BookingsEvent):
    entry_id: str
    booking_id: str
    facility_id: str
    start: datetime
    person: str
    at: datetime


class SeriesBooked(BookingsEvent):
    series_id: str
    facility_id: str
    booker: str | None
    booked: list[date]
    missed: list[date]
    at: datetime


class SeriesChanged(BookingsEvent):
    series_id: str
    facility_id: str
    scope: Scope
    action: Literal["cancel", "change"]
    booking_ids: list[str]
    at: datetime
