"""Contracts of matching (マッチング, issue 20 point 5) in the sns service (svc.<node>.sns.openings.*): a community's
leader or a co-creation theme's managers post an opening (募集: what to do, the skills wanted, categories, district
and place, dates, how many people, the points event at which attendance counts); a person sees the openings that fit
their interests, district and the skills they state, each with the reason; they apply with a message, the organiser
accepts or declines, the person may withdraw.

An accepted application is announced (`OpeningApplicationAccepted`, with the opening's points event code and the
person's global handle): the points service keeps a volunteer roster per event from it, so that the person's card
touching that event earns the event's `volunteer_points` (once per event, as every check-in). A withdrawal after
acceptance is announced too (`OpeningApplicationWithdrawn`) and takes the person off the roster.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.points import Code as EventCode
from towntip.kernel.contracts.projects import CategoryCode, Fields, Uuid
from towntip.kernel.contracts.sns import Person, SnsEvent
from towntip.kernel.errors import Refusal

# Endpoints (the tail of svc.<node>.sns.<name>)
EP_OPENING_CREATE = "openings.create"  # OpeningCreate -> Opening (a community's leader, a theme's managers)
EP_OPENING_GET = "openings.get"  # OpeningQuery -> Opening (public; `mine` for the actor's application)
EP_OPENING_LIST = "openings.list"  # OpeningListQuery -> OpeningList (public: open openings, newest first)
EP_OPENING_FOR_ME = "openings.for_me"  # ForMeQuery -> Matches (the person's own: what fits and why)
EP_OPENING_CLOSE = "openings.close"  # OpeningAction -> Opening (its organiser)
EP_OPENING_APPLY = "openings.apply"  # ApplyIn -> Application (anyone signed in, not the organiser)
EP_OPENING_WITHDRAW = "openings.withdraw"  # OpeningAction -> Application (the applicant's own)
EP_OPENING_APPLICANTS = "openings.applicants"  # OpeningAction -> Applicants (its organiser)
EP_OPENING_DECIDE = "openings.decide"  # DecideIn -> Application (its organiser: accept or decline)
EP_SKILLS_GET = "skills.get"  # SkillsQuery -> Skills (the person's own)
EP_SKILLS_PUT = "skills.put"  # SkillsIn -> Skills (the person's own)

TITLE_MAX = 120
TASK_MAX = 2000
SKILLS_MAX = 300  # characters of the free words
PLACE_MAX = 200
DISTRICT_MAX = 64
MESSAGE_MAX = 1000
CAPACITY_MAX = 500
CATEGORIES_MAX = 5
FOR_ME_MAX = 50

OPENING_NOT_FOUND = Refusal("opening.not_found", 404, "no such opening")
OPENING_NOT_HOST = Refusal("opening.not_host", 403,
                           "only the community's leader or the theme's managers post an opening for it")
OPENING_HOST_NOT_FOUND = Refusal("opening.host_not_found", 404, "no such open community or theme")
OPENING_NOT_ORGANISER = Refusal("opening.not_organiser", 403, "only the opening's organiser may do this")
OPENING_CLOSED = Refusal("opening.closed", 409, "the opening is closed: it takes no applications")
OPENING_FULL = Refusal("opening.full", 409, "the opening has all the people it asked for")
OPENING_ALREADY_APPLIED = Refusal("opening.already_applied", 409, "the person has applied to this opening already")
OPENING_OWN = Refusal("opening.own", 400, "the organiser cannot apply to their own opening")
OPENING_NO_APPLICATION = Refusal("opening.no_application", 404, "no such application waiting on this opening")
OPENING_ALREADY_DECIDED = Refusal("opening.already_decided", 409, "the application was answered already")
OPENING_BAD_DATES = Refusal("opening.bad_dates", 400, "the opening ends before it starts")

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
Task = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TASK_MAX)]
SkillWords = Annotated[str, StringConstraints(strip_whitespace=True, max_length=SKILLS_MAX)]
Place = Annotated[str, StringConstraints(strip_whitespace=True, max_length=PLACE_MAX)]
District = Annotated[str, StringConstraints(strip_whitespace=True, max_length=DISTRICT_MAX)]
HostKind = Literal["community", "theme"]
ApplicationStatus = Literal["pending", "accepted", "declined", "withdrawn"]
ReasonKind = Literal["interest", "district", "skill"]


class OpeningCreate(BaseModel):
    model_config = _IN
    actor: Actor
    host_kind: HostKind
    host_id: Uuid
    title: Title
    task: Task  # what to do
    skills: SkillWords = ""  # skills wanted, free words (写真, 調理, PC)
    categories: Annotated[Fields, Field(max_length=CATEGORIES_MAX)] = []
    district: District = ""
    place: Place = ""
    starts_at: datetime
    ends_at: datetime | None = None
    capacity: Annotated[int, Field(ge=1, le=CAPACITY_MAX)] = 1
    event_code: EventCode | None = None  # the points event at which attendance counts as volunteering

    @model_validator(mode="after")
    def _dates(self) -> OpeningCreate:
        if self.starts_at.tzinfo is None or (self.ends_at is not None and self.ends_at.tzinfo is None):
            raise ValueError("times carry their zone")
        return self


class OpeningQuery(BaseModel):
    model_config = _IN
    opening_id: Uuid
    actor: Actor | None = None


class OpeningListQuery(BaseModel):
    model_config = _IN
    host_id: Uuid | None = None
    category: CategoryCode | None = None
    include_closed: bool = False
    limit: Annotated[int, Field(ge=1, le=FOR_ME_MAX)] = 20


class ForMeQuery(BaseModel):
    """The person's interests and district come from their profile (the gateway passes what identity holds); the
    skills are what they stated to the sns service (skills.put)."""

    model_config = _IN
    actor: Actor
    district: District = ""
    interests: Annotated[list[str], Field(max_length=64)] = []
    limit: Annotated[int, Field(ge=1, le=FOR_ME_MAX)] = 20


class OpeningAction(BaseModel):
    model_config = _IN
    actor: Actor
    opening_id: Uuid


class ApplyIn(OpeningAction):
    message: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MESSAGE_MAX)] = ""


class DecideIn(BaseModel):
    model_config = _IN
    actor: Actor
    application_id: Uuid
    decision: Literal["accept", "decline"]


class SkillsQuery(BaseModel):
    model_config = _IN
    actor: Actor


class SkillsIn(BaseModel):
    model_config = _IN
    actor: Actor
    skills: SkillWords


class Skills(Frozen):
    skills: str  # as the person wrote them
    words: list[str]  # the words matched against openings


class Application(Frozen):
    id: str
    opening_id: str
    applicant: Person
    message: str
    status: ApplicationStatus
    applied_at: datetime
    decided_at: datetime | None = None


class Opening(Frozen):
    id: str
    host_kind: HostKind
    host_id: str
    host_name: str
    organiser: Person
    title: str
    task: str
    skills: str
    categories: list[str]
    district: str
    place: str
    starts_at: datetime
    ends_at: datetime | None = None
    capacity: int
    accepted: int  # accepted applications
    event_code: str | None = None
    status: Literal["open", "closed"]
    created_at: datetime
    is_organiser: bool = False  # the asking actor posted it
    mine: Application | None = None  # the asking actor's application


class OpeningList(Frozen):
    openings: list[Opening]


class Reason(Frozen):
    kind: ReasonKind  # 関心分野 | 地区 | スキル
    value: str  # a category code, the district, or the skill word


class Match(Frozen):
    opening: Opening
    reasons: list[Reason]


class Matches(Frozen):
    matches: list[Match]  # best first (more reasons), then the soonest
    skills: str  # what the person stated (to show and edit)


class Applicants(Frozen):
    opening: Opening
    applications: list[Application]  # oldest first


# ---- events (evt.<node>.sns.<snake_case type>; handles only, never the messages) ---------------------------------

class OpeningPosted(SnsEvent):
    opening_id: str
    host_kind: str
    host_id: str
    categories: list[str]
    organiser: str
    at: datetime


class OpeningApplied(SnsEvent):
    """Someone applied: the organiser is told (not the message)."""

    application_id: str
    opening_id: str
    title: str = ""
    applicant: str
    organiser: str
    at: datetime


class OpeningApplicationAccepted(SnsEvent):
    """The organiser accepted: the person is told; with an event code, the points service adds the person to that
    event's volunteer roster (their tap there earns `volunteer_points`)."""

    application_id: str
    opening_id: str
    title: str
    person: str  # global handle
    event_code: str | None = None
    at: datetime


class OpeningApplicationDeclined(SnsEvent):
    application_id: str
    opening_id: str
    title: str
    person: str
    at: datetime


class OpeningApplicationWithdrawn(SnsEvent):
    """The person withdrew; `was_accepted`: the points service takes them off the event's roster."""

    application_id: str
    opening_id: str
    person: str
    event_code: str | None = None
    was_accepted: bool
    at: datetime
