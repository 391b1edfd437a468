"""Tables of the notices service (its own database or schema): the people it delivers to, their life-stage answers,
the items an inbox holds (notices, official messages, and the kinds other features add), the inbox rows, the staff's
notices with their history, and the kernel's outbox and inbox.

People are keyed by global handle (name@home), as in sns and projects. An inbox row is one (person, item): the item
is the content once (a notice sent to 100,000 people is one `items` row and 100,000 `inbox_entries` rows), the row
keeps what is the person's own (read, archived). Every row carries the item's `kind` so that a list filters without
a join and each feature (activity notifications, ...) adds its own kind without a new inbox.

Life-stage answers (`life_profiles`) never leave this service: targeting reads `life_facets`, one row per answer
that a notice may target (district, stage, event, interest), derived from the answers in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from towntip.kernel import db
from towntip.kernel.bus.outbox import define_bus_tables

metadata = MetaData(naming_convention=db.NAMING_CONVENTION)
bus = define_bus_tables(metadata)
TS = DateTime(timezone=True)

# Residents of this node the service delivers to: from the identity service's UserRegistered / UserDeleted.
people = Table(
    "people",
    metadata,
    Column("global_handle", String(64), primary_key=True),
    Column("user_id", String(64), nullable=True),
    Column("joined_at", TS, nullable=False),
)

# What a person said about their life stage (contracts.notices.LifeStage as JSON): theirs alone, on their home node.
life_profiles = Table(
    "life_profiles",
    metadata,
    Column("person", String(64), primary_key=True),
    Column("answers", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# The targetable part of the answers, one row each: ("district", "kita"), ("stage", "child_preschool"),
# ("event", "birth"), ("interest", "kosodate"). Keyed for the targeting query (facet, value) -> people.
life_facets = Table(
    "life_facets",
    metadata,
    Column("facet", String(16), nullable=False),
    Column("value", String(100), nullable=False),
    Column("person", String(64), nullable=False),
    PrimaryKeyConstraint("facet", "value", "person", name="pk_life_facets"),
    Index("ix_life_facets_person", "person"),
)

# The content an inbox points at, once: a notice (its current version), an official message, another kind.
items = Table(
    "items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("links", JSON, nullable=False),  # [{"title": ..., "url": ...}]
    Column("category", String(48), nullable=True),
    Column("sender", String(100), nullable=False),  # who speaks: the municipality's section, a service
    Column("ref", String(100), nullable=True),  # what a message is about (a booking id, a receipt id)
    # A message sent twice with one key is delivered once (`service:key`).
    Column("dedup_key", String(200), nullable=True, unique=True),
    Column("origin_node", String(32), nullable=False),
    Column("valid_from", TS, nullable=True),
    Column("valid_until", TS, nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("withdrawn_at", TS, nullable=True),
)

# One row per (person, item): the person's inbox. No reader is ever listed to staff: only counts leave this table.
inbox_entries = Table(
    "inbox_entries",
    metadata,
    Column("person", String(64), nullable=False),
    Column("item_id", String(36), ForeignKey("items.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("delivered_at", TS, nullable=False),
    Column("read_at", TS, nullable=True),  # the person's read/unread mark (they may set it back)
    Column("opened_at", TS, nullable=True),  # first opened: what the staff's count of opened notices counts
    Column("archived_at", TS, nullable=True),
    PrimaryKeyConstraint("person", "item_id", name="pk_inbox_entries"),
    Index("ix_inbox_entries_person_delivered", "person", "delivered_at"),
    Index("ix_inbox_entries_item_opened", "item_id", "opened_at"),
)

# A notice's sending: its target, approval, schedule and the fan-out's progress. Its content is `items` (same id).
NOTICE_STATES = ("draft", "awaiting_approval", "scheduled", "sending", "sent", "withdrawn")
notices = Table(
    "notices",
    metadata,
    Column("id", String(36), ForeignKey("items.id"), primary_key=True),
    Column("target_kind", String(16), nullable=False),
    Column("target_value", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("publish_at", TS, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("approved_by", String(64), nullable=True),
    Column("recipients", Integer, nullable=True),  # counted when it was sent (and at the preview before)
    Column("cursor", String(64), nullable=True),  # the fan-out's last person done (keyset over the handle)
    Column("sent_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in NOTICE_STATES) + ")", name="state"),
    Index("ix_notices_state_publish_at", "state", "publish_at"),
)

# Every change of a notice (created, approved, corrected, withdrawn, sent), with the content as it was then.
notice_history = Table(
    "notice_history",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("notice_id", String(36), ForeignKey("notices.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Column("snapshot", JSON, nullable=False),
    Index("ix_notice_history_notice", "notice_id", "seq"),
)

# Recipients held by another service (community members in sns, theme followers in projects), asked for when the
# notice is sent and kept until its fan-out is done: the fan-out is then the same set-based INSERT ... SELECT.
notice_audience = Table(
    "notice_audience",
    metadata,
    Column("notice_id", String(36), ForeignKey("notices.id"), nullable=False),
    Column("person", String(64), nullable=False),
    PrimaryKeyConstraint("notice_id", "person", name="pk_notice_audience"),
)
