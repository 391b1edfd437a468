"""The volunteer roster (migration 0012): the people an opening's organiser accepted as volunteers for an event, from
the sns service's events (OpeningApplicationAccepted adds, OpeningApplicationWithdrawn of an accepted one removes).
A rostered person's check-in at that event earns its `volunteer_points` (services/points/taps/service.py)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, String, Table

from services.points.tables import metadata

volunteer_roster = Table(
    "volunteer_roster",
    metadata,
    Column("event_code", String(64), nullable=False),
    Column("global_handle", String(64), nullable=False),
    Column("application_id", String(36), nullable=False),  # the sns application that put them here
    Column("opening_id", String(36), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("event_code", "global_handle", name="pk_volunteer_roster"),
)
