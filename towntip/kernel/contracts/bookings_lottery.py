"""Contracts of the bookings service's registered groups (団体登録), its bookers from other nodes, and its lotteries
(抽選) (svc.<node>.bookings.groups.* and .lottery.*).

Groups: a person applies to register a group, of which they are the representative (代表者); staff approve, reject
or suspend it. An approved group books as the group (`BookingCreate.group_id`): the representative or the members
the representative named as bookers, at the `city_group` fee class; the facility's monthly quota then counts per
group.

Lotteries: staff open a round for a facility and a month (every slot of that month on the facility's layout); while
it is undrawn its slots are not booked first come (`booking.in_lottery`). In the application window people (alone
or for their group) enter with one or more ranked choices, at most `max_entries` per applicant. After the window
staff draw: the seed is made at the draw (`secrets`), and the draw is a pure function of the published data
(`LotteryPublication`: the seed, the entries sorted by their public ref, the slots held before the draw): anyone can
recompute it (`lottery.verify`, `python -m services.bookings.lottery_check`). Published entries carry no personal
data: a group's name, or for a person only the entry's random ref (the person sees their own ref on their page).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.bookings import BookingsEvent, FacilityId, Name, Purpose, Text
from towntip.kernel.errors import Refusal

# Endpoints (the tail of svc.<node>.bookings.<name>).
EP_GROUP_APPLY = "groups.apply"  # GroupApply -> Group (signed in: the applicant is the representative)
EP_GROUP_DECIDE = "groups.decide"  # GroupDecide -> Group (staff: approve, reject, suspend, reinstate)
EP_GROUP_GET = "groups.get"  # GroupQuery -> Group (its representative, members, staff)
EP_GROUP_MINE = "groups.mine"  # GroupMineQuery -> GroupList (groups the person represents or belongs to)
EP_GROUP_LIST = "groups.list"  # GroupListQuery -> GroupList (staff: e.g. the queue of applications)
EP_LOTTERY_OPEN = "lottery.open"  # LotteryOpen -> LotteryRound (staff)
EP_LOTTERY_GET = "lottery.get"  # LotteryQuery -> LotteryRound (public: the round, its slots, its entry count)
EP_LOTTERY_LIST = "lottery.list"  # LotteryListQuery -> LotteryRoundList (public)
EP_LOTTERY_ENTER = "lottery.enter"  # LotteryEnter -> LotteryEntry (signed in, in the window)
EP_LOTTERY_WITHDRAW = "lottery.withdraw"  # LotteryEntryAction -> LotteryEntry (its applicant, in the window)
EP_LOTTERY_MINE = "lottery.mine"  # LotteryMineQuery -> LotteryEntryList (the person's entries and results)
EP_LOTTERY_DRAW = "lottery.draw"  # LotteryDraw -> LotteryRound (staff, after the window)
EP_LOTTERY_PUBLISHED = "lottery.published"  # LotteryQuery -> LotteryPublication (public, after the draw)
EP_LOTTERY_VERIFY = "lottery.verify"  # LotteryQuery -> LotteryCheck (public: recomputed from what is published)
EP_LOTTERY_CHECK = "lottery.check"  # LotteryPublication -> LotteryCheck (public: recompute data anyone sends)

MEMBERS_MAX = 100
ENTRIES_MAX = 20  # a round's limit of entries per applicant at most
CHOICES_MAX = 5
# A round's entries at most: what is published (and what lottery.check takes in one request, below the bus's 1 MB
# message) stays bounded; a round that is full refuses further entries (lottery.entry_limit).
ROUND_ENTRIES_MAX = 400
CHECK_MAX_BYTES = 1_000_000
ALGORITHM: Literal["towntip-lottery-v1"] = "towntip-lottery-v1"

GroupState = Literal["pending", "approved", "rejected", "suspended"]
GroupDecision = Literal["approve", "reject", "suspend", "reinstate"]
RoundState = Literal["open", "drawn", "cancelled"]
EntryState = Literal["entered", "withdrawn", "won", "lost"]

# ---- refusals ----------------------------------------------------------------------------------------------------

GROUP_NOT_FOUND = Refusal("group.not_found", 404, "no such registered group (or not yours)")
GROUP_INVALID = Refusal("group.invalid", 400, "the application does not fit together (bookers who are no members, "
                        "a member count below the members named)")
GROUP_NAME_TAKEN = Refusal("group.name_taken", 409, "a group of that name is registered or applying already")
GROUP_STAFF_ONLY = Refusal("group.staff_only", 403, "only staff decide on groups and list them")
GROUP_BAD_DECISION = Refusal("group.bad_decision", 409, "that decision does not apply to the group's state")
GROUP_NOT_APPROVED = Refusal("group.not_approved", 409, "the group is not approved (pending, rejected or suspended)")
GROUP_NOT_BOOKER = Refusal("group.not_booker", 403,
                           "only the group's representative or the members they named book for the group")
BOOKING_OTHER_NODES_CLOSED = Refusal("booking.other_nodes_closed", 403,
                                     "this node does not take bookings from people of other nodes for that facility")
BOOKING_IN_LOTTERY = Refusal("booking.in_lottery", 409,
                             "the slot is in a lottery (抽選) not drawn yet: enter the lottery instead")
LOTTERY_NOT_FOUND = Refusal("lottery.not_found", 404, "no such lottery round (or entry)")
LOTTERY_STAFF_ONLY = Refusal("lottery.staff_only", 403, "only staff open and draw lotteries")
LOTTERY_INVALID = Refusal("lottery.invalid", 400,
                          "the round does not fit: a window that does not close before the month, a month past or "
                          "too far, a month without open slots")
LOTTERY_EXISTS = Refusal("lottery.exists", 409, "the facility has a lottery for that month already")
LOTTERY_NOT_OPEN = Refusal("lottery.window_closed", 409, "the application window is not open (not yet, or over)")
LOTTERY_LIMIT = Refusal("lottery.entry_limit", 409, "the applicant has as many entries in this round as it allows")
LOTTERY_BAD_CHOICE = Refusal("lottery.bad_choice", 400, "a choice is not a slot of the round, or named twice")
LOTTERY_WINDOW_OPEN = Refusal("lottery.still_open", 409, "the application window has not closed yet: draw after it")
LOTTERY_DRAWN = Refusal("lottery.drawn", 409, "the round is drawn already")
LOTTERY_NOT_DRAWN = Refusal("lottery.not_drawn", 409, "the round is not drawn yet: nothing is published")
LOTTERY_BAD_DATA = Refusal("lottery.bad_data", 400,
                           "the data sent to check is no draw's publication (an entry's ref named twice), or not JSON")

REFUSALS: tuple[Refusal, ...] = (
    GROUP_NOT_FOUND, GROUP_INVALID, GROUP_NAME_TAKEN, GROUP_STAFF_ONLY, GROUP_BAD_DECISION, GROUP_NOT_APPROVED,
    GROUP_NOT_BOOKER, BOOKING_OTHER_NODES_CLOSED, BOOKING_IN_LOTTERY, LOTTERY_NOT_FOUND, LOTTERY_STAFF_ONLY,
    LOTTERY_INVALID, LOTTERY_EXISTS, LOTTERY_NOT_OPEN, LOTTERY_LIMIT, LOTTERY_BAD_CHOICE, LOTTERY_WINDOW_OPEN,
    LOTTERY_DRAWN, LOTTERY_NOT_DRAWN, LOTTERY_BAD_DATA,
)
# What a first-come booking may now also answer (added to bookings.create's refusals).
BOOKING_REFUSALS: tuple[Refusal, ...] = (GROUP_NOT_FOUND, GROUP_NOT_APPROVED, GROUP_NOT_BOOKER,
                                         BOOKING_OTHER_NODES_CLOSED, BOOKING_IN_LOTTERY)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
GroupId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]
RoundId = GroupId
EntryId = GroupId
Month = Annotated[str, StringConstraints(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")]
District = Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)]


# `lottery.check` takes data anyone sends (a public POST): its numbers and times are what its JSON Schema says, not
# what pydantic's lax mode also takes (`true` or `false` for an integer, a number of seconds for a time).
def _json_int(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer (a JSON number)")
    return value  # then int: 5.0 becomes 5, 5.5 is refused


def _json_time(value: object) -> object:
    if isinstance(value, int | float):
        raise PydanticCustomError("datetime_type", "Input should be a valid datetime (an ISO 8601 string)")
    return value


JsonTime = Annotated[AwareDatetime, BeforeValidator(_json_time)]


# ---- groups -----------------------------------------------------------------------------------------------------

class GroupApply(BaseModel):
    model_config = _IN
    actor: Actor  # the representative (代表者)
    name: Name
    activity: Text = ""  # 活動内容
    district: District = ""  # 活動地区 (e.g. 大橋地区)
    members: Annotated[list[GlobalHandle], Field(max_length=MEMBERS_MAX)] = []  # members with an account
    bookers: Annotated[list[GlobalHandle], Field(max_length=MEMBERS_MAX)] = []  # members who may book for it
    member_count: Annotated[int, Field(ge=1, le=10_000)]  # 会員数 (members without an account too)


class GroupDecide(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # staff; None: the operator
    group_id: GroupId
    decision: GroupDecision
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class GroupQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    group_id: GroupId


class GroupMineQuery(BaseModel):
    model_config = _IN
    actor: Actor


class GroupListQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    state: GroupState | None = None


class Group(Frozen):
    id: str
    name: str
    representative: str  # global handle
    representative_name: str
    activity: str
    district: str
    members: list[str]
    bookers: list[str]
    member_count: int
    state: GroupState
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_note: str | None = None


class GroupList(Frozen):
    groups: list[Group]


# ---- lotteries --------------------------------------------------------------------------------------------------

class LotteryOpen(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # staff; None: the operator
    facility_id: FacilityId
    month: Month  # the month whose slots are drawn
    opens_at: JsonTime  # the application window
    closes_at: JsonTime
    max_entries: Annotated[int, Field(ge=1, le=ENTRIES_MAX)] = 2  # per group (or person) in this round


class LotteryQuery(BaseModel):
    model_config = _IN
    round_id: RoundId


class LotteryListQuery(BaseModel):
    model_config = _IN
    facility_id: FacilityId | None = None


class Choice(BaseModel):
    """One slot of the round, as its start and end."""

    model_config = _IN
    start: JsonTime
    end: JsonTime


class LotteryEnter(BaseModel):
    model_config = _IN
    actor: Actor
    round_id: RoundId
    choices: Annotated[list[Choice], Field(min_length=1, max_length=CHOICES_MAX)]  # first choice first
    purpose: Purpose
    group_id: GroupId | None = None  # enter for a registered group (its representative or a named booker)
    user_class: Literal["city_group", "outside", "commercial"] = "city_group"  # a group enters as city_group


class LotteryEntryAction(BaseModel):
    model_config = _IN
    actor: Actor
    entry_id: EntryId


class LotteryMineQuery(BaseModel):
    model_config = _IN
    actor: Actor


class LotteryDraw(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    round_id: RoundId


class RoundSlot(Frozen):
    start: datetime  # +09:00
    end: datetime
    name_ja: str | None = None


class LotteryRound(Frozen):
    id: str
    facility_id: str
    month: str
    opens_at: datetime
    closes_at: datetime
    max_entries: int
    state: RoundState
    window: Literal["before", "open", "closed"]  # the application window now
    entries: int  # entries not withdrawn
    applicants: int
    slots: list[RoundSlot]
    seed: str | None = None  # published after the draw
    drawn_at: datetime | None = None
    winners: int = 0
    created_at: datetime


class LotteryRoundList(Frozen):
    rounds: list[LotteryRound]


class LotteryEntry(Frozen):
    id: str  # the entry's public ref in the published data
    round_id: str
    facility_id: str
    month: str
    applicant: str  # as published: the group's name, or the entry's ref for a person
    group_id: str | None
    choices: list[RoundSlot]
    purpose: str
    state: EntryState
    won: RoundSlot | None = None
    booking_id: str | None = None
    created_at: datetime


class LotteryEntryList(Frozen):
    entries: list[LotteryEntry]


class Interval(BaseModel):
    model_config = _IN
    start: JsonTime
    end: JsonTime


class PublishedEntry(BaseModel):
    model_config = _IN
    ref: EntryId
    applicant: Annotated[str, StringConstraints(max_length=120)]
    choices: Annotated[list[Interval], Field(min_length=1, max_length=CHOICES_MAX)]


class PublishedResult(BaseModel):
    model_config = _IN
    ref: EntryId
    # the index of the choice won, None: not drawn (strict: `false` is no index)
    won: Annotated[int, Field(ge=0, lt=CHOICES_MAX), BeforeValidator(_json_int)] | None


class LotteryPublication(BaseModel):
    """What a draw publishes, enough to recompute it: the seed, the entries sorted by ref, the slots held before the
    draw (`held`, with the facility's buffer after each), and the results."""

    model_config = _IN
    algorithm: Literal["towntip-lottery-v1"] = ALGORITHM
    round_id: RoundId
    facility_id: FacilityId
    month: Month
    seed: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    buffer_minutes: Annotated[int, Field(ge=0, le=240), BeforeValidator(_json_int)]
    held: Annotated[list[Interval], Field(max_length=ROUND_ENTRIES_MAX)]
    entries: Annotated[list[PublishedEntry], Field(max_length=ROUND_ENTRIES_MAX)]
    results: Annotated[list[PublishedResult], Field(max_length=ROUND_ENTRIES_MAX)]


class LotteryCheck(Frozen):
    round_id: str
    matches: bool
    entries: int
    winners: int
    recomputed: list[PublishedResult]
    differences: list[str]  # the refs whose published result differs from the recomputed one


# ---- events -----------------------------------------------------------------------------------------------------

class GroupApplied(BookingsEvent):
    group_id: str
    name: str
    representative: str
    at: datetime


class GroupRegistered(BookingsEvent):
    """Staff approved the group: it books as the group from now."""

    group_id: str
    name: str
    representative: str
    at: datetime


class GroupStateChanged(BookingsEvent):
    """Staff rejected, suspended or reinstated a group."""

    group_id: str
    name: str
    representative: str
    state: GroupState
    note: str
    at: datetime


class LotteryOpened(BookingsEvent):
    round_id: str
    facility_id: str
    month: str
    opens_at: datetime
    closes_at: datetime
    max_entries: int
    at: datetime


class LotteryDrawn(BookingsEvent):
    round_id: str
    facility_id: str
    month: str
    seed: str
    entries: int
    winners: int
    at: datetime


class LotteryResult(BookingsEvent):
    """One per entry after the draw: the applicant is told whether they won and which slot."""

    round_id: str
    entry_id: str
    facility_id: str
    applicant: str  # the person who entered (global handle)
    group_id: str | None
    won: bool
    booking_id: str | None
    start: datetime | None
    end: datetime | None
    at: datetime
