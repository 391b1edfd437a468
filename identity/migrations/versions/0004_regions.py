"""My Page across regions: where each of this node's people takes part (presence), the signed queries other home
nodes sent here (their jtis, until they expire), and the home node's tokens kept for a person of another node.

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
        "presence",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("entity_id", sa.String(300), nullable=False),
        sa.Column("node", sa.String(32), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "entity_id", name="pk_presence"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE", name="fk_presence_user_id_users"),
    )
    op.create_table(
        "query_jtis",
        sa.Column("jti", sa.String(100), nullable=False),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name="pk_query_jtis"),
    )
    op.create_index("ix_query_jtis_expires_at", "query_jtis", ["expires_at"])
    op.create_table(
        "home_tokens",
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("entity_id", sa.String(300), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("access_expires_at", TS, nullable=False),
        sa.Column("refresh_token", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("session_hash", name="pk_home_tokens"),
        sa.ForeignKeyConstraint(["session_hash"], ["sessions.token_hash"], ondelete="CASCADE",
                                name="fk_home_tokens_session_hash_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE", name="fk_home_tokens_user_id_users"),
    )
    op.create_index("ix_home_tokens_user_id", "home_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("home_tokens")
    op.drop_table("query_jtis")
    op.drop_table("presence")
