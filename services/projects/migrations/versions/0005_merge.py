"""Joins the two branches made side by side: phases 3-4 (0003_pilots) and the federation of themes and cases
(0004_federation). No schema change.

Revision ID: 0005
Revises: 0003, 0004
"""

revision = "0005"
down_revision = ("0003", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
