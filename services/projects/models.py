"""Tables of the projects service (its own database or schema): organisations and members, hearings, themes,
requirements and criteria, the append-only audit log, inquiries, phase 2's briefings, proposals, evaluators,
reviews and results, phases 3 and 4's pilot (roles, milestones, KPIs and measurements, plans, agreements with their
versions and signatures, reports, budget rationales, the decision) and case studies, and the kernel's outbox, inbox
and mail outbox.

Ids of things that may one day travel to other nodes (organisations, themes, criteria) are UUIDs made here, with
`origin_node` naming the node that made them: a copy at another node keeps the same id and says where it is from.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from towntip.kernel import db
from towntip.kernel.bus.outbox import SeqType, define_bus_tables
from towntip.kernel.mail import define_mail_table

metadata = MetaData(naming_convention=db.NAMING_CONVENTION)
bus = define_bus_tables(metadata)
mail = define_mail_table(metadata)
TS = DateTime(timezone=True)

# Municipal departments (the theme owners) and companies or other organisations (the co-creation partners).
organisations = Table(
    "organisations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("origin_node", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # department | company
    Column("name", String(200), nullable=False),
    Column("size", String(16), nullable=False, default=""),
    Column("industry", String(200), nullable=False, default=""),
    Column("fields", JSON, nullable=False, default=list),
    Column("expertise", Text, nullable=False, default=""),
    Column("website", String(300), nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("origin_node", "kind", "name", name="uq_organisations_origin_node_kind_name"),
    CheckConstraint("kind IN ('department', 'company')", name="kind"),
)

# Who belongs to an organisation, by global handle (name@home): people of other nodes may join a company here.
memberships = Table(
    "memberships",
    metadata,
    Column("org_id", String(36), ForeignKey("organisations.id"), nullable=False),
    Column("global_handle", String(64), nullable=False),
    Column("role", String(16), nullable=False),  # admin | member
    Column("added_at", TS, nullable=False),
    Column("added_by", String(64), nullable=False),
    PrimaryKeyConstraint("org_id", "global_handle", name="pk_memberships"),
    Index("ix_memberships_global_handle", "global_handle"),
    CheckConstraint("role IN ('admin', 'member')", name="role"),
)

# Cross-department hearings (部局横断ヒアリング): a department's current state and its issues.
hearings = Table(
    "hearings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("origin_node", String(32), nullable=False),
    Column("department_id", String(36), ForeignKey("organisations.id"), nullable=False),
    Column("held_on", Date, nullable=False),
    Column("current_state", Text, nullable=False),
    Column("issues", JSON, nullable=False),
    Column("attendees", String(200), nullable=False, default=""),
    Column("recorded_by", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_hearings_department_id", "department_id"),
)

# Co-creation themes (共創テーマ), owned by one department. Phase 1..4 only moves forward (service.themes).
themes = Table(
    "themes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("origin_node", String(32), nullable=False),
    Column("owner_department_id", String(36), ForeignKey("organisations.id"), nullable=False),
    Column("hearing_id", String(36), ForeignKey("hearings.id"), nullable=True),
    Column("title", String(200), nullable=False),
    Column("background", Text, nullable=False, default=""),
    Column("target", Text, nullable=False, default=""),
    Column("desired_outcome", Text, nullable=False, default=""),
    Column("fields", JSON, nullable=False, default=list),
    Column("company_points", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),  # draft | published
    Column("phase", Integer, nullable=False),
    Column("version", Integer, nullable=False),  # +1 on every change: stale edits are refused
    Column("created_at", TS, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("published_at", TS, nullable=True),
    # Federation (migration 0004): wide-area (広域連携, invitations and participants in their own tables) and the
    # case this theme was started from (横展開): {origin_node, case_id, title}.
    Column("wide_area", Boolean, nullable=False, default=False),
    Column("origin_case", JSON, nullable=True),
    Index("ix_themes_status", "status", "published_at"),
    Index("ix_themes_owner_department_id", "owner_department_id"),
    CheckConstraint("phase BETWEEN 1 AND 4", name="phase"),
    CheckConstraint("status IN ('draft', 'published')", name="status"),
)

# Recruitment requirements (募集要件) of a theme; frozen, with its criteria, once the call is open.
requirements = Table(
    "requirements",
    metadata,
    Column("theme_id", String(36), ForeignKey("themes.id"), primary_key=True),
    Column("conditions", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("deadline", TS, nullable=False),
    Column("call_opened_at", TS, nullable=True),
    Column("updated_at", TS, nullable=False),
)

# Evaluation criteria and weights, published before the call opens (scores of later phases refer to these ids).
criteria = Table(
    "criteria",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("weight", Integer, nullable=False),
    Column("description", Text, nullable=False, default=""),
    UniqueConstraint("theme_id", "position", name="uq_criteria_theme_id_position"),
    CheckConstraint("weight BETWEEN 1 AND 100", name="weight"),
)

# Every change to a theme and its parts (and to organisations and inquiries): who, when, what, before and after.
# Written in the transaction of the change; never updated or deleted (triggers refuse both, migration 0001).
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    # theme | org | hearing | inquiry | briefing | proposal | review
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(36), nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(64), nullable=False),  # global handle, or "visitor"
    Column("actor_name", String(100), nullable=False),
    Column("at", TS, nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("note", String(1000), nullable=False, default=""),
    Index("ix_audit_log_subject", "subject_kind", "subject_id", "seq"),
)

# The contact form (相談・お問い合わせ): routed to the secretariat; an auto-reply goes out through mail_outbox.
inquiries = Table(
    "inquiries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(16), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("organisation", String(200), nullable=False),
    Column("email", String(254), nullable=False),
    Column("phone", String(30), nullable=False, default=""),
    Column("topic", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("lang", String(2), nullable=False),
    Column("status", String(16), nullable=False),
    Column("received_at", TS, nullable=False),
    Column("answered_at", TS, nullable=True),
    Column("answered_by", String(64), nullable=True),
    Column("mail_key", String(200), nullable=True),  # the auto-reply's key in mail_outbox; None: not sent
    Index("ix_inquiries_status", "status", "received_at"),
    Index("ix_inquiries_email", "email", "received_at"),
    CheckConstraint("kind IN ('municipality', 'company', 'resident')", name="kind"),
    CheckConstraint("status IN ('open', 'answered')", name="status"),
)


# ---- phase 2 (対話形成): briefings, the open call's proposals, evaluation and the published result ----------------

# Briefings (説明会) of a theme: a place or an online address, and a capacity. `registered` counts the seats taken;
# a registration raises it with one conditional UPDATE (registered < capacity), so two people can never take the
# last seat both, and the CHECK is the database's own backstop.
briefings = Table(
    "briefings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("origin_node", String(32), nullable=False),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=False),
    Column("venue", String(300), nullable=False, default=""),
    Column("online_url", String(300), nullable=False, default=""),
    Column("capacity", Integer, nullable=False),
    Column("registered", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(64), nullable=False),
    Index("ix_briefings_theme_id", "theme_id", "starts_at"),
    CheckConstraint("capacity >= 1", name="capacity"),
    CheckConstraint("registered >= 0 AND registered <= capacity", name="seats"),
)

# Who registered for a briefing: one seat per person, on behalf of one of their organisations.
briefing_registrations = Table(
    "briefing_registrations",
    metadata,
    Column("briefing_id", String(36), ForeignKey("briefings.id"), nullable=False),
    Column("global_handle", String(64), nullable=False),
    Column("display_name", String(100), nullable=False),
    Column("org_id", String(36), ForeignKey("organisations.id"), nullable=False),
    Column("registered_at", TS, nullable=False),
    PrimaryKeyConstraint("briefing_id", "global_handle", name="pk_briefing_registrations"),
)

# Proposals to a theme's open call: one per lead organisation and theme; confidential until the result is out
# (services.projects.proposals says who may read one).
proposals = Table(
    "proposals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("origin_node", String(32), nullable=False),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("lead_org_id", String(36), ForeignKey("organisations.id"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("plan", Text, nullable=False),
    Column("budget_yen", BigInteger, nullable=False),
    Column("attachments", JSON, nullable=False, default=list),
    Column("status", String(16), nullable=False),  # submitted | withdrawn
    Column("version", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("withdrawn_at", TS, nullable=True),
    UniqueConstraint("theme_id", "lead_org_id", name="uq_proposals_theme_id_lead_org_id"),
    CheckConstraint("budget_yen >= 0", name="budget"),
    CheckConstraint("status IN ('submitted', 'withdrawn')", name="status"),
)

# The partner organisations of a consortium proposal, each confirming (or declining) its own participation.
proposal_partners = Table(
    "proposal_partners",
    metadata,
    Column("proposal_id", String(36), ForeignKey("proposals.id"), nullable=False),
    Column("org_id", String(36), ForeignKey("organisations.id"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | confirmed | declined
    Column("answered_at", TS, nullable=True),
    Column("answered_by", String(64), nullable=True),
    PrimaryKeyConstraint("proposal_id", "org_id", name="pk_proposal_partners"),
    Index("ix_proposal_partners_org_id", "org_id"),
    CheckConstraint("status IN ('pending', 'confirmed', 'declined')", name="status"),
)

# Evaluators of a theme, appointed by the secretariat by global handle (they need hold no role).
evaluators = Table(
    "evaluators",
    metadata,
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("global_handle", String(64), nullable=False),
    Column("appointed_at", TS, nullable=False),
    Column("appointed_by", String(64), nullable=False),
    PrimaryKeyConstraint("theme_id", "global_handle", name="pk_evaluators"),
    Index("ix_evaluators_global_handle", "global_handle"),
)

# One evaluator's review of one proposal: first the declaration of interests (a conflict excludes them from it),
# then the comment and the scores (review_scores), changeable until the evaluation is closed.
reviews = Table(
    "reviews",
    metadata,
    Column("proposal_id", String(36), ForeignKey("proposals.id"), nullable=False),
    Column("evaluator", String(64), nullable=False),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("conflicted", Boolean, nullable=False),
    Column("conflict_reason", String(1000), nullable=False, default=""),
    Column("declared_at", TS, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("scored_at", TS, nullable=True),
    PrimaryKeyConstraint("proposal_id", "evaluator", name="pk_reviews"),
    Index("ix_reviews_theme_id", "theme_id", "evaluator"),
)

review_scores = Table(
    "review_scores",
    metadata,
    Column("proposal_id", String(36), nullable=False),
    Column("evaluator", String(64), nullable=False),
    Column("criterion_id", String(36), ForeignKey("criteria.id"), nullable=False),
    Column("score", Integer, nullable=False),
    PrimaryKeyConstraint("proposal_id", "evaluator", "criterion_id", name="pk_review_scores"),
    ForeignKeyConstraint(["proposal_id", "evaluator"], ["reviews.proposal_id", "reviews.evaluator"],
                         name="fk_review_scores_review"),
    CheckConstraint("score BETWEEN 0 AND 5", name="score"),
)

# The selection of a theme: closed once (the ranking computed and frozen), then published once with its reasons.
results = Table(
    "results",
    metadata,
    Column("theme_id", String(36), ForeignKey("themes.id"), primary_key=True),
    Column("closed_at", TS, nullable=False),
    Column("closed_by", String(64), nullable=False),
    Column("ranking", JSON, nullable=False),
    Column("published_at", TS, nullable=True),
    Column("published_by", String(64), nullable=True),
    Column("reasons", Text, nullable=False, default=""),
    Column("selected", JSON, nullable=False, default=list),  # proposal ids: the pilot candidates
)


# ---- phases 3 (実証設計) and 4 (成果定着): the pilot of a theme, its results and the case study ----------------------
# One pilot per theme in phase 3 or 4, keyed by the theme. Its parties are derived, not stored: the owner department
# and the lead and confirmed partners of the selected proposals (results.selected). Decimal quantities (KPIs and
# their measurements) are stored as exact decimal text, never as floats (SQLite has no exact NUMERIC).

# The split of roles (役割分担): one row per role of a party.
pilot_roles = Table(
    "pilot_roles",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("org_id", String(36), ForeignKey("organisations.id"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("responsibilities", Text, nullable=False),
    Column("contact_handle", String(64), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Index("ix_pilot_roles_theme_id", "theme_id"),
)

# The schedule's milestones; their status (done, when, who) is recorded while the pilot runs.
pilot_milestones = Table(
    "pilot_milestones",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),  # planned | done
    Column("done_at", TS, nullable=True),
    Column("done_by", String(64), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_pilot_milestones_theme_id", "theme_id", "due_on"),
    CheckConstraint("status IN ('planned', 'done')", name="status"),
    CheckConstraint("(status = 'done') = (done_at IS NOT NULL)", name="done_at"),
)

# KPIs with their baseline and target (exact decimal text); frozen when the theme moves to phase 4.
pilot_kpis = Table(
    "pilot_kpis",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit", String(40), nullable=False),
    Column("baseline", String(40), nullable=False),
    Column("target", String(40), nullable=False),
    Column("direction", String(8), nullable=False),  # increase | decrease
    Column("method", Text, nullable=False),
    Column("data_source", Text, nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("theme_id", "name", name="uq_pilot_kpis_theme_id_name"),
    CheckConstraint("direction IN ('increase', 'decrease')", name="direction"),
)

# Measurements of a KPI in phase 4 (the latest by measured_on, then by seq, is the actual).
kpi_measurements = Table(
    "kpi_measurements",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("seq", Integer, nullable=False),  # 1, 2, ... per KPI: the order of recording
    Column("kpi_id", String(36), ForeignKey("pilot_kpis.id"), nullable=False),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("value", String(40), nullable=False),
    Column("measured_on", Date, nullable=False),
    Column("note", String(1000), nullable=False, default=""),
    Column("source", Text, nullable=False, default=""),
    Column("recorded_at", TS, nullable=False),
    Column("recorded_by", String(64), nullable=False),
    UniqueConstraint("kpi_id", "seq", name="uq_kpi_measurements_kpi_id_seq"),
)

def _versioned(name: str, *columns: Column | CheckConstraint) -> Table:
    """A document of a pilot kept in every version: one row per (theme, version), never updated; a new version is a
    new row, so two concurrent saves of the same version cannot both land (the primary key)."""
    return Table(
        name,
        metadata,
        Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
        Column("version", Integer, nullable=False),
        *columns,
        Column("saved_at", TS, nullable=False),
        Column("saved_by", String(64), nullable=False),
        Column("saved_by_name", String(100), nullable=False),
        PrimaryKeyConstraint("theme_id", "version", name=f"pk_{name}"),
    )


# The pilot plan (実証計画書).
pilot_plans = _versioned(
    "pilot_plans",
    Column("objective", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("budget_yen", BigInteger, nullable=False),
    Column("risks", Text, nullable=False, default=""),
    Column("data_handling", Text, nullable=False, default=""),
    CheckConstraint("budget_yen >= 0", name="budget"),
    CheckConstraint("period_end >= period_start", name="period"),
)

# Agreements and memoranda (協定書 / 覚書 / 秘密保持契約); their text lives in agreement_versions.
agreements = Table(
    "agreements",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # agreement | memorandum | nda
    Column("current_version", Integer, nullable=False),
    Column("signed_at", TS, nullable=True),  # when every party had signed the current version (None: not yet)
    Column("created_at", TS, nullable=False),
    Column("created_by", String(64), nullable=False),
    Index("ix_agreements_theme_id", "theme_id"),
    CheckConstraint("kind IN ('agreement', 'memorandum', 'nda')", name="kind"),
)

# Each revision of an agreement: immutable (never updated), with the sha256 of its body.
agreement_versions = Table(
    "agreement_versions",
    metadata,
    Column("agreement_id", String(36), ForeignKey("agreements.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(64), nullable=False),
    PrimaryKeyConstraint("agreement_id", "number", name="pk_agreement_versions"),
)

# Signatures: one per party and version, bound to the version's sha256; those of superseded versions stay (void).
agreement_signatures = Table(
    "agreement_signatures",
    metadata,
    Column("agreement_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("org_id", String(36), ForeignKey("organisations.id"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("signed_by", String(64), nullable=False),
    Column("signed_by_name", String(100), nullable=False),
    Column("signed_at", TS, nullable=False),
    PrimaryKeyConstraint("agreement_id", "version", "org_id", name="pk_agreement_signatures"),
    ForeignKeyConstraint(["agreement_id", "version"], ["agreement_versions.agreement_id", "agreement_versions.number"],
                         name="fk_agreement_signatures_version"),
)

# The pilot report (実証報告書).
pilot_reports = _versioned(
    "pilot_reports",
    Column("summary", Text, nullable=False),
    Column("results", Text, nullable=False),
    Column("issues", Text, nullable=False, default=""),
    Column("lessons", Text, nullable=False, default=""),
)

# The budget rationale (予算化の根拠).
budget_rationales = _versioned(
    "budget_rationales",
    Column("actual_cost_yen", BigInteger, nullable=False),
    Column("effects", Text, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("requested_budget_yen", BigInteger, nullable=False),
    CheckConstraint("actual_cost_yen >= 0 AND requested_budget_yen >= 0", name="yen"),
)

# The next-year decision (次年度判断): one per theme, final. With it the theme is complete.
pilot_decisions = Table(
    "pilot_decisions",
    metadata,
    Column("theme_id", String(36), ForeignKey("themes.id"), primary_key=True),
    Column("decision", String(16), nullable=False),  # adopt | continue | expand | end
    Column("reasons", Text, nullable=False),
    Column("decided_at", TS, nullable=False),
    Column("decided_by", String(64), nullable=False),
    Column("decided_by_name", String(100), nullable=False),
    CheckConstraint("decision IN ('adopt', 'continue', 'expand', 'end')", name="decision"),
)

# The case study (事例化) of a theme: the managers' draft (this row) and its published versions (case_versions).
cases = Table(
    "cases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False, unique=True),
    Column("origin_node", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("approach", Text, nullable=False),
    Column("outcomes", Text, nullable=False),
    Column("lessons", Text, nullable=False, default=""),
    Column("transferability", Text, nullable=False),
    Column("fields", JSON, nullable=False, default=list),
    Column("draft_revision", Integer, nullable=False),  # +1 on every edit of the draft (compare-and-set)
    Column("version", Integer, nullable=False),  # the latest published version (0: never published)
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("published_at", TS, nullable=True),  # of the latest published version
)

# Each publication of a case: immutable, public; the KPI table and the partners as they were at publication.
case_versions = Table(
    "case_versions",
    metadata,
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("owner_department_name", String(200), nullable=False),
    Column("title", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("approach", Text, nullable=False),
    Column("outcomes", Text, nullable=False),
    Column("lessons", Text, nullable=False),
    Column("transferability", Text, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("kpis", JSON, nullable=False),
    Column("partners", JSON, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("published_at", TS, nullable=False),
    Column("published_by", String(64), nullable=False),
    PrimaryKeyConstraint("case_id", "version", name="pk_case_versions"),
    Index("ix_case_versions_published_at", "published_at"),
)


# ---- federation (migration 0004): other municipalities' themes and cases, follows, wide-area themes -------------

# The member municipalities as the trust anchor listed them at the last look (services.projects.federation): a
# node no longer listed is inactive, and its copies are hidden. Without a trust anchor the table stays empty.
federation_members = Table(
    "federation_members",
    metadata,
    Column("node", String(32), primary_key=True),
    Column("entity_id", String(300), nullable=False),  # its public base URL (links to the original pages)
    Column("active", Boolean, nullable=False),
    Column("checked_at", TS, nullable=False),
)

# Read-only copies of other nodes' published themes, from their own events; the newest version wins.
remote_themes = Table(
    "remote_themes",
    metadata,
    Column("origin_node", String(32), nullable=False),
    Column("id", String(36), nullable=False),
    Column("owner_department_name", String(200), nullable=False),
    Column("title", String(200), nullable=False),
    Column("background", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("desired_outcome", Text, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("company_points", Text, nullable=False),
    Column("phase", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("published_at", TS, nullable=False),
    Column("result", JSON, nullable=True),
    Column("wide_area", Boolean, nullable=False),
    Column("invited_nodes", JSON, nullable=False),
    Column("participants", JSON, nullable=False),
    Column("origin_case", JSON, nullable=True),
    Column("received_at", TS, nullable=False),
    PrimaryKeyConstraint("origin_node", "id", name="pk_remote_themes"),
)

# Read-only copies of other nodes' published cases (事例).
remote_cases = Table(
    "remote_cases",
    metadata,
    Column("origin_node", String(32), nullable=False),
    Column("id", String(36), nullable=False),
    Column("theme_id", String(36), nullable=False),
    Column("owner_department_name", String(200), nullable=False),
    Column("title", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("approach", Text, nullable=False),
    Column("outcomes", Text, nullable=False),
    Column("lessons", Text, nullable=False),
    Column("transferability", Text, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("kpis", JSON, nullable=False),
    Column("partners", JSON, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("published_at", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    PrimaryKeyConstraint("origin_node", "id", name="pk_remote_cases"),
)

# Who follows which theme or case (of any node, this one included) and what they last saw of it.
follows = Table(
    "follows",
    metadata,
    Column("global_handle", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # theme | case
    Column("origin_node", String(32), nullable=False),
    Column("item_id", String(36), nullable=False),
    Column("followed_at", TS, nullable=False),
    Column("seen_at", TS, nullable=False),
    Column("seen_version", Integer, nullable=False),
    Column("seen_phase", Integer, nullable=True),
    PrimaryKeyConstraint("global_handle", "kind", "origin_node", "item_id", name="pk_follows"),
    CheckConstraint("kind IN ('theme', 'case')", name="kind"),
)

# A wide-area theme's invited municipalities (node ids), at the theme's own node.
theme_invitations = Table(
    "theme_invitations",
    metadata,
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("node", String(32), nullable=False),
    Column("invited_at", TS, nullable=False),
    Column("invited_by", String(64), nullable=False),
    PrimaryKeyConstraint("theme_id", "node", name="pk_theme_invitations"),
)

# Invited municipalities whose declaration of participation arrived (from their own event stream).
theme_participants = Table(
    "theme_participants",
    metadata,
    Column("theme_id", String(36), ForeignKey("themes.id"), nullable=False),
    Column("node", String(32), nullable=False),
    Column("declared_at", TS, nullable=False),
    Column("recorded_at", TS, nullable=False),
    Column("note", Text, nullable=False),
    PrimaryKeyConstraint("theme_id", "node", name="pk_theme_participants"),
)

# This node's own declarations of participation in other nodes' wide-area themes.
participations = Table(
    "participations",
    metadata,
    Column("origin_node", String(32), nullable=False),
    Column("theme_id", String(36), nullable=False),
    Column("declared_at", TS, nullable=False),
    Column("declared_by", String(64), nullable=False),
    Column("note", Text, nullable=False),
    PrimaryKeyConstraint("origin_node", "theme_id", name="pk_participations"),
)

# 共感 (likes, migration 0007) on published themes and cases: one per person per item (the primary key).
# `recipient` is the theme's maker or the case's publisher when it was given, for the notebook's 共感.
likes = Table(
    "likes",
    metadata,
    Column("kind", String(8), nullable=False),  # theme | case
    Column("item_id", String(36), nullable=False),
    Column("giver", String(64), nullable=False),
    Column("recipient", String(64), nullable=True),
    Column("given_at", TS, nullable=False),
    PrimaryKeyConstraint("kind", "item_id", "giver", name="pk_likes"),
    Index("ix_likes_recipient", "recipient"),
    CheckConstraint("kind IN ('theme', 'case')", name="kind"),
)
