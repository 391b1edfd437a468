"""A facility's photos (issue 17, point 1): prepared pictures at two sizes, in order.

Revision ID: 0005_photos
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0005_photos"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "facility_photos",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("facility_id", sa.String(48), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("alt_ja", sa.String(200), nullable=False),
        sa.Column("alt_en", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("thumb", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"],
                                name=op.f("fk_facility_photos_facility_id_facilities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facility_photos")),
    )
    op.create_index("ix_facility_photos_facility", "facility_photos", ["facility_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_facility_photos_facility", table_name="facility_photos")
    op.drop_table("facility_photos")
