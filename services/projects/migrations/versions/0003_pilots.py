"""Phases 3 (実証設計) and 4 (成果定着): the pilot's roles, milestones, KPIs and their measurements, plan versions,
agreements with their immutable versions and signatures, report and budget rationale versions, the next-year
decision, and case studies with their published versions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}")


def _saved(table: str) -> list:
    return [sa.Column("saved_at", TS, nullable=False), sa.Column("saved_by", sa.String(64), nullable=False),
            sa.Column("saved_by_name", sa.String(100), nullable=False),
            sa.PrimaryKeyConstraint("theme_id", "version", name=f"pk_{table}"), _fk(table, "theme_id", "themes")]


def upgrade() -> None:
    op.create_table(
        "pilot_roles",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("responsibilities", sa.Text(), nullable=False),
        sa.Column("contact_handle", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pilot_roles"),
        _fk("pilot_roles", "theme_id", "themes"),
        _fk("pilot_roles", "org_id", "organisations"),
    )
    op.create_index("ix_pilot_roles_theme_id", "pilot_roles", ["theme_id"])
    op.create_table(
        "pilot_milestones",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("done_by", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pilot_milestones"),
        _fk("pilot_milestones", "theme_id", "themes"),
        sa.CheckConstraint("status IN ('planned', 'done')", name="ck_pilot_milestones_status"),
        sa.CheckConstraint("(status = 'done') = (done_at IS NOT NULL)", name="ck_pilot_milestones_done_at"),
    )
    op.create_index("ix_pilot_milestones_theme_id", "pilot_milestones", ["theme_id", "due_on"])
    op.create_table(
        "pilot_kpis",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(40), nullable=False),
        sa.Column("baseline", sa.String(40), nullable=False),
        sa.Column("target", sa.String(40), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("data_source", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pilot_kpis"),
        _fk("pilot_kpis", "theme_id", "themes"),
        sa.UniqueConstraint("theme_id", "name", name="uq_pilot_kpis_theme_id_name"),
        sa.CheckConstraint("direction IN ('increase', 'decrease')", name="ck_pilot_kpis_direction"),
    )
    op.create_table(
        "kpi_measurements",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kpi_id", sa.String(36), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("value", sa.String(40), nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=False),
        sa.Column("note", sa.String(1000), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kpi_measurements"),
        _fk("kpi_measurements", "kpi_id", "pilot_kpis"),
        _fk("kpi_measurements", "theme_id", "themes"),
        sa.UniqueConstraint("kpi_id", "seq", name="uq_kpi_measurements_kpi_id_seq"),
    )
    op.create_table(
        "pilot_plans",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("objective", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("budget_yen", sa.BigInteger(), nullable=False),
        sa.Column("risks", sa.Text(), nullable=False),
        sa.Column("data_handling", sa.Text(), nullable=False),
        *_saved("pilot_plans"),
        sa.CheckConstraint("budget_yen >= 0", name="ck_pilot_plans_budget"),
        sa.CheckConstraint("period_end >= period_start", name="ck_pilot_plans_period"),
    )
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("signed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agreements"),
        _fk("agreements", "theme_id", "themes"),
        sa.CheckConstraint("kind IN ('agreement', 'memorandum', 'nda')", name="ck_agreements_kind"),
    )
    op.create_index("ix_agreements_theme_id", "agreements", ["theme_id"])
    op.create_table(
        "agreement_versions",
        sa.Column("agreement_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "number", name="pk_agreement_versions"),
        _fk("agreement_versions", "agreement_id", "agreements"),
    )
    op.create_table(
        "agreement_signatures",
        sa.Column("agreement_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signed_by", sa.String(64), nullable=False),
        sa.Column("signed_by_name", sa.String(100), nullable=False),
        sa.Column("signed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "version", "org_id", name="pk_agreement_signatures"),
        _fk("agreement_signatures", "org_id", "organisations"),
        sa.ForeignKeyConstraint(["agreement_id", "version"],
                                ["agreement_versions.agreement_id", "agreement_versions.number"],
                                name="fk_agreement_signatures_version"),
    )
    op.create_table(
        "pilot_reports",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("results", sa.Text(), nullable=False),
        sa.Column("issues", sa.Text(), nullable=False),
        sa.Column("lessons", sa.Text(), nullable=False),
        *_saved("pilot_reports"),
    )
    op.create_table(
        "budget_rationales",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actual_cost_yen", sa.BigInteger(), nullable=False),
        sa.Column("effects", sa.Text(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("requested_budget_yen", sa.BigInteger(), nullable=False),
        *_saved("budget_rationales"),
        sa.CheckConstraint("actual_cost_yen >= 0 AND requested_budget_yen >= 0", name="ck_budget_rationales_yen"),
    )
    op.create_table(
        "pilot_decisions",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("decided_by_name", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("theme_id", name="pk_pilot_decisions"),
        _fk("pilot_decisions", "theme_id", "themes"),
        sa.CheckConstraint("decision IN ('adopt', 'continue', 'expand', 'end')", name="ck_pilot_decisions_decision"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("approach", sa.Text(), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.Column("lessons", sa.Text(), nullable=False),
        sa.Column("transferability", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("draft_revision", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        _fk("cases", "theme_id", "themes"),
        sa.UniqueConstraint("theme_id", name="uq_cases_theme_id"),
    )
    op.create_table(
        "case_versions",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("owner_department_name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("approach", sa.Text(), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.Column("lessons", sa.Text(), nullable=False),
        sa.Column("transferability", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("kpis", sa.JSON(), nullable=False),
        sa.Column("partners", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "version", name="pk_case_versions"),
        _fk("case_versions", "case_id", "cases"),
        _fk("case_versions", "theme_id", "themes"),
    )
    op.create_index("ix_case_versions_published_at", "case_versions", ["published_at"])


def downgrade() -> None:
    for table in ("case_versions", "cases", "pilot_decisions", "budget_rationales", "pilot_reports",
                  "agreement_signatures", "agreement_versions", "agreements", "pilot_plans", "kpi_measurements",
                  "pilot_kpis", "pilot_milestones", "pilot_roles"):
        op.drop_table(table)
