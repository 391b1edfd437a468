"""Activity notifications, their settings, push subscriptions, bookings to remind of, the navi's counts.

Revision ID: 0002_activity
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS, create_mail_table

revision = "0002_activity"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_mail_table()  # the daily digest's mail (the notices service had no mail before)
    op.create_table(
        "activity_notes",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("who", sa.String(120), nullable=False),
        sa.Column("link", sa.String(300), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.Column("source_key", sa.String(200), nullable=False),
        sa.Column("push_due", sa.Boolean(), nullable=False),
        sa.Column("digested", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_notes")),
        sa.UniqueConstraint("person", "source_key", name=op.f("uq_activity_notes_person")),
    )
    op.create_index("ix_activity_notes_person_at", "activity_notes", ["person", "at"])
    op.create_index("ix_activity_notes_push_due", "activity_notes", ["push_due"])
    op.create_table(
        "activity_prefs",
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("off_kinds", sa.JSON(), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("digest_to", sa.String(254), nullable=True),
        sa.Column("digest_sent_on", sa.String(10), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("person", name=op.f("pk_activity_prefs")),
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("endpoint_hash", sa.String(64), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("p256dh", sa.String(200), nullable=False),
        sa.Column("auth", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_hash", name=op.f("pk_push_subscriptions")),
    )
    op.create_index("ix_push_subscriptions_person", "push_subscriptions", ["person"])
    op.create_table(
        "activity_bookings",
        sa.Column("booking_id", sa.String(40), nullable=False),
        sa.Column("booker", sa.String(64), nullable=False),
        sa.Column("facility_id", sa.String(64), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_activity_bookings")),
    )
    op.create_index("ix_activity_bookings_starts_at", "activity_bookings", ["starts_at"])
    op.create_table(
        "navi_counts",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "reason", name=op.f("pk_navi_counts")),
    )


def downgrade() -> None:
    for table in ("navi_counts", "activity_bookings", "push_subscriptions", "activity_prefs", "activity_notes"):
        op.drop_table(table)
    op.drop_table("mail_outbox")
