"""Events with a date, a venue and a capacity; sign-up with a waitlist; an event's points once per person or card.

`taps.holder` is who earned the event's points by the tap (the person the card was bound to, else the card), unique
per event. Taps recorded before this revision name their card; where a card checked in to one event several times
(which credited it each time) only its first tap takes the holder, the repeats keep NULL (NULLs never clash).

Revision ID: 0010_events
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_events"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
EVENT_COLUMNS = (("starts_at", TS), ("ends_at", TS), ("venue_facility", sa.String(48)),
                 ("venue_booking", sa.String(36)), ("venue_name", sa.String(200)), ("capacity", sa.Integer()))


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for name, type_ in EVENT_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_index("ix_events_starts_at", "events", ["starts_at"])
    with op.batch_alter_table("taps") as batch:
        batch.add_column(sa.Column("holder", sa.String(100), nullable=True))
    op.execute(
        "UPDATE taps SET holder = account_id WHERE key IN "
        "(SELECT MIN(key) FROM taps GROUP BY event_code, account_id)")
    op.create_index("uq_taps_event_code_holder", "taps", ["event_code", "holder"], unique=True)
    op.create_table(
        "event_signups",
        sa.Column("event_code", sa.String(64), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.CheckConstraint("state IN ('signed_up', 'waitlisted', 'cancelled')", name="ck_event_signups_state"),
        sa.ForeignKeyConstraint(["event_code"], ["events.code"], name="fk_event_signups_event_code_events"),
        sa.PrimaryKeyConstraint("event_code", "person", name="pk_event_signups"),
    )
    op.create_index("ix_event_signups_event_code_state", "event_signups", ["event_code", "state", "queued_at"])
    op.create_index("ix_event_signups_user_id", "event_signups", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_event_signups_user_id", table_name="event_signups")
    op.drop_index("ix_event_signups_event_code_state", table_name="event_signups")
    op.drop_table("event_signups")
    op.drop_index("uq_taps_event_code_holder", table_name="taps")
    with op.batch_alter_table("taps") as batch:
        batch.drop_column("holder")
    op.drop_index("ix_events_starts_at", table_name="events")
    with op.batch_alter_table("events") as batch:
        for name, _ in reversed(EVENT_COLUMNS):
            batch.drop_column(name)
