"""共感 (likes) on posts and comments: one per person per item, with the author who received it.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS, Seq

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "likes",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", Seq, nullable=False),
        sa.Column("giver", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=True),
        sa.Column("given_at", TS, nullable=False),
        sa.CheckConstraint("kind IN ('post', 'comment')", name=op.f("ck_likes_kind")),
        sa.CheckConstraint("giver <> recipient", name=op.f("ck_likes_not_own")),
        sa.PrimaryKeyConstraint("kind", "item_id", "giver", name="pk_likes"),
    )
    op.create_index("ix_likes_recipient", "likes", ["recipient"], unique=False)
    op.create_index("ix_likes_giver", "likes", ["giver"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_likes_giver", table_name="likes")
    op.drop_index("ix_likes_recipient", table_name="likes")
    op.drop_table("likes")
