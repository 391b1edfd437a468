"""Tables of taps and cards: events and their rules, taps as recorded, cards bound to people, registration codes."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from services.points.tables import metadata

# An event where terminals issue points; the rule (points per role) is set per event.
events = Table(
    "events",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("participant_points", Integer, nullable=False),
    Column("volunteer_points", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("participant_points >= 0 AND volunteer_points >= 0", name="rule_not_negative"),
    # ---- まちづくり手帳: what one participation stands for (migration 0008; all optional, set by staff) ----
    Column("field", String(16), nullable=True),  # a category code (towntip.kernel.categories)
    Column("activity", String(16), nullable=True),  # participate | carry_out | learn
    Column("minutes", Integer, nullable=True),  # activity time per participation
    Column("co2_g", Integer, nullable=True),  # CO2 reduction per participation, grams
    Column("kcal", Integer, nullable=True),  # calories burnt per participation
    # ---- when and where, and sign-up (migration 0010_events; all optional) ----
    Column("starts_at", DateTime(timezone=True), nullable=True),
    Column("ends_at", DateTime(timezone=True), nullable=True),
    Column("venue_facility", String(48), nullable=True),  # a facility of the bookings service
    Column("venue_booking", String(36), nullable=True),  # the booking that holds the room
    Column("venue_name", String(200), nullable=True),  # as shown on pages
    Column("capacity", Integer, nullable=True),  # seats for sign-up; NULL: no limit
    Index("ix_events_starts_at", "starts_at"),
)


# Card taps as recorded (the terminal's facts), for per-event figures and the card's history.
taps = Table(
    "taps",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("terminal_id", String(32), nullable=False),
    Column("tap_id", String(64), nullable=False),
    Column("account_id", String(100), ForeignKey("accounts.id"), nullable=False),
    Column("event_code", String(64), ForeignKey("events.code"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("points", Integer, nullable=False),
    Column("tapped_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("journal_id", String(36), ForeignKey("journal.id"), nullable=False),
    # Who earned the event's points by this tap: the person the card was bound to, else the card's account. One per
    # event (migration 0010_events): a second check-in by the same person or card credits nothing ("already").
    # NULL only on taps recorded before 0010 that repeated an earlier one.
    Column("holder", String(100), nullable=True),
    Index("ix_taps_event", "event_code"),
    Index("ix_taps_account", "account_id"),
    Index("uq_taps_event_code_holder", "event_code", "holder", unique=True),
)

# A card bound to a person: its taps credit the person's account (its balance moved there when it was bound).
card_bindings = Table(
    "card_bindings",
    metadata,
    Column("card_account", String(100), ForeignKey("accounts.id"), primary_key=True),
    Column("person_account", String(100), ForeignKey("accounts.id"), nullable=False),
    Column("bound_at", DateTime(timezone=True), nullable=False),
    # "code": a code shown at a terminal, entered on the portal ("tap": by a tap, before that was closed)
    Column("method", String(16), nullable=False),
    Index("ix_card_bindings_person", "person_account"),
)

# A person asked online to bind a card; while the request waits, the card's ordinary taps show a one-time code,
# which binds it once entered on the portal (an IDm is not a secret: typing it proves nothing, seeing the terminal's
# screen when the card touches does).
card_binding_requests = Table(
    "card_binding_requests",
    metadata,
    Column("card_account", String(100), primary_key=True),
    Column("person_account", String(100), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# A touch in registration mode: the terminal shows a one-time code; the person enters it on the portal while
# logged in, which binds the card (possession of the card and of the account, both proven). Hash only.
card_registration_codes = Table(
    "card_registration_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("tap_key", String(200), nullable=False, unique=True),
    Column("card_account", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("used_by", String(100), nullable=True),
)



# Sign-up for an event with a date (migration 0010_events): one row per person and event; a cancelled row stays (its
# time), and signing up again revives it at the end of the line. The waitlist's order is `queued_at`.
event_signups = Table(
    "event_signups",
    metadata,
    Column("event_code", String(64), ForeignKey("events.code"), primary_key=True),
    Column("person", String(64), primary_key=True),  # global handle
    Column("user_id", String(64), nullable=False),
    Column("display_name", String(100), nullable=False),
    Column("state", String(16), nullable=False),  # signed_up | waitlisted | cancelled
    Column("queued_at", DateTime(timezone=True), nullable=False),  # when this sign-up (re)started: the line's order
    Column("changed_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("state IN ('signed_up', 'waitlisted', 'cancelled')", name="state"),
    Index("ix_event_signups_event_code_state", "event_code", "state", "queued_at"),
    Index("ix_event_signups_user_id", "user_id"),
)
