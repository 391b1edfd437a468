"""Tables of donations (寄附) to certified projects, in the points service's database (migration 0007_donations).

They share the `metadata` of services/points/tables.py (one database, one Alembic history with branches)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from services.points.tables import metadata

TS = DateTime(timezone=True)

# A project people may donate to once staff have certified it (認定プロジェクト), and while it is open.
donation_projects = Table(
    "donation_projects",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("organisation", String(200), nullable=False),
    Column("description", String(4000), nullable=False, default=""),
    Column("field", String(16), nullable=False),  # a category code (npo-<n>, pib-<n>)
    Column("goal_yen", BigInteger, nullable=False, default=0),
    Column("open", Boolean, nullable=False, default=True),
    Column("certified_at", TS, nullable=True),
    Column("certified_by", String(64), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("goal_yen >= 0", name="goal_not_negative"),
)

# A pledge and what became of it: pledged -> confirmed (points awarded, receipt numbered) or cancelled.
donations = Table(
    "donations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(16), nullable=False, unique=True),  # D-XXXXXX
    Column("project_code", String(32), ForeignKey("donation_projects.code"), nullable=False),
    Column("person", String(64), nullable=False),  # the identity service's user id
    Column("donor_name", String(100), nullable=False),
    # 寄附者の住所 for the receipt (寄附金受領証明書), as the donor gave it when pledging: personal data, never on
    # the bus nor in lists; erased when the pledge is cancelled (no receipt will be issued) and ADDRESS_KEEP_YEARS
    # after the receipt's year (services/points/donations/service.py: forget_addresses, run by the hourly sweep).
    Column("donor_address", String(300), nullable=False, default="", server_default=""),
    Column("amount_yen", BigInteger, nullable=False),
    Column("method", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("pledged_at", TS, nullable=False),
    Column("confirmed_at", TS, nullable=True),
    Column("confirmed_by", String(100), nullable=True),  # a staff user id, or terminal:<id>
    Column("confirmed_via", String(16), nullable=True),  # staff | terminal
    Column("confirm_tap_key", String(200), nullable=True, unique=True),  # the donor's touch that confirmed it
    Column("points", Integer, nullable=False, default=0),
    Column("journal_key", String(200), nullable=True),  # the ledger entry of the points (donation:<id>)
    Column("receipt_year", Integer, nullable=True),
    Column("receipt_seq", Integer, nullable=True),
    Column("receipt_no", String(64), nullable=True, unique=True),
    Column("cancelled_at", TS, nullable=True),
    Column("cancelled_by", String(64), nullable=True),
    Column("cancel_reason", String(200), nullable=False, default=""),
    CheckConstraint("amount_yen > 0", name="amount_positive"),
    CheckConstraint("status IN ('pledged', 'confirmed', 'cancelled')", name="status_known"),
    CheckConstraint("points >= 0", name="points_not_negative"),
    UniqueConstraint("receipt_year", "receipt_seq", name="uq_donations_receipt_year_seq"),
    Index("ix_donations_project", "project_code", "status"),
    Index("ix_donations_person", "person"),
)

# The last receipt number given per year (Japan time): numbers run 1, 2, 3 ... each year, at this node.
donation_receipt_counters = Table(
    "donation_receipt_counters",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("last_seq", Integer, nullable=False),
)

# What a project's money was used for (staff record it; the transparency page shows it with the balance).
donation_fund_uses = Table(
    "donation_fund_uses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_code", String(32), ForeignKey("donation_projects.code"), nullable=False),
    Column("used_on", Date, nullable=False),
    Column("amount_yen", BigInteger, nullable=False),
    Column("description", String(500), nullable=False),
    Column("recorded_at", TS, nullable=False),
    Column("recorded_by", String(64), nullable=False),
    CheckConstraint("amount_yen > 0", name="amount_positive"),
    Index("ix_donation_fund_uses_project", "project_code"),
)

# The node's rules for donations, one row (id 1): points per 1,000 yen, the issuer on receipts, the bank account.
donation_rules = Table(
    "donation_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("points_per_1000_yen", Integer, nullable=False),
    Column("issuer_name", String(100), nullable=False, default=""),
    Column("bank_account", String(300), nullable=False, default=""),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(64), nullable=False, default=""),
    CheckConstraint("points_per_1000_yen BETWEEN 0 AND 1000", name="rate_range"),
)
