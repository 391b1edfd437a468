"""Contracts of the signage service (映像交流・配信, issue 19): the protocol between a node and its screens
(signage.<node>.screen.<name>.*, signage.<node>.push.*) and the staff's endpoints (svc.<node>.signage.*).

The protocol (docs/signage.md has the whole story; this module is its truth, the player in edge/signage codes to it):

- A screen is enrolled by the operator (`towntip signage enroll --screen NAME`): its own NATS user `scr-<name>`
  that may publish only `signage.<node>.screen.<name>.>`, subscribe only `signage.<node>.push.>` and its own inboxes
  `_INBOX._scr.<name>.>` (`screen_inbox_prefix`: the `_` keeps it apart from a card terminal's `_INBOX.<id>`, which
  never starts with `_`; a terminal named `scr-x` would otherwise share screen x's inbox).
- Sync (request/reply): `sync_subject` with `SyncRequest` → `SyncReply` (the screen, its playlists and items, the
  active emergency, the node's time). The service answers only a screen's own subject, and only into that screen's
  inbox prefix, so a screen never sees another screen's schedule.
- Content: `content_subject` with `ContentRequest` → the bytes (at most CHUNK_MAX); the player checks the sha256.
- Push (core NATS): `push_changed` with `PushChanged` (sync now), `push_emergency` with `Emergency`.
- Heartbeat: `status_subject` with `ScreenStatus` every HEARTBEAT_SECONDS.
- Proof of play: JetStream `plays_subject` (stream `plays_stream(node)`) with `Play`, header `Nats-Msg-Id` = play_id;
  the service counts each play_id once, however late it comes (its inbox, not only the stream's 2-minute window).

A refusal on the screen subjects is answered as on every endpoint: `Nats-Service-Error-Code` (status),
`Nats-Service-Error` (reason) and `Towntip-Refusal-Code` (the code) headers, with an empty body.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from towntip.kernel.bus.inboxes import screen_inbox_prefix as screen_inbox_prefix
from towntip.kernel.bus.subjects import stream_part
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.errors import Refusal

SERVICE = "signage"
TIMEZONE = "Asia/Tokyo"  # dayparts are local times of the town

# ---- the protocol's numbers ------------------------------------------------------------------------------------

CHUNK_MAX = 512 * 1024  # bytes of content one content request answers at most
HEARTBEAT_SECONDS = 30.0  # a screen's status, this often
RESYNC_SECONDS = 60.0  # a screen syncs this often even without a push
SCREENSHOT_EVERY_SECONDS = 300.0  # a screenshot rides on a heartbeat at most this often
SCREENSHOT_MAX_BYTES = 256 * 1024  # the PNG's size (before base64); a bigger one is dropped, the heartbeat kept
OFFLINE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS  # staff see a screen as offline after this long without a heartbeat
IMAGE_MAX_BYTES = 20 * 1024 * 1024  # an upload
VIDEO_MAX_BYTES = 200 * 1024 * 1024
DURATION_MAX = 3600  # seconds one item plays at most
INTERRUPT_SHARE_MAX = 0.5  # an interrupt takes at most half of each hour

# ---- names ----------------------------------------------------------------------------------------------------

# A screen's name is in its subjects and its NATS user: the same alphabet as a card terminal's id.
ScreenName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=40, strip_whitespace=True)]
Uuid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
Place = Annotated[str, StringConstraints(min_length=1, max_length=80, strip_whitespace=True)]
# A moment with its zone, kept in UTC (SQLite stores times without their zone: every service writes UTC there).
When = Annotated[AwareDatetime, AfterValidator(lambda t: t.astimezone(UTC))]
Orientation = Literal["landscape", "portrait"]
ItemKind = Literal["image", "video", "slide", "html"]
Severity = Literal["extreme", "severe", "moderate", "minor", "unknown"]  # CAP 1.2's severities, lower case

SCREEN_USER_PREFIX = "scr-"


def screen_user(screen: str) -> str:
    """A screen's NATS user on its node's nats-server."""
    return f"{SCREEN_USER_PREFIX}{screen}"


def screen_subject(node: str, screen: str, kind: str) -> str:
    return f"signage.{node}.screen.{screen}.{kind}"


def sync_subject(node: str, screen: str) -> str:
    """SyncRequest → SyncReply (request/reply)."""
    return screen_subject(node, screen, "sync")


def content_subject(node: str, screen: str) -> str:
    """ContentRequest → bytes (request/reply)."""
    return screen_subject(node, screen, "content")


def status_subject(node: str, screen: str) -> str:
    """ScreenStatus (core NATS, every HEARTBEAT_SECONDS)."""
    return screen_subject(node, screen, "status")


def plays_subject(node: str, screen: str) -> str:
    """Play (JetStream, stream plays_stream(node), Nats-Msg-Id = play_id)."""
    return screen_subject(node, screen, "plays")


def screens_of_kind(node: str, kind: str) -> str:
    """Every screen's subject of one kind (what the service listens to)."""
    return f"signage.{node}.screen.*.{kind}"


def push_changed(node: str) -> str:
    """PushChanged (core NATS): the screens named (or all) sync now."""
    return f"signage.{node}.push.changed"


def push_emergency(node: str) -> str:
    """Emergency (core NATS): shown at once, or cleared."""
    return f"signage.{node}.push.emergency"


def push_all(node: str) -> str:
    return f"signage.{node}.push.>"


def plays_stream(node: str) -> str:
    """The proof-of-play stream the service makes (SIGNAGE_PLAYS_<NODE>), on screens_of_kind(node, "plays")."""
    return f"SIGNAGE_PLAYS_{stream_part(node)}"


# ---- the protocol's payloads -------------------------------------------------------------------------------------


class _Msg(BaseModel):
    """A protocol message: frozen; unknown fields ignored, so a newer player or node can add fields (additive)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class SyncRequest(_Msg):
    have: str | None = None  # the manifest version the screen holds (None: nothing yet)


class ScreenInfo(_Msg):
    name: ScreenName
    orientation: Orientation = "landscape"
    width: int = Field(default=1920, ge=64, le=8192)
    height: int = Field(default=1080, ge=64, le=8192)
    place: str = ""  # the facility (施設) the screen stands in
    groups: tuple[str, ...] = ()  # e.g. 公民館, 市役所1F


class Item(_Msg):
    """One piece of content a screen may play. `sha256`/`bytes` are of what the content subject serves."""

    id: Uuid
    kind: ItemKind
    sha256: Sha256
    bytes: int = Field(ge=0)
    duration_s: int = Field(ge=1, le=DURATION_MAX)
    valid_from: When
    valid_until: When | None = None  # None: until withdrawn
    title: str
    mime: str = ""  # image/jpeg, image/png, video/mp4, video/webm, text/html (slides)

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


class Daypart(_Msg):
    """When a playlist plays, in the town's local time: on these weekdays (0 Monday … 6 Sunday), from `start`
    (inclusive) to `end` (exclusive). An `end` at or before `start` runs past midnight (22:00-06:00: the night
    belongs to the weekday it began on); start == end is the whole day."""

    name: str = ""  # 朝, 昼, 夕方 … (a label for staff)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    start: time = time(0, 0)
    end: time = time(0, 0)

    @model_validator(mode="after")
    def _days(self) -> Daypart:
        if not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday), at least one")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("a daypart's times are local (Asia/Tokyo), without a zone")
        return self


class PlaylistEntry(_Msg):
    item_id: Uuid
    duration_s: int | None = Field(default=None, ge=1, le=DURATION_MAX)  # None: the item's own duration


class Playlist(_Msg):
    """A loop of items. Of the normal playlists active at a moment the highest `priority` plays (equal priorities
    play one after another, by id); an interrupt (`interrupt_share` set) cuts in for that share of each hour, spread
    evenly over it."""

    id: Uuid
    name: str
    priority: int = Field(default=0, ge=0, le=100)
    dayparts: tuple[Daypart, ...] = ()  # none: all the time
    entries: tuple[PlaylistEntry, ...] = ()
    interrupt_share: float | None = Field(default=None, gt=0, le=INTERRUPT_SHARE_MAX)
    valid_from: When | None = None
    valid_until: When | None = None


class Schedule(_Msg):
    """What `towntip.kernel.signage_schedule.plan` needs: a screen's playlists and their items."""

    playlists: tuple[Playlist, ...] = ()
    items: tuple[Item, ...] = ()


class Emergency(_Msg):
    """緊急情報: takes over the screens named (all when `screens` and `groups` are empty/None) until cleared."""

    id: Uuid
    title: str
    body: str
    severity: Severity = "severe"
    screens: tuple[str, ...] | None = None
    groups: tuple[str, ...] = ()
    issued_at: datetime
    cleared: bool = False
    source: str = "staff"  # staff | cap (an alert in the Common Alerting Protocol)


class SyncReply(Schedule):
    """A screen's manifest. `version` changes whenever anything in it changes; with `unchanged` (the screen already
    has `version`) the playlists and items are left out and the screen keeps its own."""

    version: str
    screen: ScreenInfo
    emergency: Emergency | None = None
    node_time: datetime
    unchanged: bool = False


class ContentRequest(_Msg):
    id: Uuid
    sha256: Sha256
    offset: int = Field(default=0, ge=0)
    length: int = Field(default=CHUNK_MAX, ge=1, le=CHUNK_MAX)


class PushChanged(_Msg):
    version: str  # the node's content generation (a screen's own manifest version comes with its sync)
    screens: tuple[str, ...] | None = None  # None: every screen


class ScreenStatus(_Msg):
    version: str | None = None
    playing: str | None = None  # an item id, or "emergency:<id>"
    cache_bytes: int = Field(default=0, ge=0)
    player_version: str = Field(default="", max_length=40)
    screenshot_png_b64: str | None = None


class Play(_Msg):
    play_id: Uuid  # made on the device (uuid4): the key that counts it once
    item_id: Uuid
    screen: ScreenName
    started_at: When
    ended_at: When

    @model_validator(mode="after")
    def _order(self) -> Play:
        if self.ended_at < self.started_at:
            raise ValueError("a play ends after it starts")
        return self


# ---- refusals ----------------------------------------------------------------------------------------------------

STAFF_ONLY = Refusal("signage.staff_only", 403, "only staff manage screens, content and schedules")
SCREEN_NOT_FOUND = Refusal("signage.screen_not_found", 404, "no such screen")
SCREEN_UNKNOWN = Refusal("signage.screen_unknown", 403, "this screen is not registered with the signage service")
BAD_REPLY_SUBJECT = Refusal("signage.reply_not_own_inbox", 403, "a screen's answer goes only to its own inbox")
ITEM_NOT_FOUND = Refusal("signage.item_not_found", 404, "no such content item")
ITEM_NOT_FOR_SCREEN = Refusal("signage.item_not_for_screen", 404, "that item is not in this screen's manifest")
CHUNK_OUT_OF_RANGE = Refusal("signage.chunk_out_of_range", 416, "the offset is past the content's end")
BAD_PAYLOAD = Refusal("signage.bad_payload", 400, "the message does not fit the signage protocol")
GROUP_UNKNOWN = Refusal("signage.group_unknown", 404, "no screen is in that group")

# ---- staff endpoints (the tail of svc.<node>.signage.<name>) --------------------------------------------------

EP_SCREEN_REGISTER = "screens.register"  # ScreenRegister -> Screen (staff, or the operator's enrolment)
EP_SCREEN_LIST = "screens.list"  # ScreenListQuery -> ScreenList (staff)
EP_SCREEN_GET = "screens.get"  # ScreenQuery -> Screen (staff: its state and latest screenshot)
EP_ADMIN_SCREEN_ENROLLED = "admin.screens.enrolled"  # ScreenRegister -> Screen (the operator's CLI)


class StaffRequest(BaseModel):
    """Who asks: staff through the gateway; None only from the operator's CLI (the gateway always sets it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actor: Actor | None = None


class ScreenRegister(StaffRequest):
    name: ScreenName
    place: str = Field(default="", max_length=80)
    orientation: Orientation = "landscape"
    width: int = Field(default=1920, ge=64, le=8192)
    height: int = Field(default=1080, ge=64, le=8192)
    groups: tuple[GroupName, ...] = Field(default=(), max_length=10)


class ScreenQuery(StaffRequest):
    name: ScreenName


class ScreenListQuery(StaffRequest):
    group: str | None = None


class Screen(Frozen):
    """A screen as staff see it: where it is, and what it last said of itself."""

    name: str
    place: str
    orientation: Orientation
    width: int
    height: int
    groups: tuple[str, ...]
    enrolled_at: datetime
    last_seen: datetime | None = None
    online: bool = False
    playing: str | None = None
    playing_title: str | None = None
    version: str | None = None
    cache_bytes: int | None = None
    player_version: str | None = None
    screenshot_at: datetime | None = None
    screenshot_png_b64: str | None = None  # only in screens.get


class ScreenList(Frozen):
    screens: tuple[Screen, ...]
    groups: tuple[str, ...]  # every group any screen is in


# ---- events (evt.<node>.signage.<event>) ------------------------------------------------------------------------


class SignageEvent(Event):
    SERVICE: ClassVar[str] = SERVICE
    IS_EVENT: ClassVar[bool] = False


class ScreenRegistered(SignageEvent):
    name: str
    place: str
    groups: tuple[str, ...]


# ---- content (映像・画像, and the node's own slides) -----------------------------------------------------------

EP_UPLOAD_PART = "content.upload_part"  # UploadPart -> UploadProgress (staff: one CHUNK_MAX piece of a file)
EP_CONTENT_CREATE = "content.create"  # ContentCreate -> ContentItem (staff: the uploaded file, checked; pending)
EP_CONTENT_APPROVE = "content.approve"  # ItemAction -> ContentItem (staff other than the uploader)
EP_CONTENT_REJECT = "content.reject"  # ItemAction -> ContentItem (staff)
EP_CONTENT_WITHDRAW = "content.withdraw"  # ItemAction -> ContentItem (staff: off every screen at once)
EP_CONTENT_LIST = "content.list"  # ContentListQuery -> ContentList (staff)
EP_CONTENT_GET = "content.get"  # ItemAction -> ContentItem (staff)

UPLOAD_PARTS_MAX = VIDEO_MAX_BYTES // CHUNK_MAX
UPLOAD_PART_REQUEST_MAX = CHUNK_MAX * 4 // 3 + 4096  # a part in base64 and its envelope

UPLOAD_TOO_LARGE = Refusal("signage.upload_too_large", 413, "the file is larger than allowed for its kind")
UPLOAD_INCOMPLETE = Refusal("signage.upload_incomplete", 400, "parts of the upload are missing")
UPLOAD_TYPE = Refusal(
    "signage.upload_type",
    415,
    "only JPEG, PNG, GIF or WebP images and MP4 or WebM videos are taken (checked by content)",
)
UPLOAD_BROKEN = Refusal("signage.upload_broken", 422, "the file could not be read as the image it claims to be")
SAME_APPROVER = Refusal("signage.same_approver", 403, "a second staff member approves what one uploaded")
ITEM_STATE = Refusal("signage.item_state", 409, "the item is not in a state that allows this")
VALIDITY = Refusal("signage.validity", 400, "valid_until must be after valid_from")


class UploadPart(StaffRequest):
    upload_id: Uuid
    seq: int = Field(ge=0, lt=UPLOAD_PARTS_MAX)
    data_b64: str = Field(min_length=1, max_length=CHUNK_MAX * 4 // 3 + 4)


class UploadProgress(Frozen):
    upload_id: str
    parts: int
    bytes: int


class ContentCreate(StaffRequest):
    upload_id: Uuid
    parts: int = Field(ge=1, le=UPLOAD_PARTS_MAX)
    title: Title
    duration_s: int = Field(default=10, ge=1, le=DURATION_MAX)
    valid_from: When
    valid_until: When | None = None
    offered: bool = False  # offered to the other towns of the federation


class ItemAction(StaffRequest):
    item_id: Uuid


class ContentListQuery(StaffRequest):
    status: Literal["pending", "approved", "rejected", "withdrawn"] | None = None


class ContentItem(Frozen):
    id: str
    kind: ItemKind
    title: str
    mime: str
    sha256: str
    bytes: int
    duration_s: int
    width: int | None
    height: int | None
    valid_from: When
    valid_until: When | None
    status: str
    source: str
    created_by: str | None
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    origin_node: str | None = None
    offered: bool = False


class ContentList(Frozen):
    items: tuple[ContentItem, ...]


# ---- playlists and schedules ------------------------------------------------------------------------------------

EP_PLAYLIST_PUT = "playlists.put"  # PlaylistPut -> PlaylistView (staff: create or replace)
EP_PLAYLIST_LIST = "playlists.list"  # PlaylistListQuery -> PlaylistList (staff)
EP_PLAYLIST_DELETE = "playlists.delete"  # PlaylistAction -> PlaylistList (staff)
EP_PREVIEW = "preview"  # PreviewQuery -> Preview (staff: what a screen plays in the hour holding `at`)

PLAYLIST_NOT_FOUND = Refusal("signage.playlist_not_found", 404, "no such playlist")
PLAYLIST_ITEM_UNKNOWN = Refusal("signage.playlist_item_unknown", 400, "a playlist names an item that does not exist")
PLAYLIST_EMPTY = Refusal("signage.playlist_empty", 400, "a playlist needs at least one item")


class PlaylistPut(StaffRequest):
    id: Uuid | None = None  # None: a new playlist
    name: Annotated[str, StringConstraints(min_length=1, max_length=80, strip_whitespace=True)]
    priority: int = Field(default=0, ge=0, le=100)
    dayparts: tuple[Daypart, ...] = Field(default=(), max_length=14)
    entries: tuple[PlaylistEntry, ...] = Field(max_length=200)
    interrupt_share: float | None = Field(default=None, gt=0, le=INTERRUPT_SHARE_MAX)
    valid_from: When | None = None
    valid_until: When | None = None
    screens: tuple[ScreenName, ...] = Field(default=(), max_length=500)
    groups: tuple[GroupName, ...] = Field(default=(), max_length=20)


class PlaylistView(Playlist):
    screens: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    updated_by: str | None = None
    updated_at: datetime


class PlaylistAction(StaffRequest):
    id: Uuid


class PlaylistListQuery(StaffRequest):
    pass


class PlaylistList(Frozen):
    playlists: tuple[PlaylistView, ...]


class PreviewQuery(StaffRequest):
    screen: ScreenName
    at: When


class PreviewSlot(Frozen):
    start: datetime
    item_id: str
    title: str
    duration_s: int
    playlist: str
    interrupt: bool


class Preview(Frozen):
    screen: str
    at: When
    hour: datetime
    emergency: Emergency | None
    now_playing: str | None
    slots: tuple[PreviewSlot, ...]


# ---- emergencies (緊急情報) -------------------------------------------------------------------------------------

EP_EMERGENCY_SEND = "emergency.send"  # EmergencySend -> Emergency (staff; POST /api/v1/signage/emergency)
EP_EMERGENCY_CLEAR = "emergency.clear"  # EmergencyAction -> Emergency (staff)
EP_EMERGENCY_LIST = "emergency.list"  # EmergencyListQuery -> EmergencyList (staff: active first, then recent)
EP_CAP_INGEST = "emergency.cap"  # CapIngest -> CapOutcome (staff, or the operator's `towntip signage cap`)

EMERGENCY_NOT_FOUND = Refusal("signage.emergency_not_found", 404, "no such emergency message")
EMERGENCY_CLEARED = Refusal("signage.emergency_cleared", 409, "that emergency message is cleared already")
CAP_INVALID = Refusal("signage.cap_invalid", 422, "not a CAP 1.2 alert this node can read")
CAP_MAX_BYTES = 256 * 1024


class EmergencySend(StaffRequest):
    title: Title
    body: Body
    severity: Severity = "severe"
    screens: tuple[ScreenName, ...] | None = Field(default=None, max_length=500)  # None (and no groups): all
    groups: tuple[GroupName, ...] = Field(default=(), max_length=20)


class EmergencyAction(StaffRequest):
    id: Uuid


class EmergencyListQuery(StaffRequest):
    pass


class EmergencyList(Frozen):
    active: tuple[Emergency, ...]
    recent: tuple[Emergency, ...]  # cleared in the last days


class CapIngest(StaffRequest):
    xml: str = Field(min_length=1, max_length=CAP_MAX_BYTES)
    min_severity: Severity = "severe"  # alerts less severe than this are not shown
    areas: tuple[Annotated[str, StringConstraints(min_length=1, max_length=20)], ...] = ()  # geocodes; () = any
    screens: tuple[ScreenName, ...] | None = None
    groups: tuple[GroupName, ...] = ()


class CapOutcome(Frozen):
    taken: bool  # shown (or, for a Cancel, cleared)
    why: str  # "shown", "cleared", "below_severity", "outside_area", "not_actual", "already_taken"
    emergency: Emergency | None = None


# ---- proof of play figures --------------------------------------------------------------------------------------

EP_PLAYS_SUMMARY = "plays.summary"  # PlaysQuery -> PlaysSummary (staff: plays per item or per screen)


class PlaysQuery(StaffRequest):
    since: When
    until: When
    by: Literal["item", "screen"] = "item"


class PlaysRow(Frozen):
    key: str  # item id, or screen name (name@node for a peer's screen)
    label: str  # the item's title, or the screen's place
    plays: int
    seconds: int


class PlaysSummary(Frozen):
    since: When
    until: When
    by: str
    rows: tuple[PlaysRow, ...]


class ContentAdded(SignageEvent):
    item_id: str
    kind: str
    title: str


class ContentApproved(SignageEvent):
    item_id: str
    approved_by: str | None


class EmergencyIssued(SignageEvent):
    emergency_id: str
    title: str
    severity: str
    source: str


class EmergencyCleared(SignageEvent):
    emergency_id: str


# ---- slides the node makes from its own data (データスライド) ------------------------------------------------------
#
# Staff add a slide with a source; a second staff member approves it as any item. The service then asks the
# owning service for that source's public data over the bus, renders a `SlideBody` (the JSON the player's kiosk page
# lays out with its own template: item kind "slide", mime SLIDE_MIME) and renders it again every
# SLIDE_REFRESH_SECONDS: a change of the data changes the item's bytes, and the screens fetch them on their next
# sync (the pusher tells them at once). A source that does not answer keeps the last good slide with its time.

EP_SLIDE_CREATE = "slides.create"  # SlideCreate -> DataSlide (staff: a new slide from data, pending approval)
EP_SLIDE_LIST = "slides.list"  # SlideListQuery -> SlideList (staff: every data slide, its source and last refresh)

SLIDE_MIME = "application/json"
SLIDE_REFRESH_SECONDS = 60.0  # each slide's data is asked again this often
SlideSource = Literal["events", "news", "notices", "themes", "points", "bookings"]
FacilityId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")]

SLIDE_FACILITY = Refusal(
    "signage.slide_facility", 400, "a slide of a facility's bookings names its facility; other slides name none"
)


class SlideCreate(StaffRequest):
    source: SlideSource
    facility_id: FacilityId | None = None  # only for "bookings": the facility (room) whose day is shown
    title: Title | None = None  # None: the source's own title (今後のイベント, …)
    duration_s: int = Field(default=15, ge=1, le=DURATION_MAX)
    valid_from: When
    valid_until: When | None = None


class SlideListQuery(StaffRequest):
    pass


class SlideBody(_Msg):
    """What a data slide shows (the kiosk page's template: kicker, title, body, lines, footer). Public data only:
    no person's name, never a booker."""

    kicker: str = ""
    title: str
    body: str = ""
    lines: tuple[str, ...] = ()
    footer: str = ""


class DataSlide(Frozen):
    item: ContentItem
    source: SlideSource
    facility_id: str | None
    refreshed_at: datetime | None  # the last time its source was asked
    data_at: datetime | None  # the last time its source answered (what the slide shows is of then)
    failing: bool  # the last ask failed: the slide shows the data of `data_at`, or says it has none
    body: SlideBody


class SlideList(Frozen):
    slides: tuple[DataSlide, ...]
