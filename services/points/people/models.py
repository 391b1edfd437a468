"""The people directory of the points service (migration 0008): who is who at this node, and in which district.

One directory for the whole service. Fed by the identity service's events (`evt.<node>.identity.*`: UserRegistered,
ProfileChanged, UserDeleted; services/points/people/) and by the people the gateway vouches for in a request (an
authenticated `Actor`: that is how a global handle meets its user id, which identity's public profile does not carry).
The notebook compares a person with their district and the region from it; the staff's figures count by district.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table

from services.points.tables import metadata

people = Table(
    "people",
    metadata,
    Column("global_handle", String(64), primary_key=True),  # name@home, as identity announces it
    Column("user_id", String(64), nullable=True, unique=True),  # identity's user id here: person:<user_id>
    Column("display_name", String(100), nullable=False),
    Column("district", String(100), nullable=False, default=""),  # '' = not given
    # The time of the identity event last applied (older ones arriving late change nothing); None: only seen.
    Column("profile_at", DateTime(timezone=True), nullable=True),
    Column("seen_at", DateTime(timezone=True), nullable=True),  # when the gateway last vouched for the person
    Index("ix_people_district", "district"),
)
