"""Tables of the ledger: assets, accounts, journal entries, their postings, running balances."""

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
    PrimaryKeyConstraint,
    String,
    Table,
)

from services.points.tables import metadata
from towntip.kernel.bus.outbox import SeqType

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

