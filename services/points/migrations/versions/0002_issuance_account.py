"""The issuance account exists from the start, so crediting a tap never has to create it.

Revision ID: 0002
Revises: 0001
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ISSUANCE = "system:issuance"


def upgrade() -> None:
    op.get_bind().execute(
        sa.text(
            "INSERT INTO accounts (id, kind, may_go_negative, created_at) "
            "SELECT :id, 'system', :neg, :now WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE id = :id)"
        ).bindparams(sa.bindparam("id", type_=sa.String(100)), sa.bindparam("neg", type_=sa.Boolean()),
                     sa.bindparam("now", type_=sa.DateTime(timezone=True))),
        {"id": ISSUANCE, "neg": True, "now": datetime.now(UTC)},
    )


def downgrade() -> None:
    # Only if nothing was ever posted to it.
    op.get_bind().execute(
        sa.text(
            "DELETE FROM accounts WHERE id = :id AND NOT EXISTS (SELECT 1 FROM postings WHERE account_id = :id)"
        ).bindparams(sa.bindparam("id", type_=sa.String(100))),
        {"id": ISSUANCE},
    )
