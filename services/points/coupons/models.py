"""Tables of coupons bought with the node's local currency (地域通貨 → 公民館の施設使用料, 市営バス, partner shops):
the kinds of coupon the node offers, and each coupon bought (single-use code kept only as a hash)."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, String, Table

from services.points.tables import metadata

TS = DateTime(timezone=True)

coupon_types = Table(
    "coupon_types",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("title_ja", String(100), nullable=False),
    Column("title_en", String(100), nullable=False),
    Column("issuer", String(100), nullable=False),  # 公民館, 市営バス, a partner shop
    Column("price", Integer, nullable=False),  # in local currency
    Column("valid_days", Integer, nullable=False),  # a coupon expires this long after it was bought
    Column("active", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("price > 0 AND valid_days > 0", name="positive"),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("purchase_key", String(200), nullable=False, unique=True),  # the ledger entry's idempotency key
    # The code is HMAC(card key, "coupon:" + id), shown to its owner when they look; only its SHA-256 is stored, for
    # the counter's lookup. A copy of the database alone redeems nothing.
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("type_code", String(32), ForeignKey("coupon_types.code"), nullable=False),
    Column("person_account", String(100), nullable=False),
    Column("price", Integer, nullable=False),
    Column("bought_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("redeemed_at", TS, nullable=True),
    Column("redeemed_by", String(100), nullable=True),  # staff:<user id> or terminal:<id>
    Index("ix_coupons_person", "person_account"),
)
