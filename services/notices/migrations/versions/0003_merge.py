"""Joins the two branches built side by side on 0001: collected feeds and the calendar (0002_feeds), activity
notifications, Web Push and the navi (0002_activity). Nothing to change: each branch made tables of its own.

Revision ID: 0003
Revises: 0002_feeds, 0002_activity
"""

revision = "0003"
down_revision = ("0002_feeds", "0002_activity")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
