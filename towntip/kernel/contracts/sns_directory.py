"""Contracts of the directory of communities across towns (issue 20, point 6): each town lists its open communities
to the other member towns, so a person at one node finds those of other towns and joins at the community's own node
with their home ID (federated login: they sign in there as `name@home`).

The listing travels on a stream of its own, `EVT_<NODE>_SNSFED` (subjects `evt.<node>.snsfed.<event>`), which peers
source into `FED_<NODE>_SNSFED` through the hub and the source guard (`leafnode.FEDERATED_SERVICES`), as signage's
`sigfed`. `EVT_<NODE>_SNS` stays closed: it names posts, comments and friend requests. A listing carries what the
community's public page shows of it, and a member count rounded down to ten: no member, no leader is named.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.contracts.projects import CategoryCode

SERVICE = "sns"  # the endpoints are the sns service's
EVENTS = "snsfed"  # the events' stream: EVT_<NODE>_SNSFED, evt.<node>.snsfed.<event>
PAGE_PATH = "/communities/{community_id}"  # a community's page on its node's portal (its public URL)
MEMBERS_STEP = 10  # member counts are announced rounded down to this step
REFRESH_DAYS = 7  # an unchanged listing is announced again after this many days (the streams keep 30)
STALE_DAYS = 30  # a listing not heard of again for this long is no longer shown
LIST_MAX = 200

EP_DIRECTORY_LIST = "directory.list"  # DirectoryQuery -> Directory (public: other towns' open communities)

NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def rounded(members: int) -> int:
    """A member count as it is announced: rounded down to MEMBERS_STEP (0: fewer than MEMBERS_STEP)."""
    return max(0, members) // MEMBERS_STEP * MEMBERS_STEP


class DirectoryQuery(BaseModel):
    model_config = _IN
    town: NodeId | None = None
    category: CategoryCode | None = None  # a code of the category grid
    limit: int = Field(default=50, ge=1, le=LIST_MAX)


class DirectoryEntry(Frozen):
    town: str  # the node the community lives on
    community_id: str
    name: str
    description: str
    categories: list[str]
    members: int  # rounded down to MEMBERS_STEP (0: fewer than MEMBERS_STEP)
    url: str  # its page at its node: the node's public URL as the trust anchor vouches for it, + PAGE_PATH
    listed_at: datetime


class Directory(Frozen):
    entries: list[DirectoryEntry]  # newest listed first
    towns: list[str]  # the member towns with at least one community listed (for the filter)


# ---- events (evt.<node>.snsfed.<event>, stream EVT_<NODE>_SNSFED: peers source it) --------------------------------


class SnsfedEvent(Event):
    """The base of the directory's events. Every one names its `origin_node`: a node speaks only for its own
    communities (a peer's event about another node's community is dead-lettered where it arrives)."""

    SERVICE: ClassVar[str] = EVENTS
    IS_EVENT: ClassVar[bool] = False


class CommunityListed(SnsfedEvent):
    """An open community of `origin_node`, as its public page shows it (announced again every REFRESH_DAYS)."""

    community_id: str = Field(max_length=36)
    origin_node: str
    name: str = Field(max_length=80)
    description: str = Field(max_length=2000)
    categories: list[str] = Field(max_length=5)
    members: int = Field(ge=0)  # rounded down to MEMBERS_STEP
    url: str = Field(max_length=400)  # its page at its node, as the node itself says (peers build their own link)
    at: datetime


class CommunityUpdated(CommunityListed):
    """A listed community changed what peers show of it (its description, categories, rounded member count)."""


class CommunityUnlisted(SnsfedEvent):
    """The community was closed: peers take it out of their directory. (Not `CommunityClosed`, the sns stream's
    own event of that name, which a peer never sees.)"""

    community_id: str = Field(max_length=36)
    origin_node: str
    at: datetime
