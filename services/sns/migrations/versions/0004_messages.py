"""Direct messages: conversations between two people, each side's read mark, messages, blocks and mutes.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS, Seq

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pair", sa.String(length=130), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_message_id", Seq, nullable=True),
        sa.Column("last_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("pair", name=op.f("uq_conversations_pair")),
    )
    op.create_table(
        "conversation_members",
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("global_handle", sa.String(length=64), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("read_upto", Seq, nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_conversation_members_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("conversation_id", "global_handle", name="pk_conversation_members"),
    )
    op.create_index("ix_conversation_members_global_handle_peer", "conversation_members",
                    ["global_handle", "peer"], unique=True)
    op.create_table(
        "messages",
        sa.Column("id", Seq, autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_messages_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index("ix_messages_conversation_id_id", "messages", ["conversation_id", "id"], unique=False)
    op.create_index("ix_messages_sender_sent_at", "messages", ["sender", "sent_at"], unique=False)
    op.create_table(
        "message_peers",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.CheckConstraint("owner <> peer", name=op.f("ck_message_peers_not_self")),
        sa.PrimaryKeyConstraint("owner", "peer", name="pk_message_peers"),
    )
    op.create_index("ix_message_peers_peer", "message_peers", ["peer"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_message_peers_peer", table_name="message_peers")
    op.drop_table("message_peers")
    op.drop_index("ix_messages_sender_sent_at", table_name="messages")
    op.drop_index("ix_messages_conversation_id_id", table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_conversation_members_global_handle_peer", table_name="conversation_members")
    op.drop_table("conversation_members")
    op.drop_table("conversations")
