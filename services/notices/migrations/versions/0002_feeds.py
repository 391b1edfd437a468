"""Collected feeds, their items and sorting rules; private calendar tokens (issue 18 points 5 and 7).

Revision ID: 0002_feeds
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0002_feeds"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("category", sa.String(48), nullable=False),
        sa.Column("every_minutes", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(48), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("etag", sa.String(300), nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("next_poll_at", TS, nullable=False),
        sa.Column("leased_until", TS, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("last_polled_at", TS, nullable=True),
        sa.Column("last_ok_at", TS, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        sa.UniqueConstraint("url", name=op.f("uq_feeds_url")),
    )
    op.create_index("ix_feeds_next_poll_at", "feeds", ["next_poll_at"])
    op.create_table(
        "feed_items",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("feed_id", sa.String(36), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("link", sa.String(2000), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("category", sa.String(48), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("starts_at", TS, nullable=True),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("location", sa.String(200), nullable=True),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], name=op.f("fk_feed_items_feed_id_feeds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_items")),
        sa.UniqueConstraint("feed_id", "key_hash", name="uq_feed_items_feed_id_key_hash"),
    )
    op.create_index("ix_feed_items_kind_first_seen", "feed_items", ["kind", "first_seen_at"])
    op.create_index("ix_feed_items_starts_at", "feed_items", ["starts_at"])
    op.create_table(
        "feed_rules",
        sa.Column("position", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("keyword", sa.String(100), nullable=False),
        sa.Column("category", sa.String(48), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_feed_rules")),
    )
    op.create_table(
        "calendar_tokens",
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("person", name=op.f("pk_calendar_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("calendar_tokens")
    op.drop_table("feed_rules")
    op.drop_index("ix_feed_items_starts_at", table_name="feed_items")
    op.drop_index("ix_feed_items_kind_first_seen", table_name="feed_items")
    op.drop_table("feed_items")
    op.drop_index("ix_feeds_next_poll_at", table_name="feeds")
    op.drop_table("feeds")
