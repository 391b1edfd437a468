"""Card terminals as the node last heard them (heartbeats and taps): for staff to see which are online.

last_seen_at and heartbeat_at are the node's clock (when a message arrived), last_tap_at the terminal's;
interval_s is the terminal's heartbeat interval in seconds (online = heard from within twice that).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "terminals",
        sa.Column("terminal_id", sa.String(32), nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("event", sa.String(64), nullable=True),
        sa.Column("queue", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("unsettled", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_tap_at", TS, nullable=True),
        sa.Column("version", sa.String(32), nullable=False, server_default=""),
        sa.Column("interval_s", sa.Integer(), nullable=False, server_default="30"),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("terminal_id", name="pk_terminals"),
    )


def downgrade() -> None:
    op.drop_table("terminals")
