"""Contracts of the projects service (svc.<node>.projects.*): co-creation between a municipality and companies (ORG).

Phase 1 (課題整理) and phase 2 (対話形成) are built: organisations (municipal departments, companies of any size or
industry) and their members, cross-department hearings, co-creation themes with their recruitment requirements and
evaluation criteria, publication, phase gates with an audit history, and the contact form routed to the secretariat
(事務局); companies matched to themes, briefings (説明会) with registrations, the open call's proposals (single
companies or consortia, confidential until the result), evaluators who declare conflicts and score independently, and
the published result with its pilot candidates.

Who is asking travels inside each request as an `Actor` (contracts.actor); the service decides what they may do.
Ids are UUIDs made at the theme's home node (`origin_node`), so themes and organisations keep their ids when they
are shared with other nodes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from towntip.kernel import categories
from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.errors import Refusal, check_failed
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
# Phase 2 (対話形成): matching, briefings, proposals, evaluation and the result
EP_MATCH_COMPANIES = "matching.companies"  # ThemeQuery -> CompanyMatches (the theme's managers)
EP_MATCH_THEMES = "matching.themes"  # OrgMatchQuery -> ThemeMatches (the organisation's members, staff, secretariat)
EP_BRIEFING_CREATE = "briefings.create"  # BriefingCreate -> Briefing (the theme's managers)
EP_BRIEFING_LIST = "briefings.list"  # ThemeQuery -> BriefingList (public; registrations for the managers)
EP_BRIEFING_REGISTER = "briefings.register"  # BriefingRegister -> Briefing (a member of a company)
EP_BRIEFING_CANCEL = "briefings.cancel"  # BriefingCancel -> Briefing (the person's own registration)
EP_PROPOSAL_SUBMIT = "proposals.submit"  # ProposalSubmit -> Proposal (a member of the lead organisation)
EP_PROPOSAL_UPDATE = "proposals.update"  # ProposalUpdate -> Proposal (compare-and-set on version, until the deadline)
EP_PROPOSAL_WITHDRAW = "proposals.withdraw"  # ProposalAction -> Proposal
EP_PROPOSAL_PARTNER = "proposals.partner.answer"  # PartnerAnswer -> Proposal (a member of the partner)
EP_PROPOSAL_GET = "proposals.get"  # ProposalQuery -> Proposal (404 for anyone who may not read it)
EP_PROPOSAL_LIST = "proposals.list"  # ProposalListQuery -> ProposalList (only what the actor may read)
EP_EVALUATOR_APPOINT = "evaluation.evaluators.appoint"  # EvaluatorAppoint -> EvaluationStatus (secretariat)
EP_REVIEW_DECLARE = "evaluation.declare"  # ConflictDeclare -> MyReviews (an evaluator of the theme)
EP_REVIEW_SCORE = "evaluation.score"  # ScoreSubmit -> MyReviews
EP_REVIEW_MINE = "evaluation.mine"  # ThemeQuery -> MyReviews (only the evaluator's own)
EP_EVALUATION_STATUS = "evaluation.status"  # ThemeQuery -> EvaluationStatus (secretariat, owner staff)
EP_EVALUATION_CLOSE = "evaluation.close"  # ThemeAction -> EvaluationStatus (secretariat)
EP_RESULT_PUBLISH = "evaluation.publish"  # ResultPublish -> Result (secretariat)
EP_RESULT_GET = "results.get"  # ThemeQuery -> Result (public once published)
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
InquiryKind = Literal["municipality", "company", "resident"]  # resident: a person of the town (「市民」)
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
        raise check_failed("category.unknown", "unknown categories: {values}", values=", ".join(bad[:5]))
    return sorted(set(v))


# A category code as the schema states it: one of the grid's codes (the HTTP API's OpenAPI document says so).
CategoryCode = Annotated[str, Field(json_schema_extra={"enum": sorted(categories.codes())})]
Fields = Annotated[list[CategoryCode], Field(max_length=43), AfterValidator(_fields)]


def _website(v: str) -> str:
    if v and not (v.startswith("https://") or v.startswith("http://")) or any(ch in v for ch in " \"'<>\r\n\t"):
        raise check_failed("website.invalid", "website must be an http(s) address like https://example.jp")
    return v


Website = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), AfterValidator(_website)]


def _email(v: str) -> str:
    try:
        return check_address(v).lower()
    except ValueError:
        raise check_failed("email.invalid", "not an e-mail address (one plain address like name@example.jp)") from None


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


class Member(Frozen):
    global_handle: str
    role: MemberRole
    added_at: datetime


class Org(Frozen):
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


class OrgList(Frozen):
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


class Hearing(Frozen):
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


class HearingList(Frozen):
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
        raise check_failed("time.no_timezone", "time must carry a timezone")
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
            raise check_failed("call.criteria_weights", "the criteria's weights must sum to 100 (they sum to {total})",
                               total=total)
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise check_failed("call.criteria_names", "each criterion needs its own name")
        return self


class RequirementsPut(RequirementsIn):
    actor: Actor
    theme_id: Uuid


class CriterionOut(Criterion):
    id: str
    position: int


class Requirements(Frozen):
    conditions: str
    scope: str
    deadline: datetime
    criteria: list[CriterionOut]
    call_opened_at: datetime | None = None
    updated_at: datetime


class Theme(Frozen):
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
    # Wide-area co-creation (広域連携) and 横展開: see contracts.federation.
    wide_area: bool = False
    invited_nodes: list[str] = []
    participants: list[str] = []  # invited municipalities (node ids) that declared participation
    origin_case: dict[str, str] | None = None  # {origin_node, case_id, title} of the case it was started from


class ThemeList(Frozen):
    themes: list[Theme]


class PhaseAdvance(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    # The phase it moves to: exactly the next one. Naming it makes a repeated click harmless (409, nothing moves).
    to_phase: Phase
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class AuditEntry(Frozen):
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


class History(Frozen):
    theme_id: str
    entries: list[AuditEntry]


# ---- phase 2 (対話形成): matching, briefings, proposals, evaluation, the result ----------------------------------

SCORE_MAX = 5  # each criterion is scored 0..SCORE_MAX by each evaluator
MIN_EVALUATORS = 2  # "several evaluators": the evaluation closes only with at least this many appointed
ProposalStatus = Literal["submitted", "withdrawn"]
PartnerStatus = Literal["pending", "confirmed", "declined"]


def _url(v: str) -> str:
    if not v:
        return v
    return _website(v)


class CompanyMatch(Frozen):
    org: Org  # the public profile (no members)
    score: int  # 2 per shared field + 1 per word of the theme's company points found in the expertise
    fields: list[str]  # the shared fields
    words: list[str]  # the words found


class CompanyMatches(Frozen):
    theme_id: str
    words: list[str]  # the words taken from the theme's "where companies can help"
    matches: list[CompanyMatch]


class OrgMatchQuery(BaseModel):
    model_config = _IN

    actor: Actor
    org_id: Uuid


class ThemeMatch(Frozen):
    theme: Theme
    score: int
    fields: list[str]
    words: list[str]


class ThemeMatches(Frozen):
    org_id: str
    matches: list[ThemeMatch]


class BriefingCreate(BaseModel):
    """A briefing (説明会): when, where (a venue, an online address, or both), how many seats."""

    model_config = _IN

    actor: Actor
    theme_id: Uuid
    title: Name
    starts_at: AwareTime
    ends_at: AwareTime
    venue: Short = ""
    online_url: Website = ""
    capacity: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _where_and_when(self) -> BriefingCreate:
        if not self.venue and not self.online_url:
            raise check_failed("briefing.no_place", "a briefing needs a venue or an online address (or both)")
        if self.ends_at <= self.starts_at:
            raise check_failed("briefing.ends_before_start", "a briefing ends after it starts")
        return self


class BriefingRegistration(Frozen):
    global_handle: str
    display_name: str
    org_id: str
    org_name: str
    registered_at: datetime


class Briefing(Frozen):
    id: str
    origin_node: str
    theme_id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    venue: str
    online: bool
    online_url: str  # only for those registered and the theme's managers ("" for the others)
    capacity: int
    registered: int
    seats_left: int
    created_at: datetime
    my_registration: BriefingRegistration | None = None
    registrations: list[BriefingRegistration] | None = None  # the theme's managers only


class BriefingList(Frozen):
    theme_id: str
    may_manage: bool
    briefings: list[Briefing]


class BriefingRegister(BaseModel):
    model_config = _IN

    actor: Actor
    briefing_id: Uuid
    org_id: Uuid  # the company the person comes for (they must be its member)


class BriefingCancel(BaseModel):
    model_config = _IN

    actor: Actor
    briefing_id: Uuid


class Attachment(BaseModel):
    """An attachment given as text or as an address (no files are uploaded)."""

    model_config = _IN

    label: Name
    url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), AfterValidator(_url)] = ""
    text: Text = ""

    @model_validator(mode="after")
    def _something(self) -> Attachment:
        if not self.url and not self.text:
            raise check_failed("proposal.attachment_empty", "attachment '{label}' needs an address or a text",
                               label=self.label)
        return self


class ProposalContent(BaseModel):
    model_config = _IN

    title: Name
    summary: Required
    plan: Required
    budget_yen: int = Field(ge=0, le=1_000_000_000_000)  # integer yen
    attachments: Annotated[list[Attachment], Field(max_length=10)] = []
    # A consortium: the partner organisations (companies) beside the lead; each confirms its own participation.
    partner_org_ids: Annotated[list[Uuid], Field(max_length=10)] = []

    @model_validator(mode="after")
    def _partners_once(self) -> ProposalContent:
        if len(set(self.partner_org_ids)) != len(self.partner_org_ids):
            raise check_failed("proposal.partner_twice", "each partner organisation is named once")
        return self


class ProposalSubmit(ProposalContent):
    actor: Actor
    theme_id: Uuid
    lead_org_id: Uuid


class ProposalUpdate(ProposalContent):
    actor: Actor
    proposal_id: Uuid
    version: int = Field(ge=1)  # the version the editor saw: a stale edit is refused (409)


class ProposalAction(BaseModel):
    model_config = _IN

    actor: Actor
    proposal_id: Uuid
    note: Note = ""


class PartnerAnswer(BaseModel):
    model_config = _IN

    actor: Actor
    proposal_id: Uuid
    org_id: Uuid  # the partner organisation answering (the actor must be its member)
    decision: Literal["confirm", "decline"]


class ProposalQuery(BaseModel):
    model_config = _IN

    actor: Actor
    proposal_id: Uuid


class ProposalListQuery(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid | None = None
    mine: bool = False  # only those of the actor's own organisations (lead or partner)


class Partner(Frozen):
    org_id: str
    org_name: str
    status: PartnerStatus
    answered_at: datetime | None
    answered_by: str | None


class Proposal(Frozen):
    id: str
    origin_node: str
    theme_id: str
    theme_title: str
    lead_org_id: str
    lead_org_name: str
    partners: list[Partner]
    title: str
    summary: str
    plan: str
    budget_yen: int
    attachments: list[Attachment]
    status: ProposalStatus
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    withdrawn_at: datetime | None
    deadline: datetime
    open_for_changes: bool  # submitted and before the deadline
    relation: list[str]  # how the actor may see it: lead, partner, evaluator, manager
    may_edit: bool


class ProposalList(Frozen):
    proposals: list[Proposal]


class EvaluatorAppoint(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    global_handle: GlobalHandle


class ConflictDeclare(BaseModel):
    """An evaluator's declaration of interests for one proposal, before any score: once, and final."""

    model_config = _IN

    actor: Actor
    proposal_id: Uuid
    conflicted: bool
    reason: Note = ""

    @model_validator(mode="after")
    def _reason(self) -> ConflictDeclare:
        if self.conflicted and not self.reason:
            raise check_failed("review.conflict_unexplained", "say what the conflict of interest is")
        return self


Score = Annotated[int, Field(ge=0, le=SCORE_MAX)]


class ScoreSubmit(BaseModel):
    """One evaluator's scores of one proposal: every criterion of the theme, 0..SCORE_MAX, and a comment."""

    model_config = _IN

    actor: Actor
    proposal_id: Uuid
    scores: Annotated[dict[Uuid, Score], Field(min_length=1, max_length=20)]
    comment: Required


class MyReview(Frozen):
    proposal_id: str
    proposal_title: str
    lead_org_name: str
    declared: bool
    conflicted: bool | None
    conflict_reason: str
    scores: dict[str, int] | None  # criterion id -> score
    comment: str
    scored_at: datetime | None


class MyReviews(Frozen):
    theme_id: str
    theme_title: str
    criteria: list[CriterionOut]
    deadline: datetime
    open_for_review: bool  # the deadline has passed and the evaluation is not closed
    closed: bool
    reviews: list[MyReview]


class CriterionAverage(Frozen):
    criterion_id: str
    name: str
    weight: int
    average: float  # the mean of the counted evaluators' scores (anonymised)


class RankedProposal(Frozen):
    proposal_id: str
    title: str
    lead_org_name: str
    partner_names: list[str]
    rank: int  # equal totals share a rank
    total: float  # the weighted average over evaluators without a conflict, 0..SCORE_MAX
    evaluators_counted: int
    averages: list[CriterionAverage]
    selected: bool = False


class ProgressCell(Frozen):
    evaluator: str
    proposal_id: str
    state: Literal["undeclared", "conflicted", "to_score", "scored"]  # never the scores themselves


class ProposalBrief(Frozen):
    id: str
    title: str
    lead_org_name: str
    partners_confirmed: bool


class EvaluationStatus(Frozen):
    theme_id: str
    theme_title: str
    deadline: datetime | None
    deadline_passed: bool
    evaluators: list[str]
    proposals: list[ProposalBrief]  # those submitted
    progress: list[ProgressCell]
    missing: list[str]  # what still stands before the evaluation can close
    closed_at: datetime | None
    published_at: datetime | None
    ranking: list[RankedProposal] | None  # once closed


class ResultPublish(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    selected: Annotated[list[Uuid], Field(max_length=20)]  # the pilot candidates (実証候補)
    reasons: Required


class Result(Frozen):
    theme_id: str
    origin_node: str
    theme_title: str
    status: Literal["closed", "published"]
    closed_at: datetime
    published_at: datetime | None
    reasons: str
    criteria: list[CriterionOut]
    score_max: int = SCORE_MAX
    ranking: list[RankedProposal]
    pilot_candidates: list[RankedProposal]


# ---- inquiries (相談・お問い合わせ) ----------------------------------------------------------------------------------


class InquiryCreate(BaseModel):
    """The public contact form: no login. The gateway throttles it per client address."""

    model_config = _IN

    kind: InquiryKind
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    # A company or a municipality names itself; a resident writes for themselves and may leave it empty.
    organisation: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    email: Email
    phone: Phone = ""
    topic: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    lang: Literal["ja", "en"] = "ja"

    @model_validator(mode="after")
    def _organisation(self) -> InquiryCreate:
        if self.kind != "resident" and not self.organisation:
            raise check_failed("inquiry.organisation_required",
                               "a company or a municipality names its organisation (a resident may leave it empty)")
        return self


class InquiryReceipt(Frozen):
    id: str
    reference: str  # short number for the sender to quote
    received_at: datetime
    # False when this address has had many auto-replies lately (the inquiry is kept and reaches the secretariat).
    auto_reply: bool


class Inquiry(Frozen):
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


class InquiryList(Frozen):
    inquiries: list[Inquiry]


class InquiryStatusSet(BaseModel):
    model_config = _IN

    actor: Actor
    inquiry_id: Uuid
    status: InquiryStatus
    note: Note = ""



# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

THEME_NOT_FOUND = Refusal("theme.not_found", 404, "no such theme (or not one the actor may see)")
THEME_MANAGERS_ONLY = Refusal("theme.managers_only", 403,
                              "only staff of the owner department or the secretariat manage the theme")
THEME_STALE = Refusal("theme.stale", 409, "the theme changed since the version edited: reload it")
THEME_FIELDS_MISSING = Refusal("theme.fields_missing", 409, "a published theme needs its required content")
THEME_ALREADY_PUBLISHED = Refusal("theme.already_published", 409, "the theme is published already")
THEME_WRONG_PHASE = Refusal("theme.wrong_phase", 409, "the step belongs to another phase than the theme's")
THEME_REQUIREMENTS_MISSING = Refusal("theme.requirements_missing", 409,
                                     "the call needs its requirements and criteria first")
THEME_PHASE_BACKWARDS = Refusal("theme.phase_backwards", 409, "phases move only forward")
THEME_PHASE_SKIP = Refusal("theme.phase_skip", 409, "phases move one at a time")
THEME_PHASE_NOT_READY = Refusal("theme.phase_not_ready", 409, "what the next phase needs is not done yet")
THEME_HISTORY_STAFF_ONLY = Refusal("theme.history_staff_only", 403,
                                   "a theme's history is for staff and the secretariat")
DEPARTMENT_NOT_FOUND = Refusal("organisation.department_not_found", 404, "no such municipal department")
HEARING_STAFF_ONLY = Refusal("hearing.staff_only", 403, "hearings are for municipal staff and the secretariat")
HEARING_NOT_FOUND = Refusal("hearing.not_found", 404, "no such hearing")
CALL_NOT_OPEN = Refusal("call.not_open", 409, "the theme's call for proposals is not open")
CALL_ALREADY_OPEN = Refusal("call.already_open", 409, "the call is open already")
CALL_DEADLINE_PASSED = Refusal("call.deadline_passed", 409, "the call's deadline has passed")
CALL_DEADLINE_NOT_FUTURE = Refusal("call.deadline_not_future", 400, "a deadline must be in the future")
CALL_REQUIREMENTS_FROZEN = Refusal("call.requirements_frozen", 409, "the call is open: its requirements are frozen")
ORG_NOT_FOUND = Refusal("organisation.not_found", 404, "no such organisation")
ORG_DEPARTMENT_STAFF_ONLY = Refusal("organisation.department_staff_only", 403,
                                    "only municipal staff register a department")
ORG_NAME_TAKEN = Refusal("organisation.name_taken", 409, "an organisation of that kind and name is registered already")
ORG_ADMIN_ONLY = Refusal("organisation.admin_only", 403, "only an admin of the organisation may change it")
ORG_ALREADY_MEMBER = Refusal("organisation.already_member", 409, "the person is a member already")
ORG_NOT_MEMBER = Refusal("organisation.not_member", 404, "the person is not a member")
ORG_LAST_ADMIN = Refusal("organisation.last_admin", 409, "an organisation keeps at least one admin")
MATCHING_NOT_FOR_YOU = Refusal("matching.not_for_you", 403,
                               "the matches are shown to the theme's managers or the organisation's members")
BRIEFING_NOT_FOUND = Refusal("briefing.not_found", 404, "no such briefing")
BRIEFING_NOT_IN_FUTURE = Refusal("briefing.not_in_future", 400, "a briefing is scheduled in the future")
BRIEFING_NOT_A_MEMBER = Refusal("briefing.not_a_member", 403, "one registers for an organisation one is a member of")
BRIEFING_STARTED = Refusal("briefing.started", 409, "the briefing has started")
BRIEFING_ALREADY_REGISTERED = Refusal("briefing.already_registered", 409, "registered already")
BRIEFING_FULL = Refusal("briefing.full", 409, "the briefing is full")
BRIEFING_NOT_REGISTERED = Refusal("briefing.not_registered", 404, "not registered for the briefing")
PROPOSAL_NOT_FOUND = Refusal("proposal.not_found", 404, "no such proposal (or not one the actor may read)")
PROPOSAL_DEPARTMENT_NOT_ALLOWED = Refusal("proposal.department_not_allowed", 400,
                                          "a municipal department does not propose")
PROPOSAL_LEAD_AS_PARTNER = Refusal("proposal.lead_as_partner", 400, "the lead organisation is not its own partner")
PROPOSAL_NOT_A_MEMBER = Refusal("proposal.not_a_member", 403, "a proposal is submitted by a member of its lead")
PROPOSAL_ALREADY_SUBMITTED = Refusal("proposal.already_submitted", 409, "one proposal per lead organisation and theme")
PROPOSAL_LEAD_ONLY = Refusal("proposal.lead_only", 403, "only the lead's members change the proposal")
PROPOSAL_WITHDRAWN = Refusal("proposal.withdrawn", 409, "the proposal was withdrawn")
PROPOSAL_STALE = Refusal("proposal.stale", 409, "the proposal changed since the version edited: reload it")
PROPOSAL_PARTNER_ONLY = Refusal("proposal.partner_only", 403, "a partner's participation is confirmed by its members")
PROPOSAL_PARTNER_NOT_FOUND = Refusal("proposal.partner_not_found", 404,
                                     "the organisation is not a partner of the proposal")
SECRETARIAT_ONLY = Refusal("access.secretariat_only", 403, "for the secretariat (事務局) only")
EVALUATION_CALL_NOT_OPEN = Refusal("evaluation.call_not_open", 409,
                                   "the evaluation needs a theme whose call was opened")
EVALUATION_CLOSED = Refusal("evaluation.closed", 409, "the evaluation is closed")
EVALUATION_NOT_STARTED = Refusal("evaluation.not_started", 409, "the evaluation starts after the call's deadline")
EVALUATION_INCOMPLETE = Refusal("evaluation.incomplete", 409, "the evaluation cannot close yet")
EVALUATION_NOT_FOR_YOU = Refusal("evaluation.not_for_you", 403,
                                 "the progress is for the secretariat and the owner department")
EVALUATOR_ALREADY = Refusal("evaluation.already_evaluator", 409, "the person is an evaluator already")
EVALUATOR_ONLY = Refusal("evaluation.evaluators_only", 403, "for the theme's evaluators only")
REVIEW_MUST_DECLARE_CONFLICT = Refusal("review.must_declare_conflict", 409,
                                       "a member of a proposing organisation declares a conflict")
REVIEW_ALREADY_DECLARED = Refusal("review.already_declared", 409, "a declaration of interests is final")
REVIEW_DECLARE_FIRST = Refusal("review.declare_first", 409, "declare one's interests before scoring")
REVIEW_CONFLICTED = Refusal("review.conflicted", 409, "a declared conflict of interest: no score")
REVIEW_SCORES_INCOMPLETE = Refusal("review.scores_incomplete", 422, "every criterion is scored once")
RESULT_EVALUATION_OPEN = Refusal("result.evaluation_open", 409, "close the evaluation first")
RESULT_ALREADY_PUBLISHED = Refusal("result.already_published", 409, "the result is published already")
RESULT_UNKNOWN_PROPOSAL = Refusal("result.unknown_proposal", 422, "not a proposal of this evaluation")
RESULT_PARTNERS_UNCONFIRMED = Refusal("result.partners_unconfirmed", 409,
                                      "a candidate's partners have not all confirmed")
RESULT_WITHDRAWN = Refusal("result.withdrawn_candidate", 409, "a candidate was withdrawn")
RESULT_NOT_FOUND = Refusal("result.not_found", 404, "no published result")
INQUIRY_NOT_FOUND = Refusal("inquiry.not_found", 404, "no such inquiry")
PILOT_NOT_FOUND = Refusal("pilot.not_found", 404, "no pilot for the theme (or not one the actor may see)")
PILOT_MANAGERS_ONLY = Refusal("pilot.managers_only", 403, "only the owner department's staff or the secretariat")
PILOT_NOT_A_PARTY = Refusal("pilot.not_a_party", 422, "not a party of the pilot")
PILOT_ITEM_NOT_FOUND = Refusal("pilot.item_not_found", 404, "no such role, milestone or KPI in the pilot")
PILOT_COMPLETE = Refusal("pilot.complete", 409, "the next-year decision is made: the record is closed")
PILOT_KPI_NAME_TAKEN = Refusal("pilot.kpi_name_taken", 409, "the pilot has a KPI of that name already")
PILOT_STALE = Refusal("pilot.stale", 409, "the plan changed since the version edited: reload it")
AGREEMENT_NOT_FOUND = Refusal("agreement.not_found", 404, "no such agreement in the pilot")
AGREEMENT_LIMIT = Refusal("agreement.limit", 409, "a pilot holds a limited number of agreements")
AGREEMENT_STALE = Refusal("agreement.stale", 409, "the agreement changed since the version read: read it again")
AGREEMENT_NOT_A_SIGNER = Refusal("agreement.not_a_signer", 403, "the person may not sign for that party")
AGREEMENT_ALREADY_SIGNED = Refusal("agreement.already_signed", 409, "the party signed this version already")
DECISION_ALREADY_MADE = Refusal("decision.already_made", 409, "the next-year decision is final")
DECISION_REPORT_MISSING = Refusal("decision.report_missing", 409,
                                  "the decision needs the report and the budget rationale")
CASE_NOT_FOUND = Refusal("case.not_found", 404, "no such (published) case")
CASE_VERSION_NOT_FOUND = Refusal("case.version_not_found", 404, "the case has no such published version")
CASE_STALE = Refusal("case.stale", 409, "the case changed since the revision edited: reload it")
CASE_NO_DRAFT = Refusal("case.no_draft", 409, "draft the case study first")
CASE_NOT_READY = Refusal("case.not_ready", 409, "the case cannot be published yet")
CASE_UNCHANGED = Refusal("case.unchanged", 409, "nothing changed since the published version")
PERSON_HANDLE_REQUIRED = Refusal("person.handle_required", 400,
                                 "the projects service knows people by their global handle")
FEDERATION_THEME_NOT_FOUND = Refusal("federation.theme_not_found", 404, "no such theme of that node here")
FEDERATION_CASE_NOT_FOUND = Refusal("federation.case_not_found", 404, "no such case of that node here")
FEDERATION_NOT_FOLLOWING = Refusal("federation.not_following", 404, "the person does not follow it")
FEDERATION_THEME_UNPUBLISHED = Refusal("federation.theme_unpublished", 409,
                                       "other municipalities see published themes only")
FEDERATION_UNKNOWN_MEMBER = Refusal("federation.unknown_member", 400,
                                    "not another member municipality of the federation")
FEDERATION_STAFF_ONLY = Refusal("federation.staff_only", 403, "participation is declared by staff or the secretariat")
FEDERATION_NOT_INVITED = Refusal("federation.not_invited", 403, "the theme did not invite this municipality")
FEDERATION_ALREADY_PARTICIPATING = Refusal("federation.already_participating", 409, "participation is declared already")

# ---- the base of the events (a base, not an event: on no stream) ---------------------------------------------

class ProjectsEvent(Event):
    """The base of this service's events: frozen, versioned, registered for the AsyncAPI document."""

    SERVICE: ClassVar[str] = SERVICE
    IS_EVENT: ClassVar[bool] = False  # a base, on no stream itself


# ---- events (evt.<node>.projects.<snake_case type>) ---------------------------------------------------------------
# Only public facts travel: drafts, inquiries' personal data and memberships stay in the service's database.


class OrganisationRegistered(ProjectsEvent):
    id: str
    origin_node: str
    kind: OrgKind
    name: str
    size: str
    industry: str
    fields: list[str]


class ThemePublished(ProjectsEvent):
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
    # Added for federation (defaults keep older events valid): a wide-area theme (広域連携) names the member
    # municipalities (node ids) it invited and those of them whose participation it recorded; a theme started from
    # a case (横展開) names that case: {origin_node, case_id, title}.
    wide_area: bool = False
    invited_nodes: list[str] = []
    participants: list[str] = []
    origin_case: dict[str, str] | None = None


class ThemeRequirementsSet(ProjectsEvent):
    theme_id: str
    origin_node: str
    conditions: str
    scope: str
    deadline: datetime
    criteria: list[dict[str, Any]]


class ThemeCallOpened(ProjectsEvent):
    theme_id: str
    origin_node: str
    deadline: datetime
    criteria: list[dict[str, Any]]
    opened_at: datetime


class ThemePhaseAdvanced(ProjectsEvent):
    theme_id: str
    origin_node: str
    from_phase: int
    to_phase: int
    at: datetime
    version: int | None = None  # the theme's version after the move (added for federation; older events: None)


class InquiryReceived(ProjectsEvent):
    """For the secretariat's tools: which inquiry arrived, never who sent it (no name, address or text)."""

    id: str
    kind: InquiryKind
    received_at: datetime


class ThemeChanged(ThemePublished):
    """A published theme's content or phase changed: the whole public content again (the newest version wins)."""


class OrganisationChanged(OrganisationRegistered):
    """An organisation's public profile changed (the whole profile again)."""


class BriefingScheduled(ProjectsEvent):
    id: str
    theme_id: str
    origin_node: str
    title: str
    starts_at: datetime
    ends_at: datetime
    venue: str
    online: bool  # the address itself goes only to those registered
    capacity: int


class BriefingSeatsChanged(ProjectsEvent):
    """Seats taken changed (a registration or a cancellation): counts only, never who."""

    briefing_id: str
    theme_id: str
    origin_node: str
    registered: int
    capacity: int


class ProposalReceived(ProjectsEvent):
    """A proposal arrived: that it exists, nothing of who sent it or what it says (confidential until the result)."""

    proposal_id: str
    theme_id: str
    origin_node: str
    at: datetime


class ProposalWithdrawn(ProposalReceived):
    pass


class EvaluatorAppointed(ProjectsEvent):
    """That an evaluator was appointed. Who it is stays at the node (the status is for the managers only): the
    handle is no longer sent (it would reach every member node once the stream is federated)."""

    theme_id: str
    origin_node: str
    global_handle: str = ""
    at: datetime


class EvaluationClosed(ProjectsEvent):
    theme_id: str
    origin_node: str
    proposals: int
    at: datetime


class ResultPublished(ProjectsEvent):
    """The selection's result, public: the criteria, the ranking with totals and anonymised averages, the pilot
    candidates and the reasons (never a proposal's own text, never an evaluator's own scores)."""

    theme_id: str
    origin_node: str
    published_at: datetime
    reasons: str
    criteria: list[dict[str, Any]]
    ranking: list[dict[str, Any]]
    pilot_candidates: list[str]
