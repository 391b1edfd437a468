"""The directory of communities across towns (issue 20 point 6): member towns, what this node announced of its
communities, and other towns' communities.

Nothing is announced here: the sns service's directory sync lists the existing communities at its first start
(services/sns/directory.py), idempotently, against `dir_announced`.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dir_towns",
        sa.Column("node", sa.String(32), nullable=False),
        sa.Column("public_url", sa.String(300), nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_dir_towns")),
    )
    op.create_table(
        "dir_announced",
        sa.Column("community_id", sa.String(36), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("announced_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_dir_announced")),
    )
    op.create_table(
        "dir_entries",
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("community_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("listed_at", TS, nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("origin_node", "community_id", name="pk_dir_entries"),
    )
    op.create_index("ix_dir_entries_listed_at", "dir_entries", ["listed_at"])
    op.create_table(
        "dir_entry_categories",
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("community_id", sa.String(36), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("origin_node", "community_id", "category", name="pk_dir_entry_categories"),
    )
    op.create_index("ix_dir_entry_categories_category", "dir_entry_categories", ["category"])


def downgrade() -> None:
    op.drop_index("ix_dir_entry_categories_category", table_name="dir_entry_categories")
    op.drop_table("dir_entry_categories")
    op.drop_index("ix_dir_entries_listed_at", table_name="dir_entries")
    op.drop_table("dir_entries")
    op.drop_table("dir_announced")
    op.drop_table("dir_towns")
