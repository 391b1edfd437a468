"""A deleted person's ledger account re-keyed (issue 20 point 7): postings stay immutable in everything but the one
change erasure makes, their account moved to an anonymous one (`anon:...`). Amounts, assets and entries never change,
and no posting is ever deleted.

Revision ID: 0013_erasure
Revises: 0012_volunteer_roster
"""

from alembic import op

revision = "0013_erasure"
down_revision = "0012_volunteer_roster"
branch_labels = None
depends_on = None

IMMUTABLE = "postings are immutable: correct an entry by reversing it"
# The one update allowed: the same posting, its account moved from a person's or card's to an anonymous one.
REKEY = ("NEW.seq = OLD.seq AND NEW.journal_id = OLD.journal_id AND NEW.asset = OLD.asset "
         "AND NEW.amount = OLD.amount AND NEW.account_id LIKE 'anon:%' AND OLD.account_id NOT LIKE 'anon:%'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE OR REPLACE FUNCTION postings_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE' AND {REKEY} THEN RETURN NEW; END IF;
              RAISE EXCEPTION '{IMMUTABLE}' USING ERRCODE = 'restrict_violation';
            END $$""")
    else:
        op.execute("DROP TRIGGER postings_no_update")
        op.execute(f"CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings WHEN NOT ({REKEY}) "
                   f"BEGIN SELECT RAISE(ABORT, '{IMMUTABLE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE OR REPLACE FUNCTION postings_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{IMMUTABLE}' USING ERRCODE = 'restrict_violation'; END $$""")
    else:
        op.execute("DROP TRIGGER postings_no_update")
        op.execute(f"CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings "
                   f"BEGIN SELECT RAISE(ABORT, '{IMMUTABLE}'); END")
