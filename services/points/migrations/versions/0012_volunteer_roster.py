"""The volunteer roster of each event, from the sns service's matching (accepted applications).

Revision ID: 0012_volunteer_roster
Revises: 0011_donor_address
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_volunteer_roster"
down_revision = "0011_donor_address"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volunteer_roster",
        sa.Column("event_code", sa.String(length=64), nullable=False),
        sa.Column("global_handle", sa.String(length=64), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("opening_id", sa.String(length=36), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_code", "global_handle", name="pk_volunteer_roster"),
    )


def downgrade() -> None:
    op.drop_table("volunteer_roster")
