"""sigfed: content shared between towns: the member towns' public URLs, their offers, the plays reported to the
makers of adopted items and the plays reported back of this town's items.

Revision ID: 0002_sigfed
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0002_sigfed"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fed_peers",
        sa.Column("node", sa.String(length=32), nullable=False),
        sa.Column("public_url", sa.String(length=300), nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("node", name="pk_fed_peers"),
    )
    op.create_table(
        "fed_offers",
        sa.Column("origin_node", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("mime", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("valid_until", TS, nullable=True),
        sa.Column("offered_at", TS, nullable=False),
        sa.Column("withdrawn_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("origin_node", "item_id", name="pk_fed_offers"),
    )
    op.create_table(
        "fed_reported",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("plays", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("reported_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("item_id", "day", name="pk_fed_reported"),
    )
    op.create_table(
        "fed_plays",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("town", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("plays", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("item_id", "town", "day", name="pk_fed_plays"),
    )


def downgrade() -> None:
    for name in ("fed_plays", "fed_reported", "fed_offers", "fed_peers"):
        op.drop_table(name)
