"""Tables of the points service (its own database or schema): events, accounts, journal, postings, taps."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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
)

from towntip.kernel import db
from towntip.kernel.bus.outbox import SeqType, define_bus_tables

metadata = MetaData(naming_convention=db.NAMING_CONVENTION)
bus = define_bus_tables(metadata)

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
)

# Ledger accounts: 'card:<keyed hash of IDm>', 'person:<id>', 'system:issuance', ...
accounts = Table(
    "accounts",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("kind", String(16), nullable=False),
    # Only system accounts (issuance, redemption) may go below zero; a person's or a card's never.
    Column("may_go_negative", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Running balances of the accounts that must never go below zero (people, cards), guarded by the CHECK below.
# System accounts keep none: their balance is the sum of their postings (service.system_balance).
balances = Table(
    "balances",
    metadata,
    Column("account_id", String(100), ForeignKey("accounts.id"), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("may_go_negative", Boolean, nullable=False),
    PrimaryKeyConstraint("account_id", "asset"),
    CheckConstraint("may_go_negative OR balance >= 0", name="not_negative"),
)

# What the ledger counts (migration 0005 seeds them): まちづくりポイント, 単位 (course credits), the node's 地域通貨.
# The node sets each asset's names and its rules: expiry of what was earned, or demurrage (a monthly fee on balances).
assets = Table(
    "assets",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),  # points | credits | currency
    Column("name_ja", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("expiry_days", Integer, nullable=True),
    Column("demurrage_percent_per_month", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("expiry_days IS NULL OR expiry_days > 0", name="expiry_positive"),
    CheckConstraint("demurrage_percent_per_month IS NULL OR demurrage_percent_per_month BETWEEN 1 AND 50",
                    name="demurrage_range"),
)

# One journal entry per business action, keyed by the idempotency key made where the action happened.
journal = Table(
    "journal",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("payload_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The entry this one undoes (an entry is reversed at most once); who made it; why.
    Column("reverses", String(36), ForeignKey("journal.id"), nullable=True, unique=True),
    Column("actor", String(100), nullable=False, default="", server_default=""),
    Column("memo", String(200), nullable=False, default="", server_default=""),
)

# Immutable postings; the amounts of one journal entry sum to zero per asset.
postings = Table(
    "postings",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("journal_id", String(36), ForeignKey("journal.id"), nullable=False),
    Column("account_id", String(100), ForeignKey("accounts.id"), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Index("ix_postings_account", "account_id", "asset"),
    Index("ix_postings_journal", "journal_id"),
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
    Index("ix_taps_event", "event_code"),
    Index("ix_taps_account", "account_id"),
)

# A card bound to a person: its taps credit the person's account (its balance moved there when it was bound).
card_bindings = Table(
    "card_bindings",
    metadata,
    Column("card_account", String(100), ForeignKey("accounts.id"), primary_key=True),
    Column("person_account", String(100), ForeignKey("accounts.id"), nullable=False),
    Column("bound_at", DateTime(timezone=True), nullable=False),
    Column("method", String(16), nullable=False),  # "code": a code shown at a terminal, entered on the portal ("tap": by a tap, before that was closed)
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
