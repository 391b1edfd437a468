"""Donations (寄附) to certified projects: projects, pledges and their confirmation, receipt numbers per year, the use
of funds, and the node's donation rules (10 まちづくりポイント per 1,000 yen to start with).

A branch from 0006 (courses branch from it too); towntip.kernel.migrate upgrades to every head.

Revision ID: 0007_donations
Revises: 0006
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007_donations"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
DEFAULT_POINTS_PER_1000_YEN = 10


def upgrade() -> None:
    op.create_table(
        "donation_projects",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("description", sa.String(4000), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("goal_yen", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("certified_at", TS, nullable=True),
        sa.Column("certified_by", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_donation_projects"),
        sa.CheckConstraint("goal_yen >= 0", name="ck_donation_projects_goal_not_negative"),
    )
    op.create_table(
        "donations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("project_code", sa.String(32), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("donor_name", sa.String(100), nullable=False),
        sa.Column("amount_yen", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pledged_at", TS, nullable=False),
        sa.Column("confirmed_at", TS, nullable=True),
        sa.Column("confirmed_by", sa.String(100), nullable=True),
        sa.Column("confirmed_via", sa.String(16), nullable=True),
        sa.Column("confirm_tap_key", sa.String(200), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("journal_key", sa.String(200), nullable=True),
        sa.Column("receipt_year", sa.Integer(), nullable=True),
        sa.Column("receipt_seq", sa.Integer(), nullable=True),
        sa.Column("receipt_no", sa.String(64), nullable=True),
        sa.Column("cancelled_at", TS, nullable=True),
        sa.Column("cancelled_by", sa.String(64), nullable=True),
        sa.Column("cancel_reason", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_donations"),
        sa.ForeignKeyConstraint(["project_code"], ["donation_projects.code"],
                                name="fk_donations_project_code_donation_projects"),
        sa.UniqueConstraint("reference", name="uq_donations_reference"),
        sa.UniqueConstraint("confirm_tap_key", name="uq_donations_confirm_tap_key"),
        sa.UniqueConstraint("receipt_no", name="uq_donations_receipt_no"),
        sa.UniqueConstraint("receipt_year", "receipt_seq", name="uq_donations_receipt_year_seq"),
        sa.CheckConstraint("amount_yen > 0", name="ck_donations_amount_positive"),
        sa.CheckConstraint("status IN ('pledged', 'confirmed', 'cancelled')", name="ck_donations_status_known"),
        sa.CheckConstraint("points >= 0", name="ck_donations_points_not_negative"),
    )
    op.create_index("ix_donations_project", "donations", ["project_code", "status"])
    op.create_index("ix_donations_person", "donations", ["person"])
    op.create_table(
        "donation_receipt_counters",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_donation_receipt_counters"),
    )
    op.create_table(
        "donation_fund_uses",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_code", sa.String(32), nullable=False),
        sa.Column("used_on", sa.Date(), nullable=False),
        sa.Column("amount_yen", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_donation_fund_uses"),
        sa.ForeignKeyConstraint(["project_code"], ["donation_projects.code"],
                                name="fk_donation_fund_uses_project_code_donation_projects"),
        sa.CheckConstraint("amount_yen > 0", name="ck_donation_fund_uses_amount_positive"),
    )
    op.create_index("ix_donation_fund_uses_project", "donation_fund_uses", ["project_code"])
    rules = op.create_table(
        "donation_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("points_per_1000_yen", sa.Integer(), nullable=False),
        sa.Column("issuer_name", sa.String(100), nullable=False),
        sa.Column("bank_account", sa.String(300), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_donation_rules"),
        sa.CheckConstraint("points_per_1000_yen BETWEEN 0 AND 1000", name="ck_donation_rules_rate_range"),
    )
    op.bulk_insert(rules, [{"id": 1, "points_per_1000_yen": DEFAULT_POINTS_PER_1000_YEN, "issuer_name": "",
                            "bank_account": "", "updated_at": datetime.now(UTC), "updated_by": ""}])


def downgrade() -> None:
    op.drop_table("donation_rules")
    op.drop_index("ix_donation_fund_uses_project", "donation_fund_uses")
    op.drop_table("donation_fund_uses")
    op.drop_table("donation_receipt_counters")
    op.drop_index("ix_donations_person", "donations")
    op.drop_index("ix_donations_project", "donations")
    op.drop_table("donations")
    op.drop_table("donation_projects")
