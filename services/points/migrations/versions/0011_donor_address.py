"""The donor's address on the donation receipt (寄附金受領証明書: 寄附者の住所・氏名), kept with the pledge.

Revision ID: 0011_donor_address
Revises: 0010_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_donor_address"
down_revision = "0010_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("donations") as batch:
        batch.add_column(sa.Column("donor_address", sa.String(300), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("donations") as batch:
        batch.drop_column("donor_address")
