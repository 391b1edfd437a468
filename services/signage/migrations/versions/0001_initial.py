"""Screens, content items and their bytes, playlists, emergencies, plays and the state row; outbox and inbox of the
signage service.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS, create_bus_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables()
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "seq", name="pk_blobs"),
    )
    op.create_table(
        "emergencies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("screens", sa.JSON(), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("cap_key", sa.String(length=300), nullable=True),
        sa.Column("issued_by", sa.String(length=64), nullable=True),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("cleared_by", sa.String(length=64), nullable=True),
        sa.Column("cleared_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergencies")),
        sa.UniqueConstraint("cap_key", name=op.f("uq_emergencies_cap_key")),
    )
    op.create_index("ix_emergencies_cleared_at", "emergencies", ["cleared_at"], unique=False)

    op.create_table(
        "items",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("mime", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("valid_until", TS, nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("slide_key", sa.String(length=40), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("origin_node", sa.String(length=32), nullable=True),
        sa.Column("origin_id", sa.String(length=36), nullable=True),
        sa.Column("offered", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('image', 'video', 'slide', 'html')", name=op.f("ck_items_kind")),
        sa.CheckConstraint("source IN ('upload', 'slide', 'peer')", name=op.f("ck_items_source")),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected', 'withdrawn')", name=op.f("ck_items_status")),
        sa.CheckConstraint("bytes >= 0 AND duration_s > 0", name=op.f("ck_items_sizes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("slide_key", name=op.f("uq_items_slide_key")),
    )
    op.create_index("ix_items_origin", "items", ["origin_node", "origin_id"], unique=True)
    op.create_index("ix_items_status", "items", ["status"], unique=False)

    op.create_table(
        "playlists",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("dayparts", sa.JSON(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("interrupt_share", sa.Float(), nullable=True),
        sa.Column("valid_from", TS, nullable=True),
        sa.Column("valid_until", TS, nullable=True),
        sa.Column("screens", sa.JSON(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playlists")),
    )
    op.create_table(
        "plays",
        sa.Column("play_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("screen", sa.String(length=80), nullable=False),
        sa.Column("node", sa.String(length=32), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("play_id", name=op.f("pk_plays")),
    )
    op.create_index("ix_plays_item_id_started_at", "plays", ["item_id", "started_at"], unique=False)
    op.create_index("ix_plays_screen_started_at", "plays", ["screen", "started_at"], unique=False)

    op.create_table(
        "screens",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("place", sa.String(length=80), nullable=False),
        sa.Column("orientation", sa.String(length=10), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("enrolled_at", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=True),
        sa.Column("playing", sa.String(length=64), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("cache_bytes", sa.Integer(), nullable=True),
        sa.Column("player_version", sa.String(length=40), nullable=True),
        sa.Column("screenshot", sa.Text(), nullable=True),
        sa.Column("screenshot_at", TS, nullable=True),
        sa.CheckConstraint("orientation IN ('landscape', 'portrait')", name=op.f("ck_screens_orientation")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_screens")),
    )
    op.create_table(
        "state",
        sa.Column("key", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_state")),
    )


def downgrade() -> None:
    for table in ("state", "plays", "emergencies", "playlists", "blobs", "items", "screens", "inbox", "outbox"):
        op.drop_table(table)
