"""Contracts of the points service: the tap a terminal sends, its outcome, queries, and the events announced."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.errors import Refusal, check_failed

MAX_TAP_BYTES = 2048  # a tap is ~250 bytes; anything far larger is refused before parsing

Role = Literal["participant", "volunteer"]
# What a touch means, set on the terminal by staff:
#   checkin   event check-in: points per the event's rule and the role (participant or volunteer);
#   register  card registration: the terminal shows a one-time code the person enters on the portal;
#   donation  a donation recorded at the counter is confirmed by the donor's card (ref = the donation's id);
#   coupon    a coupon is redeemed (ref = the coupon's code), e.g. at the community hall or on the bus.
Mode = Literal["checkin", "register", "donation", "coupon"]
Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{4,64}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
TerminalId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
TapId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]


def _upper(v: str) -> str:
    return v.upper()


# A FeliCa IDm: 8 bytes, written as 16 hex digits.
CardIdm = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{16}$"), AfterValidator(_upper)]


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise check_failed("time.no_timezone", "time must carry a timezone")
    return v


AwareTime = Annotated[datetime, AfterValidator(_aware)]

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=False)


class Tap(BaseModel):
    """A card touched a terminal. Sent on edge.<node>.<terminal>.tap with Nats-Msg-Id = its key."""

    model_config = _STRICT

    v: Literal[1] = 1
    tap_id: TapId
    terminal_id: TerminalId
    card_idm: CardIdm
    event: Code | None = None  # the event checked in to (checkin mode)
    role: Role = "participant"
    mode: Mode = "checkin"
    ref: Ref | None = None  # what the touch confirms, for donation and coupon modes
    tapped_at: AwareTime

    @model_validator(mode="after")
    def _fits_mode(self) -> Tap:
        if self.mode == "checkin" and self.event is None:
            raise ValueError("a check-in names its event")
        if self.mode in ("donation", "coupon") and self.ref is None:
            raise ValueError(f"a {self.mode} touch names what it confirms (ref)")
        return self

    @property
    def key(self) -> str:
        """The idempotency key: made on the terminal, unique for ever (not only inside JetStream's window)."""
        return f"tap:{self.terminal_id}:{self.tap_id}"


class TapOutcome(BaseModel):
    """What the terminal hears back once the tap is decided."""

    model_config = ConfigDict(frozen=True)

    tap_id: str
    # credited: points per the event's rule; duplicate: this very tap was heard before; already: the person (or the
    # card, if bound to nobody) checked in to this event before, by another touch: nothing credited (points: 0).
    status: Literal["credited", "duplicate", "already"]
    points: int
    balance: int
    display: str = ""  # what the terminal shows besides the points, e.g. the registration code


class Heartbeat(BaseModel):
    """A terminal says it is alive, every `interval` seconds: edge.<node>.<terminal>.heartbeat (core NATS, not
    kept in the EDGE stream). The points service keeps the latest per terminal (terminals.list)."""

    model_config = _STRICT

    v: Literal[1] = 1
    terminal_id: TerminalId
    sent_at: AwareTime
    mode: Mode
    event: Code | None = None
    queue: int = Field(ge=0)  # taps in the spool not yet accepted by JetStream
    unsettled: int = Field(ge=0)  # taps accepted but whose outcome was not heard
    last_tap_at: AwareTime | None = None
    version: Annotated[str, StringConstraints(max_length=32)] = ""
    interval: int = Field(default=30, ge=1, le=3600)  # seconds to the next heartbeat: online = seen within 2x


class BalanceQuery(BaseModel):
    model_config = _STRICT

    card_idm: CardIdm


class Balance(BaseModel):
    model_config = ConfigDict(frozen=True)

    asset: str
    balance: int
    taps: int


# What a participation at an event is, in the notebook's words (the seed's sample page: 参加, 実施).
Activity = Literal["participate", "carry_out", "learn"]


def _category(v: str) -> str:
    from towntip.kernel import categories

    if v not in categories.codes():
        raise check_failed("category.unknown", "unknown field {value}: a category code such as npo-7 or pib-16",
                           value=repr(v))
    return v


class EventIn(BaseModel):
    """An event where terminals issue points; the rule (points per role) is set per event."""

    model_config = _STRICT

    code: Code
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    participant_points: int = Field(default=1, ge=0, le=1000)
    volunteer_points: int = Field(default=5, ge=0, le=1000)
    # まちづくり手帳 (services/points/notebook.py): what one participation stands for; all optional.
    field: Annotated[str, AfterValidator(_category)] | None = None  # a category code of the grid (npo-7, pib-16)
    activity: Activity | None = None  # 参加 / 実施 / 受講 (a donation is 寄付, from donations)
    hours: Annotated[float, Field(ge=0, le=168), AfterValidator(lambda v: round(v, 2))] | None = None
    co2_kg: Annotated[float, Field(ge=0, le=100_000), AfterValidator(lambda v: round(v, 3))] | None = None
    kcal: int | None = Field(default=None, ge=0, le=100_000)
    # When and where (issue 17; all optional, changed only when named: null clears one). Times carry their zone
    # (pages show JST); the venue is a facility of the bookings service, with the booking that holds the room.
    starts_at: AwareTime | None = None
    ends_at: AwareTime | None = None
    venue_facility: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")] | None = None
    venue_booking: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,36}$")] | None = None
    venue_name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] | None = None
    capacity: int | None = Field(default=None, ge=1, le=100_000)  # seats for sign-up; None: no limit

    @model_validator(mode="after")
    def _times_in_order(self) -> EventIn:
        if self.starts_at is not None and self.ends_at is not None and self.ends_at <= self.starts_at:
            raise check_failed("event.times", "the event ends before it starts")
        if self.ends_at is not None and self.starts_at is None:
            raise check_failed("event.times", "an end without a start")
        return self


class EventOut(EventIn):
    model_config = ConfigDict(frozen=True)

    taps: int = 0
    points_issued: int = 0
    people: int = 0
    signed_up: int = 0  # people holding a seat (sign-up)
    waitlisted: int = 0
    seats_left: int | None = None  # capacity - signed_up; None: no capacity set


class EventQuery(BaseModel):
    model_config = _STRICT

    code: Code


class EventList(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: list[EventOut]


# ---- events (evt.<node>.points.<event>): each announced through towntip.kernel.bus.outbox from its model -------


class PointsEvent(Event):
    """The base of the points service's events (the ledger's, courses' and donations' too): frozen, versioned,
    registered for the AsyncAPI document."""

    SERVICE: ClassVar[str] = "points"
    IS_EVENT: ClassVar[bool] = False  # a base, on no stream itself


class TapRecorded(PointsEvent):
    """A tap credited (its outcome was "credited"): one per tap, with the batch's time."""

    key: str
    terminal_id: str
    tap_id: str
    event: str
    role: Role
    points: int
    card_ref: str  # keyed hash of the IDm, never the IDm itself
    tapped_at: datetime
    # The person the card is bound to (None: a card bound to nobody): the bookings service checks in their booking
    # at the facility whose terminal this is (services/bookings/checkin.py). Never the IDm.
    person: str | None = None  # global handle, when the people directory knows it
    user_id: str | None = None  # the identity service's user id at this node


class CheckinRepeated(PointsEvent):
    """A check-in touch at an event the person (or the unbound card) had checked in to already: nothing credited
    (TapOutcome "already"). Announced so that what a touch means elsewhere (a booking's check-in) still happens."""

    key: str
    terminal_id: str
    tap_id: str
    event: str
    role: Role
    card_ref: str
    tapped_at: datetime
    person: str | None = None
    user_id: str | None = None


class EventDefined(PointsEvent):
    """An event created or its rule changed (events.put)."""

    code: str
    name: str
    participant_points: int
    volunteer_points: int


# Endpoints of the points service: svc.<node>.points.<endpoint>
SERVICE = "points"
EP_BALANCE = "balance"  # BalanceQuery -> Balance
EP_EVENT_PUT = "events.put"  # EventIn -> EventOut (create or update the rule)
EP_EVENT_GET = "events.get"  # EventQuery -> EventOut
EP_EVENT_LIST = "events.list"  # {} -> EventList


# ---- cards bound to people (svc.<node>.points.cards.*) ----------------------------------------------------------

EP_CARD_BIND_REQUEST = "cards.bind_request"  # CardBindRequest -> CardBindPending
EP_CARD_UNBIND = "cards.unbind"  # CardUnbind -> PersonPoints
EP_PERSON_POINTS = "person.points"  # PersonQuery -> PersonPoints
EP_MY_POINTS = "person.points.mine"  # MyPointsQuery -> PersonPoints (the signed-in person's own; HTTP GET /points/mine)
EP_CARD_REGISTER_CODE = "cards.register_code"  # CardCodeIn -> PersonPoints (the code a terminal showed)

PersonId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]  # the identity service's user id


class CardBindRequest(BaseModel):
    model_config = _STRICT

    person: PersonId
    card_idm: CardIdm


class CardBindPending(Frozen):
    card_ref: str  # the first 8 hex digits of the card's keyed hash: enough to tell one's cards apart
    expires_at: datetime


def _code(v: str) -> str:
    return v.replace("-", "").replace(" ", "").upper()


class CardCodeIn(BaseModel):
    """The one-time code a terminal in registration mode showed (8 letters and digits, dashes and spaces ignored)."""

    model_config = _STRICT

    person: PersonId
    code: Annotated[str, StringConstraints(max_length=20), AfterValidator(_code),
                    AfterValidator(lambda v: v if len(v) == 8 and v.isalnum() else _bad_code())]


def _bad_code() -> str:
    raise check_failed("card.code_malformed", "the code is the 8 letters and digits the terminal showed")


class CardUnbind(BaseModel):
    model_config = _STRICT

    person: PersonId
    card_ref: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8,64}$")]


class PersonQuery(BaseModel):
    model_config = _STRICT

    person: PersonId


class MyPointsQuery(BaseModel):
    """The asking person's own points and cards (the gateway fills `actor` from the bearer token)."""

    model_config = _STRICT

    actor: Actor


class BoundCard(Frozen):
    card_ref: str
    bound_at: datetime


class PersonPoints(Frozen):
    asset: str
    balance: int
    cards: list[BoundCard]
    pending: list[CardBindPending]


# ---- card terminals as the node hears them (svc.<node>.points.terminals.*) ------------------------------------

EP_TERMINALS_LIST = "terminals.list"  # {} -> TerminalList (staff, operator)


class TerminalStatus(BaseModel):
    """One terminal as last heard: from its heartbeats (mode, event, queue, ...) and its taps' arrival."""

    model_config = ConfigDict(frozen=True)

    terminal_id: str
    online: bool  # heard from within 2 x its heartbeat interval
    last_seen_at: datetime  # when the node last heard from it (heartbeat or tap), by the node's clock
    mode: str
    event: str | None = None
    queue: int = 0  # taps on the device not yet accepted by the bus (as of its last heartbeat)
    unsettled: int = 0  # taps accepted whose outcome the terminal has not heard
    last_tap_at: datetime | None = None  # its latest touch, by the terminal's clock
    version: str = ""
    interval: int = 30
    heartbeat_at: datetime | None = None  # when its last heartbeat arrived (None: only taps so far)


class TerminalList(BaseModel):
    model_config = ConfigDict(frozen=True)

    checked_at: datetime
    terminals: list[TerminalStatus]


# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

EVENT_NOT_FOUND = Refusal("event.not_found", 404, "no such event (a tap names an event defined at this node)")
CARD_ALREADY_YOURS = Refusal("card.already_yours", 409, "the card is bound to this account already")
CARD_BOUND_ELSEWHERE = Refusal("card.bound_elsewhere", 409,
                               "the card is bound to another account: it is reported lost there first")
CARD_ALREADY_REGISTERED = Refusal("card.already_registered", 409,
                                  "a registration touch of a card that is registered already")
CARD_NOT_FOUND = Refusal("card.not_found", 404, "no such card is bound to this account")
CARD_CODE_INVALID = Refusal("card.code_invalid", 404, "the registration code is unknown, used or expired")
TAP_MODE_UNSUPPORTED = Refusal("tap.mode_unsupported", 422, "this node does not take touches of that mode")
TAP_ID_REUSED = Refusal("tap.id_reused", 409, "the tap id was already used for another tap")
TAP_REPEAT_OF_REFUSED = Refusal("tap.repeat_of_refused", 422, "a repeat of a touch that was refused")
