"""Contracts of signage content shared between towns (issue 19, point 7): a node offers an approved item to the
federation, another node's staff adopt it (its media fetched from the offering node's public URL, checked again and
approved locally by a second staff member), and the adopting node reports the plays back to the maker, counted per
day and town.

The federation's events are their own stream, `EVT_<NODE>_SIGFED` (subjects `evt.<node>.sigfed.<event>`), which peers
source into `FED_<NODE>_SIGFED` through the hub and the source guard (`leafnode.FEDERATED_SERVICES`). They are kept
apart from `EVT_<NODE>_SIGNAGE` on purpose: that stream carries screen names, places and staff handles, none of which
a peer is told. The endpoints are the signage service's (`svc.<node>.signage.federation.*`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.contracts.signage import DURATION_MAX, ItemKind, Sha256, StaffRequest, Title, Uuid, When
from towntip.kernel.errors import Refusal

SERVICE = "signage"  # the endpoints' service
EVENTS = "sigfed"  # the events' stream: EVT_<NODE>_SIGFED, evt.<node>.sigfed.<event>
MEDIA_PATH = "/signage/federation/media/{item_id}"  # on the offering node's public URL (its gateway)
REPORT_DAYS = 35  # plays of adopted items are summed over this many local days (the plays stream keeps 30)
FETCH_TIMEOUT = 60.0  # seconds the adopting node waits for a peer's media at most

NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
Day = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]

# ---- endpoints (svc.<node>.signage.<name>) -----------------------------------------------------------------------

EP_OFFER = "federation.offer"  # OfferSet -> ContentItem (staff: offer an approved item, or withdraw the offer)
EP_OFFERS = "federation.offers"  # OffersQuery -> OfferList (staff: what the peers offer)
EP_ADOPT = "federation.adopt"  # AdoptRequest -> ContentItem (staff: a peer's offer as a local pending item)
EP_ABROAD = "federation.plays"  # AbroadQuery -> AbroadPlays (staff: plays of this town's items in other towns)
EP_MEDIA = "federation.media"  # MediaPart request -> MediaChunk (the gateway: an offered item's bytes, public)
EP_REPORT = "federation.report"  # ReportNow -> ReportDone (operator: report the plays now; a loop does it anyway)

OFFER_NOT_ALLOWED = Refusal(
    "signage.offer_not_allowed", 409, "only an approved image or video this town made can be offered"
)
OFFER_NOT_FOUND = Refusal("signage.offer_not_found", 404, "no such offer of a member town (or it was withdrawn)")
ALREADY_ADOPTED = Refusal("signage.already_adopted", 409, "this town has adopted that item already")
PEER_UNREACHABLE = Refusal("signage.peer_unreachable", 503, "the offering town's media could not be fetched")
PEER_MEDIA_MISMATCH = Refusal(
    "signage.peer_media_mismatch", 422, "the media fetched is not what the offering town announced"
)
NOT_OFFERED = Refusal("signage.not_offered", 404, "that item is not offered to the federation")


class OfferSet(StaffRequest):
    item_id: Uuid
    offered: bool = True


class OffersQuery(StaffRequest):
    pass


class Offer(Frozen):
    origin_node: str
    item_id: str
    kind: str
    title: str
    mime: str
    bytes: int
    duration_s: int
    width: int | None
    height: int | None
    valid_from: When
    valid_until: When | None
    offered_at: When
    adopted_as: str | None = None  # the local item made from it, if adopted here


class OfferList(Frozen):
    offers: tuple[Offer, ...]


class AdoptRequest(StaffRequest):
    origin_node: NodeId
    item_id: Uuid


class AbroadQuery(StaffRequest):
    item_id: Uuid | None = None  # None: every item of this town


class AbroadRow(Frozen):
    item_id: str
    title: str
    town: str
    day: str
    plays: int
    seconds: int


class AbroadPlays(Frozen):
    rows: tuple[AbroadRow, ...]


class MediaPart(Frozen):
    item_id: Uuid
    seq: int = Field(ge=0, lt=1000)


class MediaChunk(Frozen):
    mime: str
    bytes: int
    sha256: str
    parts: int
    data_b64: str


class ReportNow(StaffRequest):
    pass


class ReportDone(Frozen):
    reports: int  # PlaysReported events announced (a day whose totals did not change is not reported again)


# ---- events (evt.<node>.sigfed.<event>) --------------------------------------------------------------------------


class SigfedEvent(Event):
    SERVICE: ClassVar[str] = EVENTS
    IS_EVENT: ClassVar[bool] = False


class ContentOffered(SigfedEvent):
    """An approved item offered to the federation: what a peer's staff see, and the sha256 its media must have."""

    item_id: Uuid
    origin_node: str
    kind: ItemKind
    title: Title
    mime: str = Field(max_length=40)
    sha256: Sha256
    bytes: int = Field(ge=1)
    duration_s: int = Field(ge=1, le=DURATION_MAX)
    width: int | None = None
    height: int | None = None
    valid_from: When
    valid_until: When | None = None


class ContentOfferWithdrawn(SigfedEvent):
    """The offer ends (peers that adopted the item keep their copy; they decide about it)."""

    item_id: str
    origin_node: str


class PlaysReported(SigfedEvent):
    """The plays of one adopted item in one town on one local day (Asia/Tokyo), as totals: a later report of the same
    day replaces an earlier one, so a report applied again counts nothing twice. No screen is named."""

    town: str  # the town where it played: always the reporting node itself
    item_origin_node: str  # the maker
    item_id: Uuid  # the maker's item id
    day: Day
    plays: int = Field(ge=0)
    seconds: int = Field(ge=0)
    kind: Literal["totals"] = "totals"
