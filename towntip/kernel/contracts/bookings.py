"""Contracts of the bookings service (svc.<node>.bookings.*): facilities (施設・設備) with their opening hours, closed
days (休館日) and Japanese public holidays, slot layout, fees and rules; their availability; bookings (予約).

Reading facilities and their availability is public. A person signed in at this node books for themself; staff
(role `staff` or `secretariat`) book at the counter (窓口予約) on behalf of a person (`on_behalf_of`: their global
handle) or of someone without an account (`{"name", "phone"}`), and create and change facilities. On the bus, NATS
permissions let only the gateway and the operator call these endpoints. A change without an actor comes from the
node's operator: the operator's tooling (`towntip demo seed`), or the node's admin token over HTTP (the gateway
passes no actor for it): it may do what staff may, and books only on behalf of someone (`booked_by` "operator").

Times cross the boundary as ISO 8601 with an offset; the service works in Japan's time (Asia/Tokyo, +09:00) and
answers with +09:00.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel, StringConstraints

from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.errors import Refusal

SERVICE = "bookings"
TIMEZONE = "Asia/Tokyo"  # every facility of a node is in Japan: hours, days and months are counted in JST

# Endpoints (the tail of svc.<node>.bookings.<name>).
EP_FACILITY_PUT = "facilities.put"  # FacilityPut -> Facility (staff, or the operator: create or replace by id)
EP_FACILITY_LIST = "facilities.list"  # FacilityListQuery -> FacilityList (public)
EP_FACILITY_GET = "facilities.get"  # FacilityQuery -> Facility (public)
EP_AVAILABILITY = "facilities.availability"  # AvailabilityQuery -> Availability (public; one day)
EP_BOOKING_CREATE = "bookings.create"  # BookingCreate -> Booking (signed in; staff also on behalf of someone)
EP_BOOKING_CANCEL = "bookings.cancel"  # BookingAction -> Booking (its booker, or staff)
EP_BOOKING_GET = "bookings.get"  # BookingAction -> Booking (its booker, or staff)
EP_BOOKING_MINE = "bookings.mine"  # MineQuery -> BookingList (the person's own, newest start first)

# Limits.
NAME_MAX = 100
TEXT_MAX = 1000
PURPOSE_MAX = 200
PAGE_MAX = 100
MAX_DAYS_AHEAD_LIMIT = 400  # a facility's rule may not open bookings further ahead than this

# States of a booking, and which of them hold the slot (the PostgreSQL exclusion constraint lists the holding ones:
# migration 0002; a change to HOLDING_STATES needs a migration that redefines it).
#   requested   waits for staff approval (the facility's rule `needs_approval`)           holds
#   offered     a freed slot offered to the next on the waitlist until `offer_expires_at`   holds
#   confirmed   granted (a fee may still be due by `fee_due_at`: `paid_at` says when paid)  holds
#   checked_in  the booker touched a card at the facility's terminal, or staff checked in   holds
#   cancelled   by the booker, staff, or the service (`cancel_reason`: booker, staff, unpaid, offer_expired,
#               series, lottery); a cancellation fee may apply (`cancellation_fee`)
#   rejected    staff declined the request (`decision_note` says why)
#   no_show     not checked in within the facility's no-show time: the rest of the slot is released
State = Literal["requested", "offered", "confirmed", "checked_in", "cancelled", "rejected", "no_show"]
STATES: tuple[str, ...] = ("requested", "offered", "confirmed", "checked_in", "cancelled", "rejected", "no_show")
HOLDING_STATES: tuple[str, ...] = ("requested", "offered", "confirmed", "checked_in")
# Where a booking came from.
Origin = Literal["direct", "counter", "series", "lottery", "waitlist"]
ORIGINS: tuple[str, ...] = ("direct", "counter", "series", "lottery", "waitlist")
# How a fee was paid: local currency or a coupon through the points service's ledger, or cash at the counter.
PaidWith = Literal["currency", "coupon", "counter"]
CancelReason = Literal["booker", "staff", "unpaid", "offer_expired", "series", "lottery"]

# Classes of user a fee depends on (市内団体 / 市外 / 営利).
UserClass = Literal["city_group", "outside", "commercial"]
USER_CLASSES: dict[str, tuple[str, str]] = {
    "city_group": ("市内団体", "group based in the city"),
    "outside": ("市外", "from outside the city"),
    "commercial": ("営利", "commercial use"),
}

# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

FACILITY_NOT_FOUND = Refusal("facility.not_found", 404, "no such facility on this node")
FACILITY_STAFF_ONLY = Refusal("facility.staff_only", 403, "only staff create and change facilities")
FACILITY_INVALID = Refusal("facility.invalid", 400,
                           "the facility's hours, slot layout or fees do not fit together")
AVAILABILITY_RANGE = Refusal("availability.out_of_range", 400, "the date is too far in the past or the future")
BOOKING_NOT_FOUND = Refusal("booking.not_found", 404, "no such booking (or not yours)")
BOOKING_TAKEN = Refusal("booking.slot_taken", 409, "another booking holds (part of) that time")
BOOKING_PAST = Refusal("booking.in_past", 400, "the time has passed")
BOOKING_NOTICE = Refusal("booking.too_short_notice", 400, "the facility needs more notice than that")
BOOKING_TOO_FAR = Refusal("booking.too_far_ahead", 400, "the facility does not take bookings that far ahead")
BOOKING_CLOSED_DAY = Refusal("booking.closed_day", 400,
                             "the facility is closed that day (休館日 or a public holiday)")
BOOKING_OUTSIDE_HOURS = Refusal("booking.outside_hours", 400, "the time is outside the facility's opening hours")
BOOKING_OFF_LAYOUT = Refusal("booking.not_on_layout", 400,
                             "the start or end is not on the facility's slot layout")
BOOKING_TOO_LONG = Refusal("booking.too_long", 400, "longer than the facility allows for one booking")
BOOKING_BAD_RANGE = Refusal("booking.bad_range", 400, "the end is not after the start, or they are on two days")
BOOKING_QUOTA = Refusal("booking.monthly_quota", 409, "the person has as many bookings that month as the facility "
                        "allows")
BOOKING_STAFF_ONLY = Refusal("booking.staff_only", 403, "only staff book on behalf of someone else")
BOOKING_NOT_YOURS = Refusal("booking.not_yours", 403, "only its booker or staff may do this")
BOOKING_CANCELLED = Refusal("booking.already_cancelled", 409, "the booking is cancelled already")
BOOKING_STARTED = Refusal("booking.already_started", 409, "the booking has started: it can no longer be cancelled")
BOOKING_BEHALF_REQUIRED = Refusal("booking.on_behalf_required", 400,
                                  "the admin token is no person: it books only on behalf of someone")
BOOKING_UNKNOWN_NODE = Refusal("booking.other_node", 400,
                               "the facility id names a facility of another node: book it there")

REFUSALS: tuple[Refusal, ...] = (
    FACILITY_NOT_FOUND, FACILITY_STAFF_ONLY, FACILITY_INVALID, AVAILABILITY_RANGE, BOOKING_NOT_FOUND, BOOKING_TAKEN,
    BOOKING_PAST, BOOKING_NOTICE, BOOKING_TOO_FAR, BOOKING_CLOSED_DAY, BOOKING_OUTSIDE_HOURS, BOOKING_OFF_LAYOUT,
    BOOKING_TOO_LONG, BOOKING_BAD_RANGE, BOOKING_QUOTA, BOOKING_STAFF_ONLY, BOOKING_NOT_YOURS, BOOKING_CANCELLED,
    BOOKING_STARTED, BOOKING_BEHALF_REQUIRED, BOOKING_UNKNOWN_NODE,
)
OPERATOR = "operator"  # `booked_by` / `cancelled_by` of a change made without an actor (the admin token)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
# At least one character that is not white space (Unicode's White_Space, what strip_whitespace removes), written as
# an explicit class so that JSON Schema, Python and pydantic-core read it alike (as gateway/api/types.py does): the
# schema then says that a text of white space only is refused.
_WHITE_SPACE = ((0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))
NOT_BLANK = "[^" + "".join(f"\\u{a:04x}" + (f"-\\u{b:04x}" if b != a else "") for a, b in _WHITE_SPACE) + "]"
FacilityId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,47}$")]
BookingId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX, pattern=NOT_BLANK)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=TEXT_MAX)]
Purpose = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=PURPOSE_MAX,
                                           pattern=NOT_BLANK)]
Yen = Annotated[int, Field(ge=0, le=10_000_000)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # by date.weekday()
MonthDay = Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]  # "12-29"
Fees = dict[UserClass, Yen]


# ---- facilities -------------------------------------------------------------------------------------------------

# What ties fields together (open before close, blocks in order and apart, inside the hours) is no part of the
# schema: the service checks it and answers `facility.invalid` with the reason (services/bookings/facilities.py).

class Hours(BaseModel):
    """Opening hours of one weekday (open before close, the same day)."""

    model_config = _IN
    open: time
    close: time


class Block(BaseModel):
    """A fixed block of the day (the 公民館's 午前 9:00-12:00, 午後 13:00-17:00, 夜間 18:00-21:30), its fee per
    class of user."""

    model_config = _IN
    name_ja: Name
    name_en: Name
    start: time
    end: time
    fees: Fees = {}


class Blocks(BaseModel):
    """Bookable in fixed blocks: a booking starts at a block's start and ends at a block's end (one block, or
    several in a row: 午前・午後通し)."""

    model_config = _IN
    kind: Literal["blocks"]
    blocks: Annotated[list[Block], Field(min_length=1, max_length=12)]  # in order of time, not overlapping


class Grid(BaseModel):
    """Bookable on a grid: start and end on a multiple of `step_minutes` from the opening time; the fee is per
    step."""

    model_config = _IN
    kind: Literal["grid"]
    step_minutes: Annotated[int, Field(ge=5, le=240)] = 30
    fees_per_step: Fees = {}


class CancelTier(BaseModel):
    """A cancellation by the booker `days_before` days or fewer before the start keeps `percent` of a paid fee
    (the tier with the fewest days that still covers the notice applies; services/bookings/life.py)."""

    model_config = _IN
    days_before: Annotated[int, Field(ge=0, le=MAX_DAYS_AHEAD_LIMIT)]
    percent: Annotated[int, Field(ge=0, le=100)]


class Rules(BaseModel):
    model_config = _IN
    max_days_ahead: Annotated[int, Field(ge=0, le=MAX_DAYS_AHEAD_LIMIT)] = 90  # the start at most this many days on
    min_notice_minutes: Annotated[int, Field(ge=0, le=60 * 24 * 60)] = 0  # booked at least this long before
    max_per_month: Annotated[int, Field(ge=1, le=1000)] | None = None  # per person, by the month of the start
    max_minutes: Annotated[int, Field(ge=5, le=24 * 60)] | None = None  # one booking's length at most
    needs_approval: bool = False  # True: a booking waits as `requested` for staff (the approval queue is next)
    # Fees (services/bookings/life.py): a fee is due `pay_within_days` after confirmation, and never later than the
    # end of the day before the start; unpaid by then, the booking cancels itself.
    pay_within_days: Annotated[int, Field(ge=1, le=60)] = 7
    # Kept of a paid fee when the booker cancels, by notice (none: cancelling is free); the rest is refunded.
    cancel_fees: Annotated[list[CancelTier], Field(max_length=10)] = []
    # Coupon kinds (the points service's coupon type codes) accepted for this facility's fee, e.g. kominkan-fee.
    coupon_types: Annotated[list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]],
                            Field(max_length=10)] = []
    offer_hours: Annotated[int, Field(ge=1, le=24 * 14)] = 24  # a waitlist offer is open this long (or until the start)
    # People of other nodes (logged in with their home ID) book here too; False: only when the node's setting
    # `bookings_open_to_other_nodes` says so (contracts.bookings_lottery BOOKING_OTHER_NODES_CLOSED).
    open_to_other_nodes: bool = False
    # Check-in (contracts/bookings_checkin.py): a confirmed booking not checked in this long after its start is
    # released as a no-show (None: never); the card terminals at the facility whose touch checks a booking in.
    no_show_minutes: Annotated[int, Field(ge=5, le=24 * 60)] | None = None
    terminal_ids: Annotated[list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]],
                            Field(max_length=20)] = []


class FacilityPut(BaseModel):
    """A facility as staff describe it: created, or replaced whole when `id` exists (bookings stay)."""

    model_config = _IN
    actor: Actor | None = None  # a staff member; None only from the operator's tooling (bus only)
    id: FacilityId
    name_ja: Name
    name_en: Name
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")] = "room"  # room, hall, kitchen, …
    address: Text = ""
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    capacity: Annotated[int, Field(ge=1, le=100_000)] | None = None
    accessibility: Text = ""  # 車いす対応, elevator, hearing loop, …
    note: Text = ""  # e.g. which details are sample values
    hours: dict[Weekday, Hours]  # {"mon": {"open": "09:00", "close": "21:30"}, …}; a weekday missing: closed
    closed_weekdays: Annotated[list[Weekday], Field(max_length=7)] = []  # 休館日 by weekday
    closed_dates: Annotated[list[date], Field(max_length=400)] = []  # 休館日 on given dates
    closed_yearly: Annotated[list[MonthDay], Field(max_length=60)] = []  # every year, e.g. 12-29 … 01-03 (年末年始)
    closed_on_holidays: bool = True  # Japan's public holidays (祝日), from the jpholiday package
    layout: Annotated[Blocks | Grid, Field(discriminator="kind")]
    buffer_minutes: Annotated[int, Field(ge=0, le=240)] = 0  # kept free after each booking (set-up, cleaning)
    rules: Rules = Rules()


class FacilityListQuery(BaseModel):
    model_config = _IN
    kind: str | None = None


class FacilityQuery(BaseModel):
    model_config = _IN
    facility_id: FacilityId


class Facility(Frozen):
    id: str
    name_ja: str
    name_en: str
    kind: str
    address: str
    lat: float | None
    lon: float | None
    capacity: int | None
    accessibility: str
    note: str
    hours: dict[str, Hours]
    closed_weekdays: list[str]
    closed_dates: list[date]
    closed_yearly: list[str]
    closed_on_holidays: bool
    layout: Annotated[Blocks | Grid, Field(discriminator="kind")]
    buffer_minutes: int
    rules: Rules
    created_at: datetime
    updated_at: datetime


class FacilityList(RootModel[list[Facility]]):
    """GET /api/v1/facilities: a JSON list, each facility with its `id`."""

    model_config = ConfigDict(frozen=True)


# ---- availability -----------------------------------------------------------------------------------------------

class AvailabilityQuery(BaseModel):
    model_config = _IN
    facility_id: FacilityId
    date: date


class Slot(Frozen):
    start: datetime  # +09:00
    end: datetime
    free: bool
    name_ja: str | None = None  # the block's name (午前, 午後, 夜間), None on a grid


class Availability(Frozen):
    facility_id: str
    date: date
    closed: bool  # a closed day (休館日) or a public holiday: no slot is free
    closed_reason: str | None = None  # e.g. "public holiday: 文化の日", "closed on Mondays"
    slots: list[Slot]


# ---- bookings ---------------------------------------------------------------------------------------------------

class Walkin(BaseModel):
    """Someone without an account, booked at the counter."""

    model_config = _IN
    name: Name
    phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 -]{4,18}[0-9]$")]


class BookingCreate(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # None: the node's operator (admin token), who books only on behalf of someone
    facility_id: Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=NOT_BLANK)]  # id[@node]
    start: AwareDatetime
    end: AwareDatetime
    purpose: Purpose
    user_class: UserClass = "city_group"
    on_behalf_of: GlobalHandle | Walkin | None = None  # staff only: the person (or walk-in) the booking is for
    # For a registered group (団体): its representative, a member they named, or staff; fee class city_group, and
    # the monthly quota counts per group (contracts.bookings_lottery).
    group_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")] | None = None


class BookingAction(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # None: the node's operator (admin token), as staff
    booking_id: BookingId


class MineQuery(BaseModel):
    model_config = _IN
    actor: Actor
    include_cancelled: bool = False
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 50


class Booking(Frozen):
    id: str
    facility_id: str
    start: datetime  # +09:00
    end: datetime
    state: State
    purpose: str
    user_class: str
    fee: int  # yen, from the facility's fees for that class when booked (0: no fee set)
    booker: str | None  # the person's global handle; None for a walk-in
    booker_name: str  # display name, or the walk-in's name
    booked_by: str | None = None  # the staff member's handle when booked at the counter ("operator": admin token)
    created_at: datetime
    cancelled_at: datetime | None = None
    origin: Origin = "direct"
    group_id: str | None = None  # booked for a registered group (団体)
    series_id: str | None = None  # one of a recurring series
    fee_due_at: datetime | None = None  # an unpaid fee must be paid by then, or the booking cancels itself
    paid_at: datetime | None = None
    paid_with: PaidWith | None = None
    cancel_reason: CancelReason | None = None
    cancellation_fee: int = 0  # yen kept when cancelled late (the facility's tiers by notice)
    checked_in_at: datetime | None = None
    offer_expires_at: datetime | None = None  # state `offered`: accept before this, or the next in line gets it
    decided_by: str | None = None  # staff who approved or rejected a request
    decision_note: str | None = None  # the reason given with an approval or a rejection
    payment_ref: str | None = None  # the points ledger's entry, or the counter's receipt number
    refund_due: int | None = None  # a cancelled paid booking: what goes back to the booker (fee less the kept part)
    refunded_at: datetime | None = None  # when the points service refunded it


class BookingList(Frozen):
    bookings: list[Booking]


# ---- events (evt.<node>.bookings.<snake_case type>) -------------------------------------------------------------

class BookingsEvent(Event):
    SERVICE: ClassVar[str] = SERVICE
    IS_EVENT: ClassVar[bool] = False


class FacilityUpdated(BookingsEvent):
    facility_id: str
    name_ja: str
    created: bool
    at: datetime


class BookingConfirmed(BookingsEvent):
    """A booking holds its slot for good (at once, or later when staff approve). No contact details: a walk-in's
    name and phone stay in the service's database."""

    booking_id: str
    facility_id: str
    start: datetime
    end: datetime
    booker: str | None  # global handle; None for a walk-in
    at_counter: bool
    fee: int
    at: datetime


class BookingCancelled(BookingsEvent):
    booking_id: str
    facility_id: str
    start: datetime
    end: datetime
    booker: str | None
    by: Literal["booker", "staff", "service"]  # service: the fee was not paid by its deadline
    at: datetime
    reason: CancelReason | None = None  # added in version 1 (additive): booker, staff, unpaid, …
    cancellation_fee: int = 0  # yen kept of a paid fee (the facility's tiers by notice)
