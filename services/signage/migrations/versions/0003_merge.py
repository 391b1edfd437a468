"""Joins the two branches built side by side on 0001: content shared between towns (0002_sigfed) and slides made
from the node's own data (0002_slides). Nothing to change: each branch made tables of its own.

Revision ID: 0003
Revises: 0002_sigfed, 0002_slides
"""

revision = "0003"
down_revision = ("0002_sigfed", "0002_slides")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
