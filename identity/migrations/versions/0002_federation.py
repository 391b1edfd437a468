"""People whose home is another node (linked by issuer and subject), and federated logins under way.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("handle", type_=sa.String(64), existing_nullable=False)
        batch.alter_column("email", existing_type=sa.String(254), nullable=True)
        batch.add_column(sa.Column("home_node", sa.String(32), nullable=True))
        batch.add_column(sa.Column("home_issuer", sa.String(300), nullable=True))
        batch.add_column(sa.Column("home_sub", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_users_home_issuer", ["home_issuer", "home_sub"])
    op.create_table(
        "federated_logins",
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("entity_id", sa.String(300), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("return_to", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name="pk_federated_logins"),
    )


def downgrade() -> None:
    op.drop_table("federated_logins")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_home_issuer", type_="unique")
        batch.drop_column("home_sub")
        batch.drop_column("home_issuer")
        batch.drop_column("home_node")
        batch.alter_column("email", existing_type=sa.String(254), nullable=False)
        batch.alter_column("handle", type_=sa.String(30), existing_nullable=False)
