"""Contracts of co-creation's phase 3 (実証設計, pilot design) and phase 4 (成果定着, results) in the projects service.

Same service and subjects as contracts.projects (svc.<node>.projects.<endpoint>, events on EVT_<NODE>_PROJECTS).

A theme in phase 3 has one pilot: its parties are the owner department (the municipality side) and the lead and
confirmed partner organisations of the selected proposals (the pilot candidates of the published result: the
company parties). The pilot workspace (roles, schedule, KPIs, plan, agreements, and in phase 4 the actuals, the
report, the budget rationale and the decision) is read by the theme's managers (the owner department's staff and
the secretariat) and the members of the company parties; for anyone else it does not exist (404). The case study
(事例化) is public once published.

Decimals (KPI baselines, targets, actuals) travel as strings ("12.5"), exact; amounts of money are integer yen.
Every request that changes something names the theme (`theme_id`), even where an item id would do: the service
refuses an item of another theme as not found.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.projects import _IN, Fields, Name, Note, ProjectsEvent, Required, Text, Uuid
from towntip.kernel.errors import check_failed

# Endpoints (the tail of svc.<node>.projects.<name>); every request carries `actor` unless said otherwise.
# ---- phase 3 (実証設計): writes by the theme's managers in phase 3, unless said otherwise ----
EP_PILOT_GET = "pilots.get"  # PilotQuery -> Pilot (managers and company parties; 404 for everyone else)
EP_ROLE_PUT = "pilots.roles.put"  # RolePut -> Pilot (add a row, or change it by role_id)
EP_ROLE_REMOVE = "pilots.roles.remove"  # RoleRemove -> Pilot
EP_MILESTONE_PUT = "pilots.milestones.put"  # MilestonePut -> Pilot (add, or change by milestone_id)
EP_MILESTONE_REMOVE = "pilots.milestones.remove"  # MilestoneRemove -> Pilot
EP_MILESTONE_STATUS = "pilots.milestones.status"  # MilestoneStatusSet -> Pilot (managers and company parties,
#   phases 3 and 4 until the decision: the pilot is carried out by both sides)
EP_KPI_PUT = "pilots.kpis.put"  # KpiPut -> Pilot (add, or change by kpi_id; frozen from phase 4)
EP_KPI_REMOVE = "pilots.kpis.remove"  # KpiRemove -> Pilot
EP_PLAN_PUT = "pilots.plan.put"  # PlanPut -> Pilot (compare-and-set on version; every version kept)
EP_AGREEMENT_CREATE = "pilots.agreements.create"  # AgreementCreate -> Agreement (version 1)
EP_AGREEMENT_REVISE = "pilots.agreements.revise"  # AgreementRevise -> Agreement (a new version voids signatures)
EP_AGREEMENT_SIGN = "pilots.agreements.sign"  # AgreementSign -> Agreement (a manager for the municipality side,
#   a member of a company party for that company; bound to the version number and its sha256)
EP_AGREEMENT_GET = "pilots.agreements.get"  # AgreementQuery -> Agreement (managers and company parties)
# ---- phase 4 (成果定着) ----
EP_ACTUAL_ADD = "outcomes.actuals.add"  # ActualAdd -> Pilot (managers and company parties; until the decision)
EP_REPORT_PUT = "outcomes.report.put"  # ReportPut -> Pilot (managers; compare-and-set; until the decision)
EP_BUDGET_PUT = "outcomes.budget.put"  # BudgetPut -> Pilot (managers; compare-and-set; until the decision)
EP_DECISION_MAKE = "outcomes.decision.make"  # DecisionMake -> Pilot (managers; once, final: the theme is complete)
EP_CASE_PUT = "cases.put"  # CasePut -> Case (managers draft it in phase 4; compare-and-set on draft_revision)
EP_CASE_PUBLISH = "cases.publish"  # CasePublish -> Case (managers; needs the report and the decision; again: +1)
EP_CASE_GET = "cases.get"  # CaseQuery -> Case (public once published; the draft only for the managers)
EP_CASE_FOR_THEME = "cases.theme"  # PilotQuery -> Case (the theme's case: public once published, else managers)
EP_CASE_LIST = "cases.list"  # CaseListQuery -> CaseList (no actor needed: published cases of this node)

AgreementKind = Literal["agreement", "memorandum", "nda"]  # 協定書, 覚書, 秘密保持契約
MAX_AGREEMENTS = 15  # per pilot: each may hold 16,000 characters, and the workspace carries every current text
AGREEMENT_KINDS = {"agreement": "協定書", "memorandum": "覚書", "nda": "秘密保持契約"}
AGREEMENT_KINDS_EN = {"agreement": "Agreement", "memorandum": "Memorandum", "nda": "Non-disclosure agreement"}
Direction = Literal["increase", "decrease"]
MilestoneStatus = Literal["planned", "done"]
Side = Literal["municipality", "company"]
Decision = Literal["adopt", "continue", "expand", "end"]
DECISIONS = {"adopt": "本格導入", "continue": "継続実証", "expand": "拡大・横展開", "end": "終了"}
DECISIONS_EN = {"adopt": "Adopt", "continue": "Continue the pilot", "expand": "Expand / roll out", "end": "End"}


def _not_bool(v: Any) -> Any:
    """JSON true/false is not an amount (pydantic's lax int would take it as 1/0)."""
    if isinstance(v, bool):
        raise ValueError("must be a number, not true or false")
    return v


# A measured quantity: exact, up to 12 digits before the point and 6 after; never NaN or infinite.
Quantity = Annotated[Decimal, BeforeValidator(_not_bool), Field(max_digits=18, decimal_places=6, allow_inf_nan=False)]
Yen = Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=1_000_000_000_000)]
Unit = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16_000)]
Sha256 = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9a-f]{64}$", to_lower=True)]
Version = Annotated[int, Field(ge=0)]  # the version the editor saw: 0 when there is none yet


# ---- requests: phase 3 ---------------------------------------------------------------------------------------


class PilotQuery(BaseModel):
    model_config = _IN

    theme_id: Uuid
    actor: Actor | None = None


class RoleIn(BaseModel):
    """One row of the split of roles (役割分担): a party, its role and what it is responsible for."""

    model_config = _IN

    org_id: Uuid  # the owner department or a company party
    title: Name  # the role, e.g. 運行管理, 住民への周知
    responsibilities: Required
    contact_handle: GlobalHandle | None = None  # the person to contact (name@home), optional


class RolePut(RoleIn):
    actor: Actor
    theme_id: Uuid
    role_id: Uuid | None = None  # None: a new row


class RoleRemove(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    role_id: Uuid


class MilestoneIn(BaseModel):
    model_config = _IN

    title: Name
    due_on: date
    description: Text = ""


class MilestonePut(MilestoneIn):
    actor: Actor
    theme_id: Uuid
    milestone_id: Uuid | None = None  # None: a new milestone


class MilestoneRemove(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    milestone_id: Uuid


class MilestoneStatusSet(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    milestone_id: Uuid
    status: MilestoneStatus  # done records when and who; planned clears it


class KpiIn(BaseModel):
    """A KPI (効果測定指標) with its baseline and target; the target lies in the KPI's direction from the baseline."""

    model_config = _IN

    name: Name
    unit: Unit  # 人, 回/週, %, 円, kg-CO2 ...
    baseline: Quantity
    target: Quantity
    direction: Direction  # increase: more is better; decrease: less is better
    method: Required  # how it is measured
    data_source: Text = ""  # where the figures come from

    @model_validator(mode="after")
    def _target_in_direction(self) -> KpiIn:
        if self.direction == "increase" and not self.target > self.baseline:
            raise check_failed("kpi.target_not_above", "an increasing KPI needs a target above its baseline "
                               "({baseline})", baseline=self.baseline)
        if self.direction == "decrease" and not self.target < self.baseline:
            raise check_failed("kpi.target_not_below", "a decreasing KPI needs a target below its baseline "
                               "({baseline})", baseline=self.baseline)
        return self


class KpiPut(KpiIn):
    actor: Actor
    theme_id: Uuid
    kpi_id: Uuid | None = None  # None: a new KPI


class KpiRemove(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    kpi_id: Uuid


class PlanIn(BaseModel):
    """The pilot plan (実証計画書)."""

    model_config = _IN

    objective: Required
    scope: Required
    method: Required
    period_start: date
    period_end: date
    budget_yen: Yen
    risks: Text = ""
    data_handling: Text = ""  # personal data, who holds what, for how long

    @model_validator(mode="after")
    def _period(self) -> PlanIn:
        if self.period_end < self.period_start:
            raise check_failed("plan.period_reversed", "the pilot's period ends on or after its start")
        return self


class PlanPut(PlanIn):
    actor: Actor
    theme_id: Uuid
    version: Version  # the version the editor saw (0: the first plan); a stale one is refused (409)


class AgreementCreate(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    kind: AgreementKind
    title: Name
    body: Body


class AgreementRevise(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    agreement_id: Uuid
    version: int = Field(ge=1)  # the current version the editor saw: a stale one is refused (409)
    title: Name
    body: Body


class AgreementSign(BaseModel):
    """A signature for one party, bound to what the signer read: the version number and the sha256 of its body."""

    model_config = _IN

    actor: Actor
    theme_id: Uuid
    agreement_id: Uuid
    org_id: Uuid  # the party signed for: the owner department (municipality side) or a company party
    version: int = Field(ge=1)
    sha256: Sha256


class AgreementQuery(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    agreement_id: Uuid


# ---- requests: phase 4 ---------------------------------------------------------------------------------------


class ActualAdd(BaseModel):
    """A measurement of a KPI; the latest (by measured_on, then recorded) is the KPI's actual."""

    model_config = _IN

    actor: Actor
    theme_id: Uuid
    kpi_id: Uuid
    value: Quantity
    measured_on: date
    note: Note = ""
    source: Text = ""


class ReportIn(BaseModel):
    """The pilot report (実証報告書)."""

    model_config = _IN

    summary: Required
    results: Required
    issues: Text = ""  # 課題: what was found wanting
    lessons: Text = ""


class ReportPut(ReportIn):
    actor: Actor
    theme_id: Uuid
    version: Version


class BudgetIn(BaseModel):
    """The budget rationale (予算化の根拠) for the next year."""

    model_config = _IN

    actual_cost_yen: Yen
    effects: Required
    rationale: Required
    requested_budget_yen: Yen


class BudgetPut(BudgetIn):
    actor: Actor
    theme_id: Uuid
    version: Version


class DecisionMake(BaseModel):
    """The next-year decision (次年度判断): once, final."""

    model_config = _IN

    actor: Actor
    theme_id: Uuid
    decision: Decision
    reasons: Required


class CaseIn(BaseModel):
    """The case study (事例化): how it was done and what another department or town should know (横展開)."""

    model_config = _IN

    title: Name
    summary: Required
    approach: Required
    outcomes: Required
    lessons: Text = ""
    transferability: Required  # 横展開のポイント
    fields: Fields | None = None  # None: the theme's fields


class CasePut(CaseIn):
    actor: Actor
    theme_id: Uuid
    draft_revision: Version  # the draft's revision the editor saw (0: no draft yet); stale: 409


class CasePublish(BaseModel):
    model_config = _IN

    actor: Actor
    theme_id: Uuid
    note: Note = ""


class CaseQuery(BaseModel):
    model_config = _IN

    case_id: Uuid
    actor: Actor | None = None
    version: int | None = Field(default=None, ge=1)  # an earlier published version; None: the latest


class CaseListQuery(BaseModel):
    model_config = _IN

    field: str | None = None
    decision: Decision | None = None


# ---- replies -------------------------------------------------------------------------------------------------


class Party(Frozen):
    org_id: str
    org_name: str
    side: Side
    has_role: bool  # at least one row in the split of roles


class Role(Frozen):
    id: str
    org_id: str
    org_name: str
    side: Side
    title: str
    responsibilities: str
    contact_handle: str | None
    updated_at: datetime
    updated_by: str


class Milestone(Frozen):
    id: str
    title: str
    due_on: date
    description: str
    status: MilestoneStatus
    done_at: datetime | None
    done_by: str | None
    updated_at: datetime


class Measurement(Frozen):
    id: str
    value: Decimal
    measured_on: date
    note: str
    source: str
    recorded_at: datetime
    recorded_by: str


class Kpi(Frozen):
    id: str
    name: str
    unit: str
    baseline: Decimal
    target: Decimal
    direction: Direction
    method: str
    data_source: str
    measurements: list[Measurement]  # oldest first
    actual: Decimal | None  # the latest measurement's value
    # How far the actual went from the baseline towards the target, exact (a fraction "n/d": 1 = the target met),
    # and in percent rounded half-up to one decimal ("50.0"); beyond the target is over 100, the wrong way negative.
    achievement: str | None
    achievement_pct: str | None


class DocumentVersion(Frozen):
    version: int
    saved_at: datetime
    saved_by: str
    saved_by_name: str


class PlanVersion(PlanIn, DocumentVersion):
    model_config = ConfigDict(frozen=True)


class ReportVersion(ReportIn, DocumentVersion):
    model_config = ConfigDict(frozen=True)


class BudgetVersion(BudgetIn, DocumentVersion):
    model_config = ConfigDict(frozen=True)


class AgreementVersion(Frozen):
    number: int
    title: str
    # The text. In pilots.get's workspace only the current version carries it (None for the earlier ones, which
    # pilots.agreements.get returns whole): a reply must stay under NATS's 1 MB with many long revisions.
    body: str | None
    sha256: str  # of the body, UTF-8
    created_at: datetime
    created_by: str


class Signature(Frozen):
    org_id: str
    org_name: str
    side: Side
    version: int
    sha256: str
    signed_by: str
    signed_by_name: str
    signed_at: datetime
    current: bool  # for the agreement's current version (signatures of earlier versions are void, kept)


class Agreement(Frozen):
    id: str
    theme_id: str
    kind: AgreementKind
    title: str  # the current version's
    version: int  # the current version's number
    sha256: str  # the current version's
    body: str  # the current version's
    versions: list[AgreementVersion]  # every version, oldest first
    signatures: list[Signature]  # every signature ever given, current and void
    pending: list[Party]  # the parties who have not signed the current version
    signed: bool  # every party signed the current version
    signed_at: datetime | None  # when the last of them signed it
    created_at: datetime
    my_parties: list[str]  # the org ids the actor may sign for (and has not signed the current version for)


class DecisionOut(Frozen):
    decision: Decision
    label: str  # 本格導入 ...
    reasons: str
    decided_at: datetime
    decided_by: str
    decided_by_name: str


# What a gate (the move to phase 4, a case's publication) still asks for, by code: `party` names the party a role is
# missing for. The English sentence of each is in the answer's plain list beside it.
GATE_PARTY_ROLE = "gate.party_role"  # the split of roles must give {party} a role
GATE_MILESTONE = "gate.milestone"  # at least one milestone in the schedule
GATE_KPI = "gate.kpi"  # at least one KPI
GATE_PLAN = "gate.plan"  # the pilot plan saved
GATE_AGREEMENT_SIGNED = "gate.agreement_signed"  # an agreement signed by every party in its current version
GATE_REPORT = "gate.report"  # the report saved
GATE_DECISION = "gate.decision"  # the next-year decision made


class Requirement(Frozen):
    code: str
    party: str = ""


class Pilot(Frozen):
    """The pilot workspace of a theme: everything of phases 3 and 4 for those who may read it."""

    theme_id: str
    theme_title: str
    origin_node: str
    phase: int
    fields: list[str]
    owner_department_id: str
    owner_department_name: str
    parties: list[Party]  # the municipality side first, then the companies by name
    relation: list[str]  # how the actor reads it: manager, party
    may_manage: bool
    my_parties: list[str]  # party org ids the actor belongs to (or the department, for a manager)
    roles: list[Role]
    milestones: list[Milestone]  # by due date
    kpis: list[Kpi]
    kpis_frozen: bool  # from phase 4 the KPIs no longer change
    plan: PlanVersion | None  # the current version
    plan_versions: list[PlanVersion]  # every version, oldest first
    agreements: list[Agreement]  # earlier versions without their text (see AgreementVersion.body)
    missing_for_phase4: list[str]  # what still stands before the move to phase 4 (empty: the gate is open)
    # The same as codes, for pages that say it in their own words (added: older answers have none).
    missing_for_phase4_codes: list[Requirement] = []
    report: ReportVersion | None
    report_versions: list[ReportVersion]
    budget: BudgetVersion | None
    budget_versions: list[BudgetVersion]
    decision: DecisionOut | None
    complete: bool  # the decision is made: the theme is complete
    case_id: str | None
    case_published_version: int  # 0: not published


class CaseKpi(Frozen):
    name: str
    unit: str
    baseline: str
    target: str
    actual: str | None
    direction: Direction
    achievement_pct: str | None


class CaseDraft(CaseIn):
    model_config = ConfigDict(frozen=True)

    fields: list[str]  # resolved (the theme's when none were given)
    draft_revision: int
    updated_at: datetime
    updated_by: str
    unpublished_changes: bool  # the draft differs from the latest published version


# ---- events (evt.<node>.projects.<snake_case type>) ---------------------------------------------------------------
# Only public facts: never an agreement's text, a plan, a budget or a report (what the case says is public).


class CasePublished(ProjectsEvent):
    """A case study became public (the federation of themes and cases keeps a read-only copy at other nodes by
    `id`, newest `version` wins). `kpis`: [{name, unit, baseline, target, actual, direction, achievement_pct}] with the
    decimals as strings ("12.5"), `actual` and `achievement_pct` (rounded half-up to one decimal, "50.0") None without a
    measurement. `partners`: the company parties' names. `decision`: adopt | continue | expand | end."""

    model_config = ConfigDict(frozen=True)

    id: str
    theme_id: str
    origin_node: str
    owner_department_name: str
    title: str
    summary: str
    approach: str
    outcomes: str
    lessons: str
    transferability: str
    fields: list[str]
    kpis: list[dict[str, Any]]
    partners: list[str]
    decision: str
    version: int
    published_at: datetime


class CaseChanged(CasePublished):
    """A published case was re-published after edits: the whole case again, `version` + 1."""


class PilotAgreed(ProjectsEvent):
    """An agreement's current version has been signed by every party: counts only, never the text or who."""

    model_config = ConfigDict(frozen=True)

    theme_id: str
    origin_node: str
    agreement_id: str
    kind: AgreementKind
    version: int
    parties: int
    at: datetime


class ThemeCompleted(ProjectsEvent):
    """The next-year decision was made: the theme is complete."""

    model_config = ConfigDict(frozen=True)

    theme_id: str
    origin_node: str
    decision: Decision
    at: datetime


# ---- replies (cases) -------------------------------------------------------------------------------------------


class Case(Frozen):
    id: str
    theme_id: str
    theme_title: str
    origin_node: str
    owner_department_name: str
    published: CasePublished | None  # the latest published version (or the one asked for); None before publication
    versions: list[int]  # the published versions
    draft: CaseDraft | None  # the managers only
    may_manage: bool
    may_publish: bool  # the report is saved and the decision made (and the actor manages the theme)
    missing_for_publication: list[str]
    missing_for_publication_codes: list[Requirement] = []  # the same as codes (added: older answers have none)


class CaseList(Frozen):
    cases: list[CasePublished]  # the latest version of each, newest publication first
