"""Contracts of the projects service (svc.<node>.projects.*): co-creation between a municipality and companies (ORG).

Phase 1 (課題整理) is built: organisations (municipal departments, companies of any size or industry) and their
members, cross-department hearings, co-creation themes with their recruitment requirements and evaluation criteria,
publication, phase gates with an audit history, and the contact form routed to the secretariat (事務局).

Who is asking travels inside each request as an `Actor` (contracts.actor); the service decides what they may do.
Ids are UUIDs made at the theme's home node (`origin_node`), so themes and organisations keep their ids when they
are shared with other nodes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from towntip.kernel import categories
from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.mail import check_address

SERVICE = "projects"

# Endpoints (the tail of svc.<node>.projects.<name>)
EP_ORG_CREATE = "orgs.create"  # OrgCreate -> Org
EP_ORG_UPDATE = "orgs.update"  # OrgUpdate -> Org
EP_ORG_GET = "orgs.get"  # OrgQuery -> Org (members only for its members, staff and the secretariat)
EP_ORG_LIST = "orgs.list"  # OrgListQuery -> OrgList
EP_ORG_MEMBER_ADD = "orgs.members.add"  # MemberAdd -> Org
EP_ORG_MEMBER_REMOVE = "orgs.members.remove"  # MemberRemove -> Org
EP_HEARING_CREATE = "hearings.create"  # HearingCreate -> Hearing
EP_HEARING_LIST = "hearings.list"  # HearingListQuery -> HearingList
EP_THEME_CREATE = "themes.create"  # ThemeCreate -> Theme
EP_THEME_UPDATE = "themes.update"  # ThemeUpdate -> Theme
EP_THEME_GET = "themes.get"  # ThemeQuery -> Theme
EP_THEME_LIST = "themes.list"  # ThemeListQuery -> ThemeList
EP_THEME_PUBLISH = "themes.publish"  # ThemeAction -> Theme
EP_THEME_REQUIREMENTS = "themes.requirements.put"  # RequirementsPut -> Theme
EP_THEME_CALL_OPEN = "themes.call.open"  # ThemeAction -> Theme
EP_THEME_ADVANCE = "themes.phase.advance"  # PhaseAdvance -> Theme
EP_THEME_HISTORY = "themes.history"  # ThemeQuery -> History
EP_INQUIRY_CREATE = "inquiries.create"  # InquiryCreate -> InquiryReceipt (no actor: the public contact form)
EP_INQUIRY_LIST = "inquiries.list"  # InquiryListQuery -> InquiryList (secretariat)
EP_INQUIRY_STATUS = "inquiries.status"  # InquiryStatusSet -> Inquiry (secretariat)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

# The four phases of a theme (ORG): each moves only forward, by the owner department's staff or the secretariat.
PHASES = {1: "課題整理", 2: "対話形成", 3: "実証設計", 4: "成果定着"}
PHASES_EN = {1: "Issue structuring", 2: "Partner formation", 3: "Pilot design", 4: "Results"}
Phase = Annotated[int, Field(ge=1, le=4)]
OrgKind = Literal["department", "company"]
# Companies and organisations of any size (ORG FAQ for companies, Q1): a rough band, not a registry figure.
OrgSize = Literal["", "individual", "micro", "small", "medium", "large"]
ORG_SIZES = ("individual", "micro", "small", "medium", "large")
MemberRole = Literal["admin", "member"]
ThemeStatus = Literal["draft", "published"]
InquiryKind = Literal["municipality", "company"]
InquiryStatus = Literal["open", "answered"]

Uuid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                                        to_lower=True)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


def _fields(v: list[str]) -> list[str]:
    """Fields from the category grid (npo-<n>, pib-<n>), sorted and once each."""
    known = categories.codes()
    bad = [c for c in v if c not in known]
    if bad:
        raise ValueError(f"unknown categories: {', '.join(bad[:5])}")
    return sorted(set(v))


Fields = Annotated[list[str], Field(max_length=43), AfterValidator(_fields)]


def _website(v: str) -> str:
    if v and not (v.startswith("https://") or v.startswith("http://")) or any(ch in v for ch in " \"'<>\r\n\t"):
        raise ValueError("website must be an http(s) address like https://example.jp")
    return v


Website = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), AfterValidator(_website)]


def _email(v: str) -> str:
    try:
        return check_address(v).lower()
    except ValueError:
        raise ValueError("not an e-mail address (one plain address like name@example.jp)") from None


Email = Annotated[str, AfterValidator(_email)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=30, pattern=r"^[0-9+()\- ]*$")]


# ---- organisations ---------------------------------------------------------------------------------------------


class OrgProfile(BaseModel):
    model_config = _IN

    name: Name
    size: OrgSize = ""
    industry: Short = ""
    fields: Fields = []
    expertise: Text = ""
    website: Website = ""


class OrgCreate(OrgProfile):
    """A municipal department (staff only) or a company (anyone logged in; they become its admin)."""

    actor: Actor
    kind: OrgKind


class OrgUpdate(OrgProfile):
    actor: Actor
    org_id: Uuid


class OrgQuery(BaseModel):
    model_config = _IN

    org_id: Uuid
    actor: Actor | None = None


class OrgListQuery(BaseModel):
    model_config = _IN

    kind: OrgKind | None = None
    field: str | None = None
    # Only the organisations the actor belongs to.
    member: Actor | None = None


class Member(BaseModel):
    global_handle: str
    role: MemberRole
    added_at: datetime


class Org(BaseModel):
    id: str
    origin_node: str
    kind: OrgKind
    name: str
    size: str
    industry: str
    fields: list[str]
    expertise: str
    website: str
    created_at: datetime
    updated_at: datetime
    # Filled only for its members, staff and the secretariat (who is in a company is not public).
    members: list[Member] | None = None
    my_role: MemberRole | None = None


class OrgList(BaseModel):
    orgs: list[Org]


class MemberAdd(BaseModel):
    model_config = _IN

    actor: Actor
    org_id: Uuid
    global_handle: GlobalHandle
    role: MemberRole = "member"


class MemberRemove(BaseModel):
    model_config = _IN

    actor: Actor
    org_id: Uuid
    global_handle: GlobalHandle


# ---- hearings (部局横断ヒアリング) -----------------------------------------------------------------------------------


Issues = Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]],
                   Field(min_length=1, max_length=30)]


class HearingCreate(BaseModel):
    model_config = _IN

    actor: Actor
    department_id: Uuid
    held_on: date
    current_state: Required
    issues: Issues
    attendees: Short = ""


class Hearing(BaseModel):
    id: str
    origin_node: str
    department_id: str
    department_name: str
    held_on: date
    current_state: str
    issues: list[str]
    attendees: str
    recorded_by: str
    created_at: datetime


class HearingListQuery(BaseModel):
    model_config = _IN

    actor: Actor
    department_id: Uuid | None = None


class HearingList(BaseModel):
    hearings: list[Hearing]


# ---- themes ----------------------------------------------------------------------------------------------------


class ThemeContent(BaseModel):
    """What a co-creation theme says (テーマ整理 and 企業連携ポイント抽出)."""

    model_config = _IN

    title: Name
    background: Text = ""
    target: Text = ""  # who or what the theme is for
    desired_outcome: Text = ""
    fields: Fields = []
    company_points: Text = ""  # where companies can help (企業連携ポイント)


class ThemeCreate(ThemeContent):
    actor: Actor
    owner_department_id: Uuid
    hearing_id: Uuid | None = None


class ThemeUpdate(ThemeContent):
    actor: Actor
    theme_id: Uuid
    # The version the editor saw: a stale edit is refused (409) rather than silently overwriting another's.
    version: int = Field(ge=1)


class ThemeQuery(BaseModel):
    model_config = _IN

    theme_id: Uuid
    actor: Actor | None = None


class ThemeListQuery(BaseModel):
    model_config = _IN

    actor: Actor | None = None
    field: str | None = None
    # Drafts too (only the actor's own departments' drafts, or all for staff and the secretariat).
    include_drafts: bool = False


class ThemeAction(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    note: Note = ""


class Criterion(BaseModel):
    """One evaluation criterion and its weight; weights of a theme sum to 100."""

    model_config = _IN

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    weight: int = Field(ge=1, le=100)
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


def _aware(v: datetime) -> datetime:
    """A time with its zone, kept in UTC (SQLite stores the wall time it is given, whatever its offset)."""
    if v.tzinfo is None:
        raise ValueError("time must carry a timezone")
    return v.astimezone(UTC)


AwareTime = Annotated[datetime, AfterValidator(_aware)]


class RequirementsIn(BaseModel):
    """The recruitment requirements (募集要件): proposal conditions, scope, deadline, evaluation criteria."""

    model_config = _IN

    conditions: Required
    scope: Required
    deadline: AwareTime
    criteria: Annotated[list[Criterion], Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _weights(self) -> RequirementsIn:
        total = sum(c.weight for c in self.criteria)
        if total != 100:
            raise ValueError(f"the criteria's weights must sum to 100 (they sum to {total})")
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise ValueError("each criterion needs its own name")
        return self


class RequirementsPut(RequirementsIn):
    actor: Actor
    theme_id: Uuid


class CriterionOut(Criterion):
    id: str
    position: int


class Requirements(BaseModel):
    conditions: str
    scope: str
    deadline: datetime
    criteria: list[CriterionOut]
    call_opened_at: datetime | None = None
    updated_at: datetime


class Theme(BaseModel):
    id: str
    origin_node: str
    owner_department_id: str
    owner_department_name: str
    hearing_id: str | None
    title: str
    background: str
    target: str
    desired_outcome: str
    fields: list[str]
    company_points: str
    status: ThemeStatus
    phase: int
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    published_at: datetime | None
    requirements: Requirements | None = None
    # For the actor who asked: may they edit it, move its phase?
    may_manage: bool = False


class ThemeList(BaseModel):
    themes: list[Theme]


class PhaseAdvance(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    # The phase it moves to: exactly the next one. Naming it makes a repeated click harmless (409, nothing moves).
    to_phase: Phase
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class AuditEntry(BaseModel):
    seq: int
    subject_kind: str
    subject_id: str
    action: str
    actor: str
    actor_name: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str


class History(BaseModel):
    theme_id: str
    entries: list[AuditEntry]


# ---- inquiries (相談・お問い合わせ) -----------------------------------------------------------------------------------


class InquiryCreate(BaseModel):
    """The public contact form: no login. The gateway throttles it per client address."""

    model_config = _IN

    kind: InquiryKind
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    organisation: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    email: Email
    phone: Phone = ""
    topic: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    lang: Literal["ja", "en"] = "ja"


class InquiryReceipt(BaseModel):
    id: str
    reference: str  # short number for the sender to quote
    received_at: datetime
    # False when this address has had many auto-replies lately (the inquiry is kept and reaches the secretariat).
    auto_reply: bool


class Inquiry(BaseModel):
    id: str
    reference: str
    kind: InquiryKind
    name: str
    organisation: str
    email: str
    phone: str
    topic: str
    message: str
    status: InquiryStatus
    received_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    auto_reply: str  # queued, sent, retrying, failed, skipped


class InquiryListQuery(BaseModel):
    model_config = _IN

    actor: Actor
    status: InquiryStatus | None = None


class InquiryList(BaseModel):
    inquiries: list[Inquiry]


class InquiryStatusSet(BaseModel):
    model_config = _IN

    actor: Actor
    inquiry_id: Uuid
    status: InquiryStatus
    note: Note = ""


# ---- events (evt.<node>.projects.<snake_case type>) ---------------------------------------------------------------
# Only public facts travel: drafts, inquiries' personal data and memberships stay in the service's database.


class OrganisationRegistered(BaseModel):
    id: str
    origin_node: str
    kind: OrgKind
    name: str
    size: str
    industry: str
    fields: list[str]


class ThemePublished(BaseModel):
    """A theme became public (or a public theme changed): its whole public content, for other nodes to show."""

    id: str
    origin_node: str
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


class ThemeRequirementsSet(BaseModel):
    theme_id: str
    origin_node: str
    conditions: str
    scope: str
    deadline: datetime
    criteria: list[dict[str, Any]]


class ThemeCallOpened(BaseModel):
    theme_id: str
    origin_node: str
    deadline: datetime
    criteria: list[dict[str, Any]]
    opened_at: datetime


class ThemePhaseAdvanced(BaseModel):
    theme_id: str
    origin_node: str
    from_phase: int
    to_phase: int
    at: datetime


class InquiryReceived(BaseModel):
    """For the secretariat's tools: which inquiry arrived, never who sent it (no name, address or text)."""

    id: str
    kind: InquiryKind
    received_at: datetime


class ThemeChanged(ThemePublished):
    """A published theme's content or phase changed: the whole public content again (the newest version wins)."""


class OrganisationChanged(OrganisationRegistered):
    """An organisation's public profile changed (the whole profile again)."""
