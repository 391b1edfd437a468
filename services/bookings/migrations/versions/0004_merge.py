"""Joins the four branches built side by side on 0002: a booking's life (0003_life), the portal's feed tokens
(0003_portal), the waitlist and recurring series (0003_waitlist_series), registered groups and lotteries
(0003_lottery_groups). Nothing to change: each branch touched tables of its own.

Revision ID: 0004
Revises: 0003_life, 0003_portal, 0003_waitlist_series, 0003_lottery_groups
"""

revision = "0004"
down_revision = ("0003_life", "0003_portal", "0003_waitlist_series", "0003_lottery_groups")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
