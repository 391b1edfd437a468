"""Phase 2 (対話形成): briefings and their registrations, proposals and their partner organisations, evaluators,
reviews (declarations of interest, comments) and their scores, and each theme's result.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "briefings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("venue", sa.String(300), nullable=False),
        sa.Column("online_url", sa.String(300), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("registered", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_briefings"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_briefings_theme_id_themes"),
        sa.CheckConstraint("capacity >= 1", name="ck_briefings_capacity"),
        sa.CheckConstraint("registered >= 0 AND registered <= capacity", name="ck_briefings_seats"),
    )
    op.create_index("ix_briefings_theme_id", "briefings", ["theme_id", "starts_at"])
    op.create_table(
        "briefing_registrations",
        sa.Column("briefing_id", sa.String(36), nullable=False),
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("briefing_id", "global_handle", name="pk_briefing_registrations"),
        sa.ForeignKeyConstraint(["briefing_id"], ["briefings.id"],
                                name="fk_briefing_registrations_briefing_id_briefings"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name="fk_briefing_registrations_org_id_organisations"),
    )
    op.create_table(
        "proposals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("lead_org_id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("budget_yen", sa.BigInteger(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("withdrawn_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_proposals"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_proposals_theme_id_themes"),
        sa.ForeignKeyConstraint(["lead_org_id"], ["organisations.id"], name="fk_proposals_lead_org_id_organisations"),
        sa.UniqueConstraint("theme_id", "lead_org_id", name="uq_proposals_theme_id_lead_org_id"),
        sa.CheckConstraint("budget_yen >= 0", name="ck_proposals_budget"),
        sa.CheckConstraint("status IN ('submitted', 'withdrawn')", name="ck_proposals_status"),
    )
    op.create_table(
        "proposal_partners",
        sa.Column("proposal_id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("answered_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("proposal_id", "org_id", name="pk_proposal_partners"),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], name="fk_proposal_partners_proposal_id_proposals"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name="fk_proposal_partners_org_id_organisations"),
        sa.CheckConstraint("status IN ('pending', 'confirmed', 'declined')", name="ck_proposal_partners_status"),
    )
    op.create_index("ix_proposal_partners_org_id", "proposal_partners", ["org_id"])
    op.create_table(
        "evaluators",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("appointed_at", TS, nullable=False),
        sa.Column("appointed_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("theme_id", "global_handle", name="pk_evaluators"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_evaluators_theme_id_themes"),
    )
    op.create_index("ix_evaluators_global_handle", "evaluators", ["global_handle"])
    op.create_table(
        "reviews",
        sa.Column("proposal_id", sa.String(36), nullable=False),
        sa.Column("evaluator", sa.String(64), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("conflicted", sa.Boolean(), nullable=False),
        sa.Column("conflict_reason", sa.String(1000), nullable=False),
        sa.Column("declared_at", TS, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("scored_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("proposal_id", "evaluator", name="pk_reviews"),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], name="fk_reviews_proposal_id_proposals"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_reviews_theme_id_themes"),
    )
    op.create_index("ix_reviews_theme_id", "reviews", ["theme_id", "evaluator"])
    op.create_table(
        "review_scores",
        sa.Column("proposal_id", sa.String(36), nullable=False),
        sa.Column("evaluator", sa.String(64), nullable=False),
        sa.Column("criterion_id", sa.String(36), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", "evaluator", "criterion_id", name="pk_review_scores"),
        sa.ForeignKeyConstraint(["proposal_id", "evaluator"], ["reviews.proposal_id", "reviews.evaluator"],
                                name="fk_review_scores_review"),
        sa.ForeignKeyConstraint(["criterion_id"], ["criteria.id"], name="fk_review_scores_criterion_id_criteria"),
        sa.CheckConstraint("score BETWEEN 0 AND 5", name="ck_review_scores_score"),
    )
    op.create_table(
        "results",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("closed_at", TS, nullable=False),
        sa.Column("closed_by", sa.String(64), nullable=False),
        sa.Column("ranking", sa.JSON(), nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("published_by", sa.String(64), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("selected", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("theme_id", name="pk_results"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_results_theme_id_themes"),
    )


def downgrade() -> None:
    for table in ("results", "review_scores", "reviews", "evaluators", "proposal_partners", "proposals",
                  "briefing_registrations", "briefings"):
        op.drop_table(table)
