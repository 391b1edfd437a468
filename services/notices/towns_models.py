"""The towns a person follows for their public notices (issue 18 point 3), on the notices service's metadata: kept
on the person's home node only, deleted with the person's account."""

from __future__ import annotations

from sqlalchemy import Column, Index, PrimaryKeyConstraint, String, Table

from services.notices.models import TS, metadata

town_follows = Table(
    "town_follows",
    metadata,
    Column("person", String(64), nullable=False),  # a resident of this node (global handle)
    Column("node", String(32), nullable=False),  # the followed town's node id
    Column("followed_at", TS, nullable=False),
    PrimaryKeyConstraint("person", "node", name="pk_town_follows"),
    Index("ix_town_follows_node", "node"),  # a peer's notice: its followers here
)
