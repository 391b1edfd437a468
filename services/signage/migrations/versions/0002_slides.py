"""Slides made from the node's own data: their source and the last data they showed.

Revision ID: 0002_slides
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0002_slides"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slides",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("facility_id", sa.String(length=48), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("refreshed_at", TS, nullable=True),
        sa.Column("data_at", TS, nullable=True),
        sa.Column("failing", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="pk_slides"),
    )


def downgrade() -> None:
    op.drop_table("slides")
