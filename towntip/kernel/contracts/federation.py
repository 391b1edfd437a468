"""Contracts of the federation of themes and cases (svc.<node>.projects.federation.*): what this node shows of the
published themes and cases of the other member municipalities (read-only copies), following them, starting a
theme from a case (横展開) and wide-area themes shared by several municipalities (広域連携, FAQ Q7).

Copies come from the peers' own projects events (EVT_<PEER>_PROJECTS, sourced into FED_<NODE>_PROJECTS); a node
speaks only for its own themes and cases, so a peer's copy here changes only when that peer says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.pilots import CasePublished
from towntip.kernel.contracts.projects import Note, ProjectsEvent, ThemeCreate, Uuid

# Endpoints (the tail of svc.<node>.projects.<name>)
EP_MEMBERS = "federation.members"  # MembersQuery -> Members (the member municipalities this node knows)
EP_THEMES_LIST = "federation.themes.list"  # RemoteListQuery -> RemoteThemeList (public)
EP_THEMES_GET = "federation.themes.get"  # RemoteQuery -> RemoteTheme (public; 404 for a removed node's)
EP_CASES_LIST = "federation.cases.list"  # RemoteListQuery -> RemoteCaseList (public)
EP_CASES_GET = "federation.cases.get"  # RemoteQuery -> RemoteCase (public, with the prefill of a new theme)
EP_FOLLOW = "federation.follow"  # FollowIn -> Followed (a logged-in person; following again = seen now)
EP_UNFOLLOW = "federation.unfollow"  # FollowIn -> Followed
# notices.ThemeAudienceQuery -> notices.Audience: a theme's followers' handles, for the notices service only
EP_THEME_AUDIENCE = "audience.theme"
EP_FOLLOWING = "federation.following"  # FollowingQuery -> FollowingList (the person's own list)
# FollowersQuery -> Followers: who follows one theme or case, for the node's notices service (issue 18: "a theme I
# follow changed"); bus only, never an HTTP route, and the handles never leave the node.
EP_FOLLOWERS = "federation.followers"
EP_ADOPT = "federation.cases.adopt"  # CaseAdopt -> contracts.projects.Theme (staff of the department: 横展開)
EP_WIDE_AREA = "themes.wide_area.set"  # WideAreaSet -> contracts.projects.Theme (the theme's managers)
EP_PARTICIPATE = "federation.themes.participate"  # ParticipationDeclare -> RemoteTheme (staff at an invited node)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
ItemKind = Literal["theme", "case"]


class MembersQuery(BaseModel):
    model_config = _IN

    actor: Actor | None = None


class Member(Frozen):
    node: str
    public_url: str  # the member's entity id at the trust anchor: its public base URL
    active: bool  # listed by the trust anchor at the last look
    checked_at: datetime


class Members(Frozen):
    node: str  # this node
    anchor: str  # the trust anchor's entity id ("" without one: no peers)
    members: list[Member]


class RemoteListQuery(BaseModel):
    model_config = _IN

    actor: Actor | None = None
    origin_node: NodeId | None = None
    field: str | None = None


class RemoteQuery(BaseModel):
    model_config = _IN

    origin_node: NodeId
    id: Uuid
    actor: Actor | None = None


class RemoteTheme(Frozen):
    """A copy of another municipality's published theme, as its node last announced it."""

    id: str
    origin_node: str
    origin_url: str  # the theme's page at its node ("" if the node's address is unknown)
    owner_department_name: str
    title: str
    background: str
    target: str
    desired_outcome: str
    fields: list[str]
    company_points: str
    phase: int
    version: int
    published_at: datetime
    result: dict[str, Any] | None  # {published_at, reasons, pilot_candidates: [titles]} once the selection is public
    wide_area: bool
    invited_nodes: list[str]
    participants: list[str]
    origin_case: dict[str, str] | None
    received_at: datetime
    # For the actor who asked: do they follow it; may they declare this node's participation (staff here, the
    # node invited and not yet taking part)?
    following: bool = False
    may_participate: bool = False
    participating: bool = False  # this node declared its participation


class RemoteThemeList(Frozen):
    themes: list[RemoteTheme]


class RemoteCase(CasePublished):
    """A copy of another municipality's published case (事例): what its pilot did and achieved, as its node last
    announced it."""

    IS_EVENT: ClassVar[bool] = False  # a reply: the event's fields and what this node knows of them

    origin_url: str
    received_at: datetime
    following: bool = False
    # What a new theme started from this case (横展開) says before the staff edit it.
    prefill: dict[str, Any] = {}


class RemoteCaseList(Frozen):
    cases: list[RemoteCase]


class FollowIn(BaseModel):
    model_config = _IN

    actor: Actor
    kind: ItemKind
    origin_node: NodeId
    id: Uuid


class FollowingQuery(BaseModel):
    model_config = _IN

    actor: Actor


class Followed(Frozen):
    kind: ItemKind
    origin_node: str
    id: str
    title: str
    followed_at: datetime
    seen_at: datetime
    seen_version: int
    seen_phase: int | None  # themes only
    version: int  # the latest version this node has
    phase: int | None
    changed: bool  # a newer version than the person last looked at
    phase_changed: bool
    following: bool = True


class FollowingList(Frozen):
    items: list[Followed]


class FollowersQuery(BaseModel):
    model_config = _IN

    kind: ItemKind
    origin_node: NodeId
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Followers(Frozen):
    title: str  # "" when this node has no copy of it
    handles: list[str]


class CaseAdopt(ThemeCreate):
    """Start this department's own draft theme from a case (横展開): the content as the staff edited it (the page
    prefills it from the case), and which case it comes from. The theme keeps that link."""

    case_origin_node: NodeId
    case_id: Uuid


class WideAreaSet(BaseModel):
    """Make a published theme wide-area (広域連携) and invite member municipalities. Invitations only grow: a
    municipality that joined is not dropped by a later edit."""

    model_config = _IN

    actor: Actor
    theme_id: Uuid
    invite: Annotated[list[NodeId], Field(min_length=1, max_length=50)]
    note: Note = ""


class ParticipationDeclare(BaseModel):
    model_config = _IN

    actor: Actor
    origin_node: NodeId  # the theme's node
    theme_id: Uuid
    note: Note = ""


# ---- events (evt.<node>.projects.<snake_case type>) -----------------------------------------------------------


class WideAreaParticipationDeclared(ProjectsEvent):
    """This node (`origin_node`) takes part in another node's wide-area theme. Announced on this node's own stream
    (a node speaks only for itself); the theme's node records it if it invited this node."""

    theme_id: str
    theme_origin_node: str
    origin_node: str
    note: str
    declared_at: datetime
