"""Contracts of other towns' public notices (issue 18, point 3): a person follows other member towns of the
federation, and their public notices (お知らせ to everyone) arrive in the person's inbox at their home node.

Public notices travel on a stream of their own, `EVT_<NODE>_PUBLICNOTICES` (subjects `evt.<node>.publicnotices.*`),
which peers may source (towntip/node/leafnode.py FEDERATED_SERVICES). The notices service's own stream
`EVT_<NODE>_NOTICES` stays closed: it also announces targeted notices (a count, no content) and official messages,
which never leave their node. Only a notice to everyone, once sent, is announced here, with its content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints

from towntip.kernel.contracts import notices as _notices
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.errors import Refusal

SERVICE = _notices.SERVICE  # the endpoints are the notices service's
PUBLIC = "publicnotices"  # the bus name of the stream peers source (evt.<node>.publicnotices.*)

EP_TOWNS_LIST = "towns.list"  # TownsQuery -> Towns (the member towns, and which the person follows)
EP_TOWNS_FOLLOW = "towns.follow"  # TownFollow -> Towns (follow one more town's public notices)
EP_TOWNS_UNFOLLOW = "towns.unfollow"  # TownFollow -> Towns (stop; what arrived stays in the inbox)

KIND_TOWN_NOTICE = "town_notice"  # an inbox item: another town's public notice
FOLLOWS_MAX = 30  # towns one person may follow

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]

TOWN_UNKNOWN = Refusal("towns.unknown", 404, "not another member town of the federation")
TOWNS_HOME_ONLY = Refusal("towns.home_only", 403, "the towns a person follows are kept on their home node only")
TOWNS_UNAVAILABLE = Refusal("towns.unavailable", 503,
                            "the list of member towns could not be read just now (the projects service did not "
                            "answer); try again")
TOWNS_TOO_MANY = Refusal("towns.too_many", 409, f"at most {FOLLOWS_MAX} towns may be followed")
REFUSALS: tuple[Refusal, ...] = (TOWN_UNKNOWN, TOWNS_HOME_ONLY, TOWNS_UNAVAILABLE, TOWNS_TOO_MANY)


class TownsQuery(BaseModel):
    model_config = _IN
    actor: Actor


class TownFollow(BaseModel):
    model_config = _IN
    actor: Actor
    node: NodeId


class Town(Frozen):
    node: str
    public_url: str = ""  # "" for a followed town the federation no longer lists
    following: bool
    listed: bool = True  # False: followed, but no longer a member town (nothing arrives from it)


class Towns(Frozen):
    towns: list[Town]  # the member towns (not this one), then followed towns no longer listed
    available: bool = True  # False: the member list could not be read; only followed towns are shown


# ---- events (evt.<node>.publicnotices.<snake_case type>, stream EVT_<NODE>_PUBLICNOTICES: peers source it) --------


class PublicNoticesEvent(Event):
    """The base of the public notices' events. Every one names its `origin_node`: a node speaks only for its own
    notices (a peer's event about another node's notice is dead-lettered where it arrives)."""

    SERVICE: ClassVar[str] = PUBLIC
    IS_EVENT: ClassVar[bool] = False


class PublicNoticePublished(PublicNoticesEvent):
    """A notice to everyone of `origin_node` was sent: its whole content, no recipient."""

    notice_id: str
    origin_node: str
    version: int
    title: str
    body: str
    links: list[_notices.Link] = []
    category: str | None = None
    sender: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    at: datetime


class PublicNoticeCorrected(PublicNoticePublished):
    """A sent public notice was corrected: its new version, whole (the newest version wins where it arrived)."""


class PublicNoticeWithdrawn(PublicNoticesEvent):
    """A sent public notice was withdrawn: shown as withdrawn wherever it arrived."""

    notice_id: str
    origin_node: str
    at: datetime
