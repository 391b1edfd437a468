"""Card registration at a terminal: a touch in registration mode shows a one-time code, the person enters it on
the portal while logged in (holding the card and the account both proven). Only the code's hash is stored.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "card_registration_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("tap_key", sa.String(200), nullable=False),
        sa.Column("card_account", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("used_by", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_card_registration_codes"),
        sa.UniqueConstraint("tap_key", name="uq_card_registration_codes_tap_key"),
    )


def downgrade() -> None:
    op.drop_table("card_registration_codes")
