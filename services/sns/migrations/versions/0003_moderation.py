"""Moderation: reports (one open per reporter and thing), decisions about people with their appeals, blocked peer
nodes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("reporter", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("open_key", sa.String(length=140), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=True),
        sa.Column("decision_reason", sa.String(length=300), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_reports_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("open_key", name=op.f("uq_reports_open_key")),
    )
    op.create_index("ix_reports_status_created_at", "reports", ["status", "created_at"], unique=False)
    op.create_table(
        "moderation_actions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("until", TS, nullable=True),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("appeal", sa.Text(), nullable=True),
        sa.Column("appealed_at", TS, nullable=True),
        sa.Column("appeal_decision", sa.String(length=8), nullable=True),
        sa.Column("appeal_reason", sa.String(length=300), nullable=True),
        sa.Column("appeal_decided_by", sa.String(length=64), nullable=True),
        sa.Column("appeal_decided_at", TS, nullable=True),
        sa.CheckConstraint("action IN ('hide', 'warn', 'suspend')", name=op.f("ck_moderation_actions_action")),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"],
                                name=op.f("fk_moderation_actions_report_id_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_actions")),
    )
    op.create_index("ix_moderation_actions_person", "moderation_actions", ["person", "action", "until"],
                    unique=False)
    op.create_table(
        "blocked_nodes",
        sa.Column("node", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_blocked_nodes")),
    )


def downgrade() -> None:
    op.drop_table("blocked_nodes")
    op.drop_index("ix_moderation_actions_person", table_name="moderation_actions")
    op.drop_table("moderation_actions")
    op.drop_index("ix_reports_status_created_at", table_name="reports")
    op.drop_table("reports")
