"""What a node knows about one person, for My Page across regions (issue 3, point 5).

Every service that holds a person's activity answers `svc.<node>.<service>.person.summary` with its part, for the
person's user id at that node (`SummaryQuery`). The gateway puts the parts together into a `RegionSummary`: at the
person's own node for My Page, and for another node's signed query about one of that node's people (see
docs/identity.md, "My Page across regions"). A summary names only what the person takes part in; it never
carries other people's private data (friends appear by their public handle and display name only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from towntip.kernel.contracts.actor import GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.points import PersonId

EP_PERSON_SUMMARY = "person.summary"  # the tail of svc.<node>.<service>.person.summary, for sns and projects

_STRICT = ConfigDict(extra="forbid")


class SummaryQuery(Frozen):
    model_config = _STRICT

    person: PersonId  # the person's user id at the answering node
    # name@home, for services that know people by their global handle (projects: memberships, evaluators)
    global_handle: GlobalHandle | None = None


# ---- the community SNS (svc.<node>.sns.person.summary) ----------------------------------------------------------

class CommunityRef(Frozen):
    id: str
    name: str
    category: str  # a code of the category grid (npo-<n> / pib-<n>)
    role: Literal["leader", "member"]
    members: int
    joined_at: datetime


class FriendRef(Frozen):
    global_handle: str  # name@home
    display_name: str
    since: datetime


class SnsSummary(Frozen):
    communities: list[CommunityRef]
    friends: list[FriendRef]
    friend_requests: int  # requests waiting for this person's answer
    unread_messages: int = 0  # direct messages not yet read (muted conversations left out); a count only


# ---- co-creation (svc.<node>.projects.person.summary) -----------------------------------------------------------

class OrganisationRef(Frozen):
    id: str
    name: str
    kind: str  # department / company / npo / … as the projects service names it
    role: str  # the person's role in it


class ThemeRef(Frozen):
    id: str
    title: str
    phase: int  # 1-4
    status: str
    role: str  # how the person takes part: owner department staff, proposal member, evaluator, pilot party …


class ProjectsSummary(Frozen):
    organisations: list[OrganisationRef]
    themes: list[ThemeRef]


# ---- one node's answer ------------------------------------------------------------------------------------------

class PointsPart(Frozen):
    asset: str
    balance: int
    cards: int


class RegionSummary(Frozen):
    node: str
    global_handle: str
    points: PointsPart | None = None
    sns: SnsSummary | None = None
    projects: ProjectsSummary | None = None
    unavailable: list[str] = []  # parts whose service did not answer (the rest is still shown)


# ---- My Page across regions: what the person's home node gathered (GET /api/v1/me/regions) -------------------------

RegionState = Literal["ok", "unreachable", "refused", "removed"]


class RegionView(Frozen):
    """One region as the home node saw it just now: `ok` with its summary; `unreachable` (no answer in time),
    `refused` (it answered with an error, `reason`), or `removed` (no longer a trusted member: not asked)."""

    node: str
    url: str
    state: RegionState
    checked_at: datetime
    home: bool = False
    summary: RegionSummary | None = None
    reason: str = ""


class MyRegions(Frozen):
    global_handle: str
    home_node: str
    regions: list[RegionView]  # the home region first, then the others by node id
