"""Cards bound to people, and binding requests waiting for their confirming tap.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "card_bindings",
        sa.Column("card_account", sa.String(100), nullable=False),
        sa.Column("person_account", sa.String(100), nullable=False),
        sa.Column("bound_at", TS, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("card_account", name="pk_card_bindings"),
        sa.ForeignKeyConstraint(["card_account"], ["accounts.id"], name="fk_card_bindings_card_account_accounts"),
        sa.ForeignKeyConstraint(["person_account"], ["accounts.id"],
                                name="fk_card_bindings_person_account_accounts"),
    )
    op.create_index("ix_card_bindings_person", "card_bindings", ["person_account"])
    op.create_table(
        "card_binding_requests",
        sa.Column("card_account", sa.String(100), nullable=False),
        sa.Column("person_account", sa.String(100), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("card_account", name="pk_card_binding_requests"),
    )


def downgrade() -> None:
    op.drop_table("card_binding_requests")
    op.drop_table("card_bindings")
