"""Tables of the card terminals as last heard."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
)

from services.points.tables import metadata

# Card terminals as last heard (heartbeats, taps): mode, event, spool queue, unsettled taps (migration 0004).
terminals = Table(
    "terminals",
    metadata,
    Column("terminal_id", String(32), primary_key=True),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("event", String(64), nullable=True),
    Column("queue", Integer, nullable=False, default=0),
    Column("unsettled", Integer, nullable=False, default=0),
    Column("last_tap_at", DateTime(timezone=True), nullable=True),
    Column("version", String(32), nullable=False, default=""),
    Column("interval_s", Integer, nullable=False, default=30),  # its heartbeat interval, seconds
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),  # when its last heartbeat arrived
)
