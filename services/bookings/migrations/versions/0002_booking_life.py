"""A booking's life past confirmation: approval, fees due and paid, cancellation reasons and fees, check-in,
no-shows, waitlist offers, groups and recurring series; the states that hold a slot are now requested, offered,
confirmed and checked_in, and the PostgreSQL exclusion constraint is redefined over them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# contracts.bookings.STATES and HOLDING_STATES at this revision.
STATES = "('requested', 'offered', 'confirmed', 'checked_in', 'cancelled', 'rejected', 'no_show')"
HOLDING = "('requested', 'offered', 'confirmed', 'checked_in')"
OLD_STATES = "('requested', 'confirmed', 'cancelled')"
OLD_HOLDING = "('requested', 'confirmed')"
COLUMNS = (
    sa.Column("origin", sa.String(16), nullable=False, server_default="direct"),
    sa.Column("group_id", sa.String(36), nullable=True),
    sa.Column("series_id", sa.String(36), nullable=True),
    sa.Column("fee_due_at", TS, nullable=True),
    sa.Column("paid_at", TS, nullable=True),
    sa.Column("paid_with", sa.String(16), nullable=True),
    sa.Column("payment_ref", sa.String(64), nullable=True),
    sa.Column("cancel_reason", sa.String(16), nullable=True),
    sa.Column("cancellation_fee", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("checked_in_at", TS, nullable=True),
    sa.Column("offer_expires_at", TS, nullable=True),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("decision_note", sa.String(200), nullable=True),
)
INDEXES = (("ix_bookings_state_fee_due_at", ["state", "fee_due_at"]), ("ix_bookings_group_id", ["group_id"]),
           ("ix_bookings_series_id", ["series_id"]))


def _states(states: str, holding: str) -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.drop_constraint(op.f("ck_bookings_state"), type_="check")
        batch.create_check_constraint(op.f("ck_bookings_state"), f"state IN {states}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
        op.execute(f"""
            ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap
            EXCLUDE USING gist (facility_id WITH =, tstzrange(starts_at, held_until, '[)') WITH &&)
            WHERE (state IN {holding})""")


def upgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        for column in COLUMNS:
            batch.add_column(column.copy())
    for name, columns in INDEXES:
        op.create_index(name, "bookings", columns, unique=False)
    _states(STATES, HOLDING)


def downgrade() -> None:
    op.execute(f"DELETE FROM bookings WHERE state NOT IN {OLD_STATES}")
    _states(OLD_STATES, OLD_HOLDING)
    for name, _ in INDEXES:
        op.drop_index(name, table_name="bookings")
    with op.batch_alter_table("bookings") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column.name)
