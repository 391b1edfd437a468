"""Tables of the bookings service (its own database or schema): facilities, bookings, and the kernel's outbox and
inbox.

A facility's description beyond its name and place (hours, closed days, slot layout, fees, rules) is one JSON
document (`spec`), validated by the contracts' models on the way in and out. A booking keeps its time as
`starts_at`/`ends_at` and, for the no-double-booking guarantee, `held_until` = end + the facility's buffer:
on PostgreSQL an exclusion constraint (btree_gist) forbids two rows of one facility whose [starts_at, held_until)
ranges overlap while both are in a state that holds the slot (migration 0001); on SQLite the writing transaction
checks and inserts under the database's write lock (every transaction begins IMMEDIATE: towntip.kernel.db).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from towntip.kernel import db
from towntip.kernel.bus.outbox import define_bus_tables
from towntip.kernel.contracts.bookings import STATES

metadata = MetaData(naming_convention=db.NAMING_CONVENTION)
bus = define_bus_tables(metadata)
TS = DateTime(timezone=True)
STATE_CHECK = "state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")"

facilities = Table(
    "facilities",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("name_ja", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("address", Text, nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("capacity", Integer, nullable=True),
    Column("accessibility", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("spec", JSON, nullable=False),  # hours, closed days, layout, buffer, rules (contracts.FacilityPut)
    Column("active", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_facilities_kind", "kind"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("facility_id", String(48), ForeignKey("facilities.id"), nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=False),
    Column("held_until", TS, nullable=False),  # ends_at + the facility's buffer when booked
    Column("state", String(16), nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("user_class", String(16), nullable=False),
    Column("fee", Integer, nullable=False),
    Column("booker", String(64), nullable=True),  # global handle; NULL for a walk-in
    Column("booker_user_id", String(64), nullable=True),
    Column("booker_name", String(100), nullable=False),
    Column("contact_phone", String(24), nullable=True),  # walk-ins only (personal data: docs/bookings.md)
    Column("booked_by", String(64), nullable=True),  # staff handle at the counter
    Column("month", String(7), nullable=False),  # YYYY-MM of the start in JST: the monthly quota's key
    Column("created_at", TS, nullable=False),
    Column("confirmed_at", TS, nullable=True),
    Column("cancelled_at", TS, nullable=True),
    Column("cancelled_by", String(64), nullable=True),
    # Added in 0002: the booking's life past confirmation (contracts.bookings: State).
    Column("origin", String(16), nullable=False, server_default="direct"),
    Column("group_id", String(36), nullable=True),
    Column("series_id", String(36), nullable=True),
    Column("fee_due_at", TS, nullable=True),
    Column("paid_at", TS, nullable=True),
    Column("paid_with", String(16), nullable=True),
    Column("payment_ref", String(64), nullable=True),  # the points ledger's entry or the coupon's id
    Column("cancel_reason", String(16), nullable=True),
    Column("cancellation_fee", Integer, nullable=False, server_default="0"),
    Column("checked_in_at", TS, nullable=True),
    Column("offer_expires_at", TS, nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("decision_note", String(200), nullable=True),
    # Added in 0003_life: a cancelled paid booking's refund (the fee less the cancellation fee), done by the sweeper.
    Column("refund_due", Integer, nullable=True),
    Column("refunded_at", TS, nullable=True),
    CheckConstraint(STATE_CHECK, name="state"),
    CheckConstraint("starts_at < ends_at AND ends_at <= held_until", name="times"),
    CheckConstraint("fee >= 0", name="fee"),
    Index("ix_bookings_facility_id_starts_at", "facility_id", "starts_at"),
    Index("ix_bookings_booker_month", "booker", "month"),
    Index("ix_bookings_state_fee_due_at", "state", "fee_due_at"),
    Index("ix_bookings_group_id", "group_id"),
    Index("ix_bookings_series_id", "series_id"),
)

# Added in 0005_photos: a facility's photos, prepared (clean JPEG or PNG) at two sizes. Kept in the database so that
# a backup of the service holds them and every instance serves them.
facility_photos = Table(
    "facility_photos",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("facility_id", String(48), ForeignKey("facilities.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("alt_ja", String(200), nullable=False),
    Column("alt_en", String(200), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("image", LargeBinary, nullable=False),
    Column("thumb", LargeBinary, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("created_at", TS, nullable=False),
    Index("ix_facility_photos_facility", "facility_id", "position"),
)

# Added in 0003_portal: a person's private iCalendar feed (only the token's SHA-256 is kept).
feed_tokens = Table(
    "feed_tokens",
    metadata,
    Column("booker", String(64), primary_key=True),  # the person's global handle
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
)

# Added in 0003_waitlist_series: people waiting for a taken slot (キャンセル待ち), in order of `seq`.
waitlist = Table(
    "booking_waitlist",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # the order in line
    Column("id", String(36), nullable=False, unique=True),
    Column("facility_id", String(48), ForeignKey("facilities.id"), nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("user_class", String(16), nullable=False),
    Column("person", String(64), nullable=False),  # global handle: offers go to them
    Column("person_user_id", String(64), nullable=True),
    Column("person_name", String(100), nullable=False),
    Column("booked_by", String(64), nullable=True),  # staff who put the person on the list
    Column("state", String(16), nullable=False),  # contracts.bookings_waitlist.WaitState
    Column("booking_id", String(36), nullable=True),  # the offered booking
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_booking_waitlist_facility_id_state_starts_at", "facility_id", "state", "starts_at"),
    Index("ix_booking_waitlist_person_state", "person", "state"),
    Index("ix_booking_waitlist_booking_id", "booking_id"),
)

# Added in 0003_waitlist_series: recurring series (定期予約); their bookings carry `series_id`.
series = Table(
    "booking_series",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("facility_id", String(48), ForeignKey("facilities.id"), nullable=False),
    Column("start_time", String(5), nullable=False),  # HH:MM in JST
    Column("end_time", String(5), nullable=False),
    Column("pattern", JSON, nullable=False),  # contracts.bookings_waitlist.Pattern
    Column("first_day", String(10), nullable=False),
    Column("last_day", String(10), nullable=True),
    Column("count", Integer, nullable=True),
    Column("purpose", String(200), nullable=False),
    Column("user_class", String(16), nullable=False),
    Column("booker", String(64), nullable=True),
    Column("booker_user_id", String(64), nullable=True),
    Column("booker_name", String(100), nullable=False),
    Column("booked_by", String(64), nullable=True),
    Column("missed", JSON, nullable=False),  # [{date, code, reason}] not had when booked
    Column("created_at", TS, nullable=False),
    Index("ix_booking_series_booker", "booker"),
)

# Added in 0003_lottery_groups: registered groups (団体登録) and lotteries (抽選) (services/bookings/groups.py,
# lottery.py).
groups = Table(
    "groups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("name_key", String(100), nullable=False),  # the name folded (NFKC, case, spaces) for "name taken"
    Column("representative", String(64), nullable=False),  # global handle
    Column("representative_user_id", String(64), nullable=False),
    Column("representative_name", String(100), nullable=False),
    Column("activity", Text, nullable=False),
    Column("district", String(60), nullable=False),
    Column("member_count", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("decided_at", TS, nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("decision_note", String(200), nullable=True),
    CheckConstraint("state IN ('pending', 'approved', 'rejected', 'suspended')", name="state"),
    Index("ix_groups_state", "state"),
    Index("ix_groups_name_key", "name_key"),
    Index("ix_groups_representative", "representative"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(36), ForeignKey("groups.id"), primary_key=True),
    Column("handle", String(64), primary_key=True),
    Column("may_book", Boolean, nullable=False),  # named by the representative as one who books for the group
    Index("ix_group_members_handle", "handle"),
)

lottery_rounds = Table(
    "lottery_rounds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("facility_id", String(48), ForeignKey("facilities.id"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("opens_at", TS, nullable=False),
    Column("closes_at", TS, nullable=False),
    Column("max_entries", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("seed", String(64), nullable=True),
    Column("publication", JSON, nullable=True),  # contracts.bookings_lottery.LotteryPublication, after the draw
    Column("drawn_at", TS, nullable=True),
    Column("drawn_by", String(64), nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    CheckConstraint("state IN ('open', 'drawn', 'cancelled')", name="state"),
    CheckConstraint("opens_at < closes_at", name="window"),
    Index("ix_lottery_rounds_facility_id_month", "facility_id", "month", unique=True),
)

lottery_entries = Table(
    "lottery_entries",
    metadata,
    Column("id", String(36), primary_key=True),  # the public ref
    Column("round_id", String(36), ForeignKey("lottery_rounds.id"), nullable=False),
    Column("applicant_key", String(64), nullable=False),  # "group:<id>" or "person:<handle>": the limit's key
    Column("applicant", String(120), nullable=False),  # as published: the group's name, or the ref
    Column("group_id", String(36), nullable=True),
    Column("booker", String(64), nullable=False),  # the person who entered (global handle)
    Column("booker_user_id", String(64), nullable=False),
    Column("booker_name", String(100), nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("user_class", String(16), nullable=False),
    Column("choices", JSON, nullable=False),  # [[start, end], …] ISO 8601, first choice first
    Column("state", String(16), nullable=False),
    Column("won_index", Integer, nullable=True),
    Column("booking_id", String(36), nullable=True),
    Column("created_at", TS, nullable=False),
    CheckConstraint("state IN ('entered', 'withdrawn', 'won', 'lost')", name="state"),
    Index("ix_lottery_entries_round_id_applicant_key", "round_id", "applicant_key"),
    Index("ix_lottery_entries_booker", "booker"),
)
