"""Tables every service has, created the same way in each service's first migration (inside its `upgrade()`):
the outbox and inbox of the bus (towntip.kernel.bus.outbox) and the mail outbox (towntip.kernel.mail).

Their definitions at that revision are fixed here; a later change to one of them is a new migration in each service.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def create_bus_tables() -> None:
    """`outbox` (events staged with the change that made them) and `inbox` (messages a consumer applied)."""
    op.create_table(
        "outbox",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "seq"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("processed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "message_id", name="pk_inbox"),
    )


def create_mail_table() -> None:
    """`mail_outbox`: mail staged with the change that asked for it, sent and retried by the MailSender."""
    op.create_table(
        "mail_outbox",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("to_addr", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("failed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_mail_outbox"),
        sa.UniqueConstraint("key", name="uq_mail_outbox_key"),
    )
    op.create_index("ix_mail_outbox_due", "mail_outbox", ["sent_at", "failed_at", "next_attempt_at"])
