"""The waitlist (キャンセル待ち: people waiting for a taken slot, in order) and recurring series (定期予約) of
bookings.

Revision ID: 0003_waitlist_series
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0003_waitlist_series"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('booking_waitlist',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('facility_id', sa.String(length=48), nullable=False),
    sa.Column('starts_at', TS, nullable=False),
    sa.Column('ends_at', TS, nullable=False),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('user_class', sa.String(length=16), nullable=False),
    sa.Column('person', sa.String(length=64), nullable=False),
    sa.Column('person_user_id', sa.String(length=64), nullable=True),
    sa.Column('person_name', sa.String(length=100), nullable=False),
    sa.Column('booked_by', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('booking_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'],
                            name=op.f('fk_booking_waitlist_facility_id_facilities')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_booking_waitlist')),
    sa.UniqueConstraint('id', name=op.f('uq_booking_waitlist_id'))
    )
    op.create_index('ix_booking_waitlist_facility_id_state_starts_at', 'booking_waitlist',
                    ['facility_id', 'state', 'starts_at'], unique=False)
    op.create_index('ix_booking_waitlist_person_state', 'booking_waitlist', ['person', 'state'], unique=False)
    op.create_index('ix_booking_waitlist_booking_id', 'booking_waitlist', ['booking_id'], unique=False)
    op.create_table('booking_series',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('facility_id', sa.String(length=48), nullable=False),
    sa.Column('start_time', sa.String(length=5), nullable=False),
    sa.Column('end_time', sa.String(length=5), nullable=False),
    sa.Column('pattern', sa.JSON(), nullable=False),
    sa.Column('first_day', sa.String(length=10), nullable=False),
    sa.Column('last_day', sa.String(length=10), nullable=True),
    sa.Column('count', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('user_class', sa.String(length=16), nullable=False),
    sa.Column('booker', sa.String(length=64), nullable=True),
    sa.Column('booker_user_id', sa.String(length=64), nullable=True),
    sa.Column('booker_name', sa.String(length=100), nullable=False),
    sa.Column('booked_by', sa.String(length=64), nullable=True),
    sa.Column('missed', sa.JSON(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'],
                            name=op.f('fk_booking_series_facility_id_facilities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_series'))
    )
    op.create_index('ix_booking_series_booker', 'booking_series', ['booker'], unique=False)


def downgrade() -> None:
    op.drop_table('booking_series')
    op.drop_table('booking_waitlist')
