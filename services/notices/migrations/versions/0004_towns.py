"""The towns a person follows for their public notices (issue 18 point 3).

Revision ID: 0004_towns
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0004_towns"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "town_follows",
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("node", sa.String(32), nullable=False),
        sa.Column("followed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("person", "node", name=op.f("pk_town_follows")),
    )
    op.create_index("ix_town_follows_node", "town_follows", ["node"])


def downgrade() -> None:
    op.drop_index("ix_town_follows_node", table_name="town_follows")
    op.drop_table("town_follows")
