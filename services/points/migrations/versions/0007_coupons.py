"""Coupons bought with local currency: kinds offered by the node, and each coupon (code hashed, single use).

Revision ID: 0007_coupons
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_coupons"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "coupon_types",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("title_ja", sa.String(100), nullable=False),
        sa.Column("title_en", sa.String(100), nullable=False),
        sa.Column("issuer", sa.String(100), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_coupon_types"),
        sa.CheckConstraint("price > 0 AND valid_days > 0", name="ck_coupon_types_positive"),
    )
    op.create_table(
        "coupons",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("purchase_key", sa.String(200), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("type_code", sa.String(32), nullable=False),
        sa.Column("person_account", sa.String(100), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("bought_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("redeemed_at", TS, nullable=True),
        sa.Column("redeemed_by", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_coupons"),
        sa.UniqueConstraint("purchase_key", name="uq_coupons_purchase_key"),
        sa.UniqueConstraint("code_hash", name="uq_coupons_code_hash"),
        sa.ForeignKeyConstraint(["type_code"], ["coupon_types.code"], name="fk_coupons_type_code_coupon_types"),
    )
    op.create_index("ix_coupons_person", "coupons", ["person_account"])


def downgrade() -> None:
    op.drop_index("ix_coupons_person", "coupons")
    op.drop_table("coupons")
    op.drop_table("coupon_types")
