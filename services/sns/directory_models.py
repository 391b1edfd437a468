"""Tables of the directory of communities across towns (issue 20 point 6), on the sns service's metadata: the member
towns and their public URLs (from the trust anchor), what this node last told them of each of its communities, and
the communities other towns list. No person is named in any of them."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from services.sns.models import TS, metadata

# The other member towns as the trust anchor lists them now: their public URL is where a directory entry links to.
dir_towns = Table(
    "dir_towns",
    metadata,
    Column("node", String(32), primary_key=True),
    Column("public_url", String(300), nullable=False),
    Column("checked_at", TS, nullable=False),
)

# What this node last announced of each of its communities (a row per community ever listed): the sync compares
# the communities with it and announces only what changed, so running it again (at every start) announces nothing.
dir_announced = Table(
    "dir_announced",
    metadata,
    Column("community_id", String(36), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # sha256 of what peers show; "" once closed
    Column("announced_at", TS, nullable=False),
)

# Other towns' open communities, as each town listed them (only from the town itself: the inbox checks).
dir_entries = Table(
    "dir_entries",
    metadata,
    Column("origin_node", String(32), nullable=False),
    Column("community_id", String(36), nullable=False),
    Column("name", String(80), nullable=False),
    Column("description", Text, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("members", Integer, nullable=False),
    Column("listed_at", TS, nullable=False),  # when the town first listed it (as heard here)
    Column("seen_at", TS, nullable=False),  # when it was last announced (a listing not heard of for long is stale)
    PrimaryKeyConstraint("origin_node", "community_id", name="pk_dir_entries"),
    Index("ix_dir_entries_listed_at", "listed_at"),
)

# The categories of each entry, one row per code, for the filter by category (as community_categories).
dir_entry_categories = Table(
    "dir_entry_categories",
    metadata,
    Column("origin_node", String(32), nullable=False),
    Column("community_id", String(36), nullable=False),
    Column("category", String(16), nullable=False),
    PrimaryKeyConstraint("origin_node", "community_id", "category", name="pk_dir_entry_categories"),
    Index("ix_dir_entry_categories_category", "category"),
)
