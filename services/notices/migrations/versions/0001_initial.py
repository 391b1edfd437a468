"""People, life-stage answers and facets, inbox items and entries, notices with their history and audience; outbox
and inbox of the notices service.

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

STATES = "('draft', 'awaiting_approval', 'scheduled', 'sending', 'sent', 'withdrawn')"  # models.NOTICE_STATES here


def upgrade() -> None:
    create_bus_tables()
    op.create_table(
        "people",
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("joined_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("global_handle", name=op.f("pk_people")),
    )
    op.create_table(
        "life_profiles",
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("person", name=op.f("pk_life_profiles")),
    )
    op.create_table(
        "life_facets",
        sa.Column("facet", sa.String(16), nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("facet", "value", "person", name="pk_life_facets"),
    )
    op.create_index("ix_life_facets_person", "life_facets", ["person"])
    op.create_table(
        "items",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("category", sa.String(48), nullable=True),
        sa.Column("sender", sa.String(100), nullable=False),
        sa.Column("ref", sa.String(100), nullable=True),
        sa.Column("dedup_key", sa.String(200), nullable=True),
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("valid_from", TS, nullable=True),
        sa.Column("valid_until", TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("withdrawn_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_items_dedup_key")),
    )
    op.create_table(
        "inbox_entries",
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("delivered_at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("archived_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_inbox_entries_item_id_items")),
        sa.PrimaryKeyConstraint("person", "item_id", name="pk_inbox_entries"),
    )
    op.create_index("ix_inbox_entries_person_delivered", "inbox_entries", ["person", "delivered_at"])
    op.create_index("ix_inbox_entries_item_opened", "inbox_entries", ["item_id", "opened_at"])
    op.create_table(
        "notices",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target_value", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("publish_at", TS, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=True),
        sa.Column("cursor", sa.String(64), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_notices_state")),
        sa.ForeignKeyConstraint(["id"], ["items.id"], name=op.f("fk_notices_id_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    op.create_index("ix_notices_state_publish_at", "notices", ["state", "publish_at"])
    op.create_table(
        "notice_history",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name=op.f("fk_notice_history_notice_id_notices")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_notice_history")),
    )
    op.create_index("ix_notice_history_notice", "notice_history", ["notice_id", "seq"])
    op.create_table(
        "notice_audience",
        sa.Column("notice_id", sa.String(36), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name=op.f("fk_notice_audience_notice_id_notices")),
        sa.PrimaryKeyConstraint("notice_id", "person", name="pk_notice_audience"),
    )


def downgrade() -> None:
    for table in ("notice_audience", "notice_history", "notices", "inbox_entries", "items", "life_facets",
                  "life_profiles", "people", "inbox", "outbox"):
        op.drop_table(table)
