"""Facilities and bookings (with the PostgreSQL exclusion constraint against double bookings); outbox and inbox of
the bookings service.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS, create_bus_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The states that hold a slot (contracts.bookings.HOLDING_STATES at this revision): a later state that holds one
# redefines the constraint in its own migration.
HOLDING = "('requested', 'confirmed')"


def upgrade() -> None:
    create_bus_tables()
    op.create_table('facilities',
    sa.Column('id', sa.String(length=48), nullable=False),
    sa.Column('name_ja', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('accessibility', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facilities'))
    )
    op.create_index('ix_facilities_kind', 'facilities', ['kind'], unique=False)
    op.create_table('bookings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('facility_id', sa.String(length=48), nullable=False),
    sa.Column('starts_at', TS, nullable=False),
    sa.Column('ends_at', TS, nullable=False),
    sa.Column('held_until', TS, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('user_class', sa.String(length=16), nullable=False),
    sa.Column('fee', sa.Integer(), nullable=False),
    sa.Column('booker', sa.String(length=64), nullable=True),
    sa.Column('booker_user_id', sa.String(length=64), nullable=True),
    sa.Column('booker_name', sa.String(length=100), nullable=False),
    sa.Column('contact_phone', sa.String(length=24), nullable=True),
    sa.Column('booked_by', sa.String(length=64), nullable=True),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('confirmed_at', TS, nullable=True),
    sa.Column('cancelled_at', TS, nullable=True),
    sa.Column('cancelled_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint("state IN ('requested', 'confirmed', 'cancelled')", name=op.f('ck_bookings_state')),
    sa.CheckConstraint('starts_at < ends_at AND ends_at <= held_until', name=op.f('ck_bookings_times')),
    sa.CheckConstraint('fee >= 0', name=op.f('ck_bookings_fee')),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], name=op.f('fk_bookings_facility_id_facilities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bookings'))
    )
    op.create_index('ix_bookings_facility_id_starts_at', 'bookings', ['facility_id', 'starts_at'], unique=False)
    op.create_index('ix_bookings_booker_month', 'bookings', ['booker', 'month'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # btree_gist gives `=` on text a GiST operator class, so that one constraint covers the facility and the
        # time range. Installed in `public` (an extension is per database; the service's own schema may be dropped
        # with its data), and quietly when a concurrent migration of another schema installs it first.
        op.execute("""
            DO $$ BEGIN
                CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;
            EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL;
            END $$""")
        op.execute(f"""
            ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap
            EXCLUDE USING gist (facility_id WITH =, tstzrange(starts_at, held_until, '[)') WITH &&)
            WHERE (state IN {HOLDING})""")


def downgrade() -> None:
    op.drop_table('bookings')
    op.drop_table('facilities')
    op.drop_table('inbox')
    op.drop_table('outbox')
