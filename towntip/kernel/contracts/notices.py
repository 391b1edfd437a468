"""Contracts of the notices service (svc.<node>.notices.*): the person's inbox (電子私書箱) of notices (お知らせ) and
official messages from the municipality, the person's own life stage (ライフステージ), and the staff's notices.

A person signed in at this node reads and keeps their own inbox: the service answers only with the actor's rows.
Staff see how many people a notice reached and opened, never who. Who is asking travels inside each request as an
`Actor` (contracts.actor). Other features add their own kinds of inbox item (`kind`), each in its own contracts module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel import categories
from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.contracts.projects import CategoryCode, Fields
from towntip.kernel.errors import Refusal, check_failed

SERVICE = "notices"

# Endpoints (the tail of svc.<node>.notices.<name>).
EP_INBOX_LIST = "inbox.list"  # InboxQuery -> InboxPage (the person's own; newest first)
EP_INBOX_GET = "inbox.get"  # ItemAction -> InboxDetail (the person's own; marks it read)
EP_INBOX_MARK = "inbox.mark"  # MarkIn -> InboxItem (read, unread, archive, unarchive)
EP_LIFE_GET = "life.get"  # PersonQuery -> LifeStage (the person's own answers)
EP_LIFE_PUT = "life.put"  # LifeStagePut -> LifeStage (every field optional; replaces the answers)
EP_LIFE_DELETE = "life.delete"  # PersonQuery -> LifeStage (forgets every answer)
EP_NOTICE_PREVIEW = "notices.preview"  # PreviewIn -> RecipientCount (staff: how many a target reaches, not who)
EP_NOTICE_CREATE = "notices.create"  # NoticeCreate -> StaffNotice (staff; publish now, at a time, or approve first)
EP_NOTICE_APPROVE = "notices.approve"  # NoticeAction -> StaffNotice (staff other than its author)
EP_NOTICE_CORRECT = "notices.correct"  # NoticeCorrect -> StaffNotice (staff; a new version, the old one kept)
EP_NOTICE_WITHDRAW = "notices.withdraw"  # NoticeAction -> StaffNotice (staff; kept, marked withdrawn)
EP_NOTICE_LIST = "notices.list"  # StaffQuery -> StaffNoticeList (staff; newest first)
EP_NOTICE_GET = "notices.get"  # NoticeAction -> StaffNoticeDetail (staff: history, counts of reached and opened)
EP_MESSAGE_SEND = "message.send"  # MessageSend -> MessageSent (services only: an official message to one person)

# Kinds of inbox item this module defines; other features add theirs (contracts.notices_activity, ...).
KIND_NOTICE = "notice"  # a notice written by staff, to many
KIND_MESSAGE = "message"  # an official message to one person (a booking approved, a receipt ready)

PAGE_MAX = 50
TITLE_MAX = 200
BODY_MAX = 10_000
SEARCH_MAX = 100
LINKS_MAX = 5
# A notice to more people than this waits for a second staff member's approval (the node's setting
# `notices_approval_over` overrides it).
APPROVAL_OVER_DEFAULT = 1000
AUDIENCE_MAX = 200_000  # the most handles one audience answer carries (sns, projects)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
ItemId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]
Folder = Literal["inbox", "unread", "archive"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=BODY_MAX)]


def _category(v: str) -> str:
    if v not in categories.codes():
        raise check_failed("category.unknown", "unknown category: {value}", value=v[:20])
    return v


Category = Annotated[CategoryCode, AfterValidator(_category)]

# ---- life stage (ライフステージ・ライフイベント): held by the person, on their home node only -----------------------

AgeBand = Literal["under_20", "20s", "30s", "40s", "50s", "60s", "70s", "80_plus"]
AGE_BANDS: tuple[str, ...] = ("under_20", "20s", "30s", "40s", "50s", "60s", "70s", "80_plus")
LifeEventKind = Literal["moving_in", "birth", "entering_school", "marriage", "retirement", "bereavement"]
LIFE_EVENTS: tuple[str, ...] = ("moving_in", "birth", "entering_school", "marriage", "retirement", "bereavement")
# The life stages a notice may target, derived from the answers (services/notices/life.py says how).
LIFE_STAGES: tuple[str, ...] = (
    "children", "child_preschool", "child_elementary", "child_junior_high", "child_high", "caring", "living_alone",
    "senior", *(f"age_{b}" for b in AGE_BANDS))
Month = Annotated[str, StringConstraints(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")]  # "2027-04"


class LifeEvent(BaseModel):
    model_config = _IN
    kind: LifeEventKind
    month: Month | None = None  # when it happened or will happen (optional)


class LifeAnswers(BaseModel):
    """What a person chose to say. Every field is optional: None or empty means not said."""

    model_config = _IN
    district: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    age_band: AgeBand | None = None
    children_ages: Annotated[list[Annotated[int, Field(ge=0, le=18)]], Field(max_length=10)] = []
    caring: bool = False  # someone in the household is cared for (介護)
    living_alone: bool = False
    events: Annotated[list[LifeEvent], Field(max_length=10)] = []
    interests: Fields = []


class PersonQuery(BaseModel):
    model_config = _IN
    actor: Actor


class LifeStagePut(LifeAnswers):
    actor: Actor


class LifeStage(Frozen):
    answers: LifeAnswers
    updated_at: datetime | None = None  # None: nothing said (or all of it deleted)


# ---- refusals ------------------------------------------------------------------------------------------------------

ITEM_NOT_FOUND = Refusal("inbox.not_found", 404, "no such item in your inbox")
LIFE_DISTRICT_UNKNOWN = Refusal("life.district_unknown", 400, "the district is not one of this town's districts")
LIFE_HOME_ONLY = Refusal("life.home_only", 403, "life-stage answers are kept on the person's home node only")
NOTICE_STAFF_ONLY = Refusal("notice.staff_only", 403, "only staff write and send notices")
NOTICE_NOT_FOUND = Refusal("notice.not_found", 404, "no such notice")
NOTICE_TARGET_UNKNOWN = Refusal("notice.target_unknown", 400,
                                "the target is not one this node knows (district, life stage, event, interest, "
                                "community or theme)")
NOTICE_BAD_PERIOD = Refusal("notice.bad_period", 400, "the notice's validity ends before it starts or has ended")
NOTICE_PUBLISH_PAST = Refusal("notice.publish_in_past", 400, "the publishing time has passed")
NOTICE_SELF_APPROVAL = Refusal("notice.self_approval", 403, "a notice is approved by a staff member other than its "
                               "author")
NOTICE_NOT_AWAITING = Refusal("notice.not_awaiting_approval", 409, "the notice does not wait for approval")
NOTICE_WITHDRAWN = Refusal("notice.withdrawn", 409, "the notice has been withdrawn")
NOTICE_AUDIENCE_UNAVAILABLE = Refusal("notice.audience_unavailable", 503,
                                      "the service holding the community's members or the theme's followers did "
                                      "not answer; try again")
MESSAGE_UNKNOWN_PERSON = Refusal("message.unknown_person", 404, "no such person at this node")

REFUSALS: tuple[Refusal, ...] = (
    ITEM_NOT_FOUND, LIFE_DISTRICT_UNKNOWN, LIFE_HOME_ONLY, NOTICE_STAFF_ONLY, NOTICE_NOT_FOUND,
    NOTICE_TARGET_UNKNOWN, NOTICE_BAD_PERIOD, NOTICE_PUBLISH_PAST, NOTICE_SELF_APPROVAL, NOTICE_NOT_AWAITING,
    NOTICE_WITHDRAWN, NOTICE_AUDIENCE_UNAVAILABLE, MESSAGE_UNKNOWN_PERSON,
)

# ---- the inbox -----------------------------------------------------------------------------------------------------


class InboxQuery(BaseModel):
    model_config = _IN
    actor: Actor
    folder: Folder = "inbox"  # inbox: not archived; unread: not archived and not read; archive: archived
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=SEARCH_MAX)] = ""  # in title and body
    before: AwareDatetime | None = None  # keyset: items delivered before this time
    limit: int = Field(20, ge=1, le=PAGE_MAX)


class ItemAction(BaseModel):
    model_config = _IN
    actor: Actor
    item_id: ItemId


Mark = Literal["read", "unread", "archive", "unarchive"]


class MarkIn(ItemAction):
    mark: Mark


class Link(BaseModel):
    model_config = _IN
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    # absolute http(s), or a path of this node (not `//host`, which leaves it)
    url: Annotated[str, StringConstraints(max_length=500, pattern=r'^(https?://[^\s<>"]+|/([^/\s<>"][^\s<>"]*)?)$')]


class InboxItem(Frozen):
    id: str
    kind: str
    title: str
    sender: str
    category: str | None = None
    delivered_at: datetime
    read_at: datetime | None = None
    archived_at: datetime | None = None
    withdrawn: bool = False
    origin_node: str | None = None  # the town it came from (this node's own, or a followed town's public notice)


class InboxDetail(InboxItem):
    body: str
    links: list[Link] = []
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    version: int = 1  # above 1: corrected since it was sent
    updated_at: datetime | None = None


class InboxPage(Frozen):
    items: list[InboxItem]
    unread: int  # not archived and not read, in the whole inbox
    next_before: datetime | None = None  # the next page's `before`, or None at the end


# ---- notices written by staff ----------------------------------------------------------------------------------------

TargetKind = Literal["everyone", "district", "stage", "event", "interest", "community", "theme"]
TARGET_KINDS: tuple[str, ...] = ("everyone", "district", "stage", "event", "interest", "community", "theme")
NoticeState = Literal["awaiting_approval", "scheduled", "sending", "sent", "withdrawn"]


class Target(BaseModel):
    """Who a notice is for. `value`: the district's name, a LIFE_STAGES or LIFE_EVENTS name, an interest's category
    code, a community's id (sns), a theme as `<node>/<theme id>` (projects: its followers); empty for everyone."""

    model_config = _IN
    kind: TargetKind
    value: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""


class PreviewIn(BaseModel):
    model_config = _IN
    actor: Actor
    target: Target


class RecipientCount(Frozen):
    count: int
    needs_approval: bool  # more than the node's approval threshold
    approval_over: int


class NoticeContent(BaseModel):
    model_config = _IN
    title: Title
    body: Body
    links: Annotated[list[Link], Field(max_length=LINKS_MAX)] = []
    category: Category | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    sender: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""  # the section (担当課)


class NoticeCreate(NoticeContent):
    actor: Actor
    target: Target
    publish_at: AwareDatetime | None = None  # None: now (after approval when it needs one)


class NoticeAction(BaseModel):
    model_config = _IN
    actor: Actor
    notice_id: ItemId


class NoticeCorrect(NoticeContent):
    actor: Actor
    notice_id: ItemId


class StaffQuery(BaseModel):
    model_config = _IN
    actor: Actor
    limit: int = Field(50, ge=1, le=PAGE_MAX)


class StaffNotice(Frozen):
    id: str
    title: str
    category: str | None
    sender: str
    target: Target
    state: NoticeState
    publish_at: datetime | None
    created_by: str
    approved_by: str | None
    recipients: int | None  # counted at sending (None before)
    delivered: int  # inbox rows made so far
    opened: int  # of them, opened at least once: a count, never who
    version: int
    created_at: datetime
    sent_at: datetime | None


class StaffNoticeList(Frozen):
    notices: list[StaffNotice]


class HistoryEntry(Frozen):
    version: int
    action: Literal["created", "approved", "sent", "corrected", "withdrawn"]
    actor: str  # the staff member (their handle), or "service" for the sending job
    at: datetime
    title: str
    body: str


class StaffNoticeDetail(StaffNotice):
    body: str
    links: list[Link]
    valid_from: datetime | None
    valid_until: datetime | None
    history: list[HistoryEntry]


# ---- official messages to one person (services only) --------------------------------------------------------------


class MessageSend(BaseModel):
    """From a service of this node: one message to one person of this node. `key` makes it once-only: the same
    (service, key) again delivers nothing more and answers the first message's id."""

    model_config = _IN
    service: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
    key: Annotated[str, StringConstraints(min_length=1, max_length=150)]
    person: GlobalHandle
    title: Title
    body: Body
    links: Annotated[list[Link], Field(max_length=LINKS_MAX)] = []
    sender: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    ref: Annotated[str, StringConstraints(max_length=100)] | None = None


class MessageSent(Frozen):
    item_id: str
    delivered: bool  # False: the key was seen before, nothing new was delivered


# ---- audiences held by other services (asked by this service when a notice is sent) -------------------------------
# svc.<node>.sns.audience.community (contracts.sns.EP_COMMUNITY_AUDIENCE) and svc.<node>.projects.audience.theme
# (contracts.federation.EP_THEME_AUDIENCE) answer these: the handles only, to the notices service only (the gateway
# may not ask: towntip/node/natsauth.py SERVICE_CALLS).


class CommunityAudienceQuery(BaseModel):
    model_config = _IN
    community_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]


class ThemeAudienceQuery(BaseModel):
    model_config = _IN
    origin_node: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
    theme_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]


class Audience(Frozen):
    handles: list[str]
    known: bool = True  # False: no such community or theme


# ---- events (evt.<node>.notices.<snake_case type>) ----------------------------------------------------------------


class NoticesEvent(Event):
    """The base of this service's events: frozen, versioned, registered for the AsyncAPI document."""

    SERVICE: ClassVar[str] = SERVICE
    IS_EVENT: ClassVar[bool] = False  # a base, on no stream itself


class NoticePublished(NoticesEvent):
    """A notice to everyone of this node (a public notice) was sent: its content, no recipient. Other nodes whose
    people follow this node may take it into their inboxes. A targeted notice is announced without its content
    (`public` False): who it was for stays here."""

    notice_id: str
    public: bool
    title: str = ""
    body: str = ""
    category: str | None = None
    sender: str = ""
    recipients: int
    at: datetime


class NoticeCorrected(NoticesEvent):
    notice_id: str
    version: int
    public: bool
    title: str = ""
    body: str = ""
    at: datetime


class NoticeWithdrawn(NoticesEvent):
    notice_id: str
    at: datetime


class MessageDelivered(NoticesEvent):
    """An official message reached one person's inbox: no content, no person (what a count needs)."""

    item_id: str
    service: str
    at: datetime
