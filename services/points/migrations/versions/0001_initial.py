"""Points ledger, events, taps, and the service's outbox and inbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import create_bus_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_bus_tables()
    op.create_table(
        "events",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("participant_points", sa.Integer(), nullable=False),
        sa.Column("volunteer_points", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_events"),
        sa.CheckConstraint(
            "participant_points >= 0 AND volunteer_points >= 0", name="ck_events_rule_not_negative"
        ),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("may_go_negative", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
    )
    op.create_table(
        "balances",
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("may_go_negative", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "asset", name="pk_balances"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_balances_account_id_accounts"),
        sa.CheckConstraint("may_go_negative OR balance >= 0", name="ck_balances_not_negative"),
    )
    op.create_table(
        "journal",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journal"),
        sa.UniqueConstraint("idempotency_key", name="uq_journal_idempotency_key"),
    )
    op.create_table(
        "postings",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("journal_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_postings"),
        sa.ForeignKeyConstraint(["journal_id"], ["journal.id"], name="fk_postings_journal_id_journal"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_postings_account_id_accounts"),
    )
    op.create_index("ix_postings_account", "postings", ["account_id", "asset"])
    op.create_table(
        "taps",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("terminal_id", sa.String(32), nullable=False),
        sa.Column("tap_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("event_code", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("tapped_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("journal_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_taps"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_taps_account_id_accounts"),
        sa.ForeignKeyConstraint(["event_code"], ["events.code"], name="fk_taps_event_code_events"),
        sa.ForeignKeyConstraint(["journal_id"], ["journal.id"], name="fk_taps_journal_id_journal"),
    )
    op.create_index("ix_taps_event", "taps", ["event_code"])
    op.create_index("ix_taps_account", "taps", ["account_id"])


def downgrade() -> None:
    for table in ("taps", "postings", "journal", "balances", "accounts", "events", "inbox", "outbox"):
        op.drop_table(table)
