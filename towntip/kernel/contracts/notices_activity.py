"""Contracts of the notices service's activity notifications, Web Push and まちづくりナビ (issue 18, points 4 and 6).

Activity notifications come from the other services' events (consumed through the kernel's inbox, so a redelivered
event never notifies twice): comments on a person's posts and friend requests (sns), changes to themes and cases
they follow (projects), bookings starting tomorrow (bookings, a daily job) and points credited (points). Each kind
may be switched off; a daily mail digest and browser push are opt-in. The navi suggests communities, events, themes
and volunteer openings with the reason shown; staff see only counts of what was shown and taken, never who."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts import notices as _notices
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.errors import Refusal

SERVICE = _notices.SERVICE

EP_ACTIVITY_LIST = "activity.list"  # ActivityQuery -> ActivityList (the person's own)
EP_ACTIVITY_READ = "activity.read"  # ActivityRead -> ActivityList (mark some or all read)
EP_ACTIVITY_SETTINGS = "activity.settings"  # SettingsQuery -> ActivitySettings (the person's own)
EP_ACTIVITY_SETTINGS_SET = "activity.settings.set"  # SettingsIn -> ActivitySettings
EP_PUSH_KEY = "push.key"  # {} -> PushKey (public: the node's VAPID application server key)
EP_PUSH_SUBSCRIBE = "push.subscribe"  # PushSubscribeIn -> ActivitySettings
EP_PUSH_UNSUBSCRIBE = "push.unsubscribe"  # PushUnsubscribeIn -> ActivitySettings
EP_NAVI = "navi.suggest"  # NaviQuery -> NaviList (the person's own suggestions)
EP_NAVI_TAKE = "navi.take"  # NaviTake -> NaviTaken (a suggestion followed: counted, never who)
EP_NAVI_FIGURES = "navi.figures"  # NaviFiguresQuery -> NaviFigures (staff: counts per kind and reason)

# What a person may be told of; each may be switched off (all are on until they say otherwise).
Kind = Literal["comment", "friend_request", "followed_change", "booking_reminder", "points_credited", "moderation",
               "opening_applied", "opening_accepted", "opening_declined"]
KINDS: tuple[Kind, ...] = ("comment", "friend_request", "followed_change", "booking_reminder", "points_credited",
                           "moderation",  # moderation: the sns staff's decision about the person (issue 20)
                           # matching (issue 20 point 5): someone applied to the person's opening; their application
                           # was accepted or declined
                           "opening_applied", "opening_accepted", "opening_declined")
KEEP_DAYS = 180  # notifications older than this are deleted by the daily job (personal data kept no longer)
PAGE_MAX = 100

_IN = ConfigDict(extra="forbid", frozen=True)
Url = Annotated[str, StringConstraints(min_length=8, max_length=1000)]
B64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_=-]{16,200}$")]

PUSH_ENDPOINT_REFUSED = Refusal(
    "push.endpoint_refused",
    400,
    "a push subscription's endpoint must be an https URL of a push service on the internet (not this network)",
)
PUSH_TOO_MANY = Refusal("push.too_many", 409, "at most 10 browsers may receive push per person: remove one first")
DIGEST_NO_ADDRESS = Refusal(
    "activity.digest_no_address", 400, "the daily digest needs a verified e-mail address on the account"
)
NAVI_UNKNOWN = Refusal("navi.unknown", 404, "no such suggestion kind or reason")


class Note(Frozen):
    """One activity notification: what happened (kind), words for the page (`subject` names the thing, `who` the
    person who did it, as a display name or handle), and where to look."""

    id: str
    kind: Kind
    subject: str
    who: str = ""
    link: str = ""
    at: datetime
    read: bool = False


class ActivityQuery(BaseModel):
    model_config = _IN
    actor: Actor
    unread_only: bool = False
    limit: int = Field(default=50, ge=1, le=PAGE_MAX)


class ActivityRead(BaseModel):
    model_config = _IN
    actor: Actor
    ids: list[Annotated[str, StringConstraints(max_length=40)]] = Field(default_factory=list, max_length=PAGE_MAX)
    all: bool = False  # every unread one


class ActivityList(Frozen):
    items: list[Note]
    unread: int


class SettingsQuery(BaseModel):
    model_config = _IN
    actor: Actor


class SettingsIn(BaseModel):
    model_config = _IN
    actor: Actor
    kinds: dict[Kind, bool] = Field(default_factory=dict)  # only the kinds named change
    digest: bool | None = None  # None: unchanged
    # The gateway passes the account's verified address when the digest is switched on; it is kept only while the
    # digest is on and deleted when it is switched off.
    digest_to: Annotated[str, StringConstraints(max_length=254)] | None = None


class ActivitySettings(Frozen):
    kinds: dict[str, bool]
    digest: bool
    push_browsers: int  # how many browsers of the person receive push


class PushKey(Frozen):
    public_key: str  # the VAPID public key, uncompressed P-256, base64url (applicationServerKey)


class PushSubscribeIn(BaseModel):
    """What a browser's PushManager.subscribe() gives (PushSubscription.toJSON())."""

    model_config = _IN
    actor: Actor
    endpoint: Url
    p256dh: B64
    auth: B64


class PushUnsubscribeIn(BaseModel):
    model_config = _IN
    actor: Actor
    endpoint: Url | None = None  # None: every browser of the person


# ---- まちづくりナビ ----------------------------------------------------------------------------------------------

NaviKind = Literal["community", "event", "theme", "volunteer"]
# Why a suggestion is shown: the person's interest (its category), their district, or what they joined before.
Reason = Literal["interest", "district", "history"]


class NaviQuery(BaseModel):
    model_config = _IN
    actor: Actor
    # Identity's profile (district, interests) as the fallback where the person stated no life-stage answers.
    district: Annotated[str, StringConstraints(max_length=64)] = ""
    interests: list[Annotated[str, StringConstraints(max_length=16)]] = Field(default_factory=list, max_length=64)
    limit: int = Field(default=20, ge=1, le=50)


class Suggestion(Frozen):
    kind: NaviKind
    ref: str  # the thing's id at its service (community id, event code, theme id)
    title: str
    link: str  # the portal page of the thing
    reason: Reason
    because: str = ""  # the category code or district the reason names
    when: datetime | None = None


class NaviList(Frozen):
    items: list[Suggestion]
    source: Literal["life", "profile", "none"]  # where the interests and district came from


class NaviTake(BaseModel):
    model_config = _IN
    kind: NaviKind
    reason: Reason
    link: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9/_.\-?=&%@]{0,300}$")]


class NaviTaken(Frozen):
    link: str


class NaviFiguresQuery(BaseModel):
    model_config = _IN
    actor: Actor


class NaviFigure(Frozen):
    kind: str
    reason: str
    shown: int
    taken: int


class NaviFigures(Frozen):
    rows: list[NaviFigure]
