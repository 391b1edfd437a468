"""Registered groups (団体登録) with their members, and lotteries (抽選): rounds and entries.

Revision ID: 0003_lottery_groups
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0003_lottery_groups"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_key", sa.String(100), nullable=False),
        sa.Column("representative", sa.String(64), nullable=False),
        sa.Column("representative_user_id", sa.String(64), nullable=False),
        sa.Column("representative_name", sa.String(100), nullable=False),
        sa.Column("activity", sa.Text(), nullable=False),
        sa.Column("district", sa.String(60), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decision_note", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_groups"),
        sa.CheckConstraint("state IN ('pending', 'approved', 'rejected', 'suspended')", name="ck_groups_state"),
    )
    op.create_index("ix_groups_state", "groups", ["state"])
    op.create_index("ix_groups_name_key", "groups", ["name_key"])
    op.create_index("ix_groups_representative", "groups", ["representative"])
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("may_book", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "handle", name="pk_group_members"),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], name="fk_group_members_group_id_groups"),
    )
    op.create_index("ix_group_members_handle", "group_members", ["handle"])
    op.create_table(
        "lottery_rounds",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("facility_id", sa.String(48), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("opens_at", TS, nullable=False),
        sa.Column("closes_at", TS, nullable=False),
        sa.Column("max_entries", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("seed", sa.String(64), nullable=True),
        sa.Column("publication", sa.JSON(), nullable=True),
        sa.Column("drawn_at", TS, nullable=True),
        sa.Column("drawn_by", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lottery_rounds"),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"],
                                name="fk_lottery_rounds_facility_id_facilities"),
        sa.CheckConstraint("state IN ('open', 'drawn', 'cancelled')", name="ck_lottery_rounds_state"),
        sa.CheckConstraint("opens_at < closes_at", name="ck_lottery_rounds_window"),
    )
    op.create_index("ix_lottery_rounds_facility_id_month", "lottery_rounds", ["facility_id", "month"], unique=True)
    op.create_table(
        "lottery_entries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("round_id", sa.String(36), nullable=False),
        sa.Column("applicant_key", sa.String(64), nullable=False),
        sa.Column("applicant", sa.String(120), nullable=False),
        sa.Column("group_id", sa.String(36), nullable=True),
        sa.Column("booker", sa.String(64), nullable=False),
        sa.Column("booker_user_id", sa.String(64), nullable=False),
        sa.Column("booker_name", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("user_class", sa.String(16), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("won_index", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.String(36), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lottery_entries"),
        sa.ForeignKeyConstraint(["round_id"], ["lottery_rounds.id"],
                                name="fk_lottery_entries_round_id_lottery_rounds"),
        sa.CheckConstraint("state IN ('entered', 'withdrawn', 'won', 'lost')", name="ck_lottery_entries_state"),
    )
    op.create_index("ix_lottery_entries_round_id_applicant_key", "lottery_entries", ["round_id", "applicant_key"])
    op.create_index("ix_lottery_entries_booker", "lottery_entries", ["booker"])


def downgrade() -> None:
    op.drop_table("lottery_entries")
    op.drop_table("lottery_rounds")
    op.drop_table("group_members")
    op.drop_table("groups")
