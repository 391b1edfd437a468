"""The ledger in full: assets (まちづくりポイント, 単位, 地域通貨) with the node's rules, reversals, and postings that
can never be changed or deleted (triggers on both databases).

Revision ID: 0005
Revises: 0004
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ASSETS = [
    # code, kind, Japanese name, English name, unit
    ("machi-point", "points", "まちづくりポイント", "Town points", "PT"),
    ("credit", "credits", "単位", "Course credits", "単位"),
    ("local-currency", "currency", "地域通貨", "Local currency", "円"),
]
IMMUTABLE = "postings are immutable: correct an entry by reversing it"


def upgrade() -> None:
    assets = op.create_table(
        "assets",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name_ja", sa.String(100), nullable=False),
        sa.Column("name_en", sa.String(100), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("expiry_days", sa.Integer(), nullable=True),
        sa.Column("demurrage_percent_per_month", sa.Integer(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_assets"),
        sa.CheckConstraint("expiry_days IS NULL OR expiry_days > 0", name="ck_assets_expiry_positive"),
        sa.CheckConstraint("demurrage_percent_per_month IS NULL OR demurrage_percent_per_month BETWEEN 1 AND 50",
                           name="ck_assets_demurrage_range"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(assets, [{"code": c, "kind": k, "name_ja": ja, "name_en": en, "unit": u, "updated_at": now}
                            for c, k, ja, en, u in ASSETS])
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("reverses", sa.String(36), nullable=True))
        batch.add_column(sa.Column("actor", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("memo", sa.String(200), nullable=False, server_default=""))
        batch.create_unique_constraint("uq_journal_reverses", ["reverses"])
        batch.create_foreign_key("fk_journal_reverses_journal", "journal", ["reverses"], ["id"])
    op.create_index("ix_postings_journal", "postings", ["journal_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION postings_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{IMMUTABLE}' USING ERRCODE = 'restrict_violation'; END $$""")
        op.execute("CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings "
                   "FOR EACH ROW EXECUTE FUNCTION postings_immutable()")
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER postings_no_{what.lower()} BEFORE {what} ON postings "
                       f"BEGIN SELECT RAISE(ABORT, '{IMMUTABLE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER postings_immutable ON postings")
        op.execute("DROP FUNCTION postings_immutable()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER postings_no_{what}")
    op.drop_index("ix_postings_journal", "postings")
    with op.batch_alter_table("journal") as batch:
        batch.drop_constraint("fk_journal_reverses_journal", type_="foreignkey")
        batch.drop_constraint("uq_journal_reverses", type_="unique")
        batch.drop_column("memo")
        batch.drop_column("actor")
        batch.drop_column("reverses")
    op.drop_table("assets")
