"""Tables of the collected feeds and the private calendars (issue 18 points 5 and 7), on the notices service's
metadata: the feeds staff registered with their polling state and lease, the items seen (each once), the sorting
rules, and the private calendar tokens (their SHA-256 only)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from services.notices.models import TS, metadata

feeds = Table(
    "feeds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", String(2000), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("category", String(48), nullable=False),
    Column("every_minutes", Integer, nullable=False),
    Column("community_id", String(64), nullable=True),
    Column("state", String(16), nullable=False),  # new, ok, broken, paused
    Column("error_code", String(48), nullable=True),
    Column("error", String(300), nullable=True),
    Column("etag", String(300), nullable=True),
    Column("last_modified", String(100), nullable=True),
    Column("next_poll_at", TS, nullable=False),
    # The lease: one instance polls a feed at a time; a crashed poller's lease runs out and another takes it.
    Column("leased_until", TS, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("last_polled_at", TS, nullable=True),
    Column("last_ok_at", TS, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_feeds_next_poll_at", "next_poll_at"),
)

# An item as last seen; (feed, key) is unique, so two pollers or two fetches of an unchanged item keep one row.
feed_items = Table(
    "feed_items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("feed_id", String(36), ForeignKey("feeds.id"), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("link", String(2000), nullable=True),
    Column("summary", Text, nullable=False),
    Column("category", String(48), nullable=False),
    Column("kind", String(16), nullable=False),  # notice, event
    Column("published_at", TS, nullable=True),
    Column("starts_at", TS, nullable=True),
    Column("ends_at", TS, nullable=True),
    Column("all_day", Boolean, nullable=False),
    Column("location", String(200), nullable=True),
    Column("first_seen_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("feed_id", "key_hash", name="uq_feed_items_feed_id_key_hash"),
    Index("ix_feed_items_kind_first_seen", "kind", "first_seen_at"),
    Index("ix_feed_items_starts_at", "starts_at"),
)

feed_rules = Table(
    "feed_rules",
    metadata,
    Column("position", Integer, primary_key=True),
    Column("keyword", String(100), nullable=False),
    Column("category", String(48), nullable=False),
)

calendar_tokens = Table(
    "calendar_tokens",
    metadata,
    Column("person", String(64), primary_key=True),  # global handle
    Column("user_id", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
)
