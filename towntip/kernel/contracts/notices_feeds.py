"""Contracts of the notices service's collected feeds and calendar (svc.<node>.notices.feeds.* / calendar.*, issue 18
points 5 and 7): staff register feeds of other sites (RSS, Atom, iCalendar, a JSON list), the service reads each on
its schedule and keeps every item once; items with a date become calendar entries, the others public notices.

The private calendar is reached by a token the service makes, shows once and keeps only as its SHA-256 (as the
bookings feed does): a leaked database opens nobody's calendar, and a new token closes the old URL.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.categories import FAMILIES, codes
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.notices import NoticesEvent
from towntip.kernel.errors import Refusal

EP_FEED_REGISTER = "feeds.register"  # FeedCreate -> Feed (staff; read at once, then on its schedule)
EP_FEED_LIST = "feeds.list"  # FeedListQuery -> FeedList (staff: every feed, its state and last error)
EP_FEED_POLL = "feeds.poll"  # FeedAction -> Feed (staff: read it now)
EP_FEED_PAUSE = "feeds.pause"  # FeedPause -> Feed (staff: stop or resume reading it; its items stay)
EP_FEED_RULES = "feeds.rules"  # RulesQuery -> Rules (staff: the sorting rules)
EP_FEED_RULES_PUT = "feeds.rules.put"  # RulesPut -> Rules (staff: replace the sorting rules)
EP_FEED_ITEMS = "feeds.items"  # ItemsQuery -> ItemList (public: collected notices, newest first)
EP_PUBLIC = "feeds.public"  # PublicQuery -> PublicNotices (public: notices to everyone and collected, for Atom)
EP_CALENDAR = "calendar.entries"  # CalendarQuery -> CalendarEntries (public: collected items with a date)
EP_CALENDAR_TOKEN = "calendar.token"  # CalendarTokenIn -> CalendarToken (the person: a new private URL)
EP_CALENDAR_STATUS = "calendar.status"  # CalendarStatusQuery -> CalendarStatus (the person)
EP_CALENDAR_HOLDER = "calendar.holder"  # CalendarHolderQuery -> CalendarHolder (the gateway: whose token it is)

FEED_STAFF_ONLY = Refusal("feeds.staff_only", 403, "only staff manage collected feeds")
FEED_NOT_FOUND = Refusal("feeds.not_found", 404, "no feed with that id")
FEED_DUPLICATE = Refusal("feeds.duplicate", 409, "that URL is already registered")
# Why a feed is refused at registration or marked broken: the same codes on the staff page.
FEED_BAD_URL = Refusal("feeds.bad_url", 400, "the URL is not an http or https address of a site")
FEED_ADDRESS_REFUSED = Refusal("feeds.address_refused", 400, "the site's address is private or reserved")
FEED_UNREACHABLE = Refusal("feeds.unreachable", 502, "the site could not be reached")
FEED_TIMEOUT = Refusal("feeds.timeout", 504, "the site answered too slowly")
FEED_TOO_LARGE = Refusal("feeds.too_large", 502, "the feed is larger than the node reads")
FEED_HTTP_STATUS = Refusal("feeds.http_status", 502, "the site answered with an error")
FEED_MALFORMED = Refusal("feeds.malformed", 502, "the answer is not an RSS, Atom, iCalendar or JSON feed")
CALENDAR_TOKEN_UNKNOWN = Refusal("calendar.token_unknown", 404, "no calendar with that token (it may have been reset)")
# The reasons a feed can be broken, in the order the staff page explains them.
BROKEN: tuple[Refusal, ...] = (
    FEED_BAD_URL,
    FEED_ADDRESS_REFUSED,
    FEED_UNREACHABLE,
    FEED_TIMEOUT,
    FEED_TOO_LARGE,
    FEED_HTTP_STATUS,
    FEED_MALFORMED,
)
REFUSALS: tuple[Refusal, ...] = (FEED_STAFF_ONLY, FEED_NOT_FOUND, FEED_DUPLICATE, *BROKEN, CALENDAR_TOKEN_UNKNOWN)

MIN_EVERY_MINUTES = 5  # a site is not asked more often than this
DEFAULT_EVERY_MINUTES = 60
CALENDAR_MAX_DAYS = 400
FeedState = Literal["new", "ok", "broken", "paused"]
ItemKind = Literal["notice", "event"]  # an item with a start time is a calendar entry


def _category(value: str) -> str:
    if value not in codes() and value not in {f[0] for f in FAMILIES}:
        raise ValueError("not a category of the grid (npo-7, pib-16) nor a family (town, health, ...)")
    return value


Category = Annotated[str, AfterValidator(_category)]
_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
FeedId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,36}$")]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://\S+$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TokenText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{32,64}$")]
CommunityId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class FeedCreate(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # staff; None: the node's operator (its admin token)
    url: Url
    title: Title
    category: Category = "town"  # where its items go unless a rule says otherwise
    every_minutes: int = Field(default=DEFAULT_EVERY_MINUTES, ge=MIN_EVERY_MINUTES, le=7 * 24 * 60)
    community_id: CommunityId | None = None  # its events also on this community's calendar


class FeedAction(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    feed_id: FeedId


class FeedPause(FeedAction):
    paused: bool = True


class FeedListQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None


class Feed(Frozen):
    id: str
    url: str
    title: str
    category: str
    every_minutes: int
    community_id: str | None
    state: FeedState
    error_code: str | None  # why it is broken (a FEED_* code), for the staff page to translate
    error: str | None  # the detail, in English (the site's status, the address it resolved to)
    items: int
    last_polled_at: datetime | None
    last_ok_at: datetime | None
    next_poll_at: datetime | None
    created_at: datetime


class FeedList(Frozen):
    feeds: list[Feed]


class Rule(BaseModel):
    """Items whose title, summary or the site's own category contain `keyword` go to `category` (the first rule
    that matches wins; no match: the feed's category)."""

    model_config = _IN
    keyword: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    category: Category


class RulesPut(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    rules: Annotated[list[Rule], Field(max_length=200)]


class RulesQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None


class Rules(Frozen):
    rules: list[Rule]


class ItemsQuery(BaseModel):
    model_config = _IN
    kind: ItemKind | None = None
    category: Category | None = None
    limit: int = Field(default=50, ge=1, le=200)


class Item(Frozen):
    id: str
    feed_id: str
    source: str  # the feed's title
    title: str
    link: str | None
    summary: str  # plain text
    category: str
    kind: ItemKind
    published_at: datetime | None
    starts_at: datetime | None
    ends_at: datetime | None
    all_day: bool
    location: str | None
    community_id: str | None
    first_seen_at: datetime
    updated_at: datetime


class ItemList(Frozen):
    items: list[Item]


class PublicQuery(BaseModel):
    model_config = _IN
    limit: int = Field(default=50, ge=1, le=200)


class PublicNotice(Frozen):
    """A public notice of this node: one staff sent to everyone (`source` empty), or one collected from a site."""

    id: str
    title: str
    summary: str
    link: str | None  # the site's page of a collected one; None: the node's own (its entry on /notices#n-<id>)
    category: str | None
    source: str  # the collected feed's title; "" for the node's own
    published_at: datetime
    updated_at: datetime


class PublicNotices(Frozen):
    notices: list[PublicNotice]  # newest first


class CalendarQuery(BaseModel):
    model_config = _IN
    start: Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]  # a span the calendar can hold
    days: int = Field(default=62, ge=1, le=CALENDAR_MAX_DAYS)
    community_id: CommunityId | None = None


class CalendarNotice(Frozen):
    """One of the node's notices to everyone with a date (its validity): on the public calendars."""

    id: str
    title: str
    starts_at: datetime  # the notice's valid_from
    ends_at: datetime | None  # its valid_until
    sender: str = ""


class CalendarEntries(Frozen):
    start: date
    days: int
    items: list[Item]  # in order of start time
    notices: list[CalendarNotice] = []  # the node's own notices to everyone with a date (not a community's calendar)


class CalendarTokenIn(BaseModel):
    model_config = _IN
    actor: Actor


class CalendarToken(Frozen):
    token: str  # shown once: the service keeps only its hash
    created_at: datetime


class CalendarStatusQuery(BaseModel):
    model_config = _IN
    actor: Actor


class CalendarStatus(Frozen):
    active: bool
    created_at: datetime | None = None


class CalendarHolderQuery(BaseModel):
    model_config = _IN
    token: TokenText


class CalendarHolder(Frozen):
    """Whose private calendar a token opens: the person as an actor without roles, so that the gateway reads only
    what that person may read themselves (their bookings, sign-ups), never anything staff may."""

    actor: Actor


# ---- events (evt.<node>.notices.<snake_case type>) ---------------------------------------------------------------


class FeedItemCollected(NoticesEvent):
    """An item was collected from another site for the first time (a public notice, or a calendar entry when it has
    a start time). A change the site makes later is not announced again."""

    item_id: str
    feed_id: str
    source: str  # the feed's title
    community_id: str | None = None
    title: str
    link: str | None = None
    category: str
    kind: ItemKind
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    at: datetime
