"""共感 (likes) on published themes and cases: one per person per item, with the person who received it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "likes",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("giver", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=True),
        sa.Column("given_at", TS, nullable=False),
        sa.CheckConstraint("kind IN ('theme', 'case')", name=op.f("ck_likes_kind")),
        sa.PrimaryKeyConstraint("kind", "item_id", "giver", name="pk_likes"),
    )
    op.create_index("ix_likes_recipient", "likes", ["recipient"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_likes_recipient", table_name="likes")
    op.drop_table("likes")
