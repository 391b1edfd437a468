"""Refunds of cancelled paid bookings: how much is due back to the booker (`refund_due`, the fee less the
cancellation fee) and when the points service refunded it (`refunded_at`); the service's sweeper refunds what is
due and not yet refunded.

Revision ID: 0003_life
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0003_life"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("refund_due", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("refunded_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("refunded_at")
        batch.drop_column("refund_due")
