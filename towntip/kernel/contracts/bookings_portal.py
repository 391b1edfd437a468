"""Contracts the portal's booking pages add to the bookings service (svc.<node>.bookings.*, issue 17 points 3 and 8):
the staff's day sheet (当日の利用一覧) and usage figures (稼働率), and what the iCalendar feeds are made of: a
facility's busy times (no personal data) and a person's private feed, reached by a token only they hold.

The feed token is made by the service, shown to the person once, and stored only as its SHA-256: a leaked
database does not open anyone's feed, and resetting the token closes the old URL.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.bookings import Booking, FacilityId
from towntip.kernel.errors import Refusal

EP_DAY_SHEET = "bookings.day"  # DaySheetQuery -> DaySheet (staff: every facility's bookings of one day)
EP_USAGE = "bookings.usage"  # UsageQuery -> Usage (staff: 稼働率 per facility of one month, by user class)
EP_OVERVIEW = "bookings.overview"  # OverviewQuery -> Overview (the person: upcoming, past, cancelled; by the
# service's clock)
EP_FACILITY_BUSY = "feeds.facility"  # BusyQuery -> Busy (public: held times, no personal data)
EP_FEED_TOKEN = "feeds.token"  # FeedTokenIn -> FeedToken (the person: a new private feed token, the old one void)
EP_FEED_STATUS = "feeds.status"  # FeedStatusQuery -> FeedStatus (the person: whether they have a feed, since when)
EP_FEED_PERSON = "feeds.person"  # FeedQuery -> PersonFeed (the gateway, for whoever holds the token)

FEED_PAST_DAYS = 31  # a feed shows bookings from this many days back
FEED_DAYS_AHEAD = 400  # ... to this many days ahead (a facility's rules open bookings at most 400 days ahead)
BUSY_MAX_DAYS = 62

DAY_STAFF_ONLY = Refusal("bookings.staff_only", 403, "only staff see the day sheet and the usage figures")
FEED_NOT_FOUND = Refusal("feed.not_found", 404, "no feed with that token (it may have been reset)")
REFUSALS: tuple[Refusal, ...] = (DAY_STAFF_ONLY, FEED_NOT_FOUND)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
Month = Annotated[str, StringConstraints(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")]
FeedTokenText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{32,64}$")]


class DaySheetQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # staff; None: the node's operator
    date: date
    include_cancelled: bool = True


class DayFacility(Frozen):
    id: str
    name_ja: str
    name_en: str


class DayEntry(Frozen):
    """A booking on the day sheet: the booking, its facility and how to reach a walk-in (staff only)."""

    booking: Booking
    facility_name_ja: str
    contact_phone: str | None = None


class DaySheet(Frozen):
    date: date
    facilities: list[DayFacility]
    entries: list[DayEntry]  # in order of time, then facility


class UsageQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    month: Month


class FacilityUsage(Frozen):
    facility_id: str
    name_ja: str
    name_en: str
    open_minutes: int  # the month's bookable slot time (open days, slots of the layout)
    booked_minutes: int  # time of bookings that were granted (confirmed, checked in, or no-show)
    bookings: int
    rate: float  # booked / open (0 when nothing was open)
    by_class: dict[str, int]  # booked minutes per user class (city_group, outside, commercial)


class Usage(Frozen):
    month: str
    facilities: list[FacilityUsage]


class OverviewQuery(BaseModel):
    model_config = _IN
    actor: Actor


class Overview(Frozen):
    """A person's bookings split by the service's clock: upcoming (holding a slot, not ended), past (ended, or a
    no-show), ended (cancelled or declined); the newest 100 of each kind at most."""

    today: date
    upcoming: list[Booking]  # soonest first
    past: list[Booking]  # latest first
    ended: list[Booking]  # latest start first
    facility_names: dict[str, str]


class BusyQuery(BaseModel):
    model_config = _IN
    facility_id: FacilityId
    start: date | None = None  # None: a week before today (the service's clock)
    days: Annotated[int, Field(ge=1, le=BUSY_MAX_DAYS)] = 62


class BusyTime(Frozen):
    start: datetime  # +09:00
    end: datetime
    state: str


class Busy(Frozen):
    facility_id: str
    name_ja: str
    name_en: str
    address: str
    times: list[BusyTime]


class FeedTokenIn(BaseModel):
    model_config = _IN
    actor: Actor


class FeedToken(Frozen):
    token: str  # shown once: the service keeps only its hash
    created_at: datetime


class FeedStatusQuery(BaseModel):
    model_config = _IN
    actor: Actor


class FeedStatus(Frozen):
    active: bool
    created_at: datetime | None = None


class FeedQuery(BaseModel):
    model_config = _IN
    token: FeedTokenText


class PersonFeed(Frozen):
    booker: str
    bookings: list[Booking]  # holding slots, from FEED_PAST_DAYS back
    facility_names: dict[str, str]  # facility id -> name_ja
