"""A deleted person in the audit log (issue 20 point 7): the log stays append-only but for the one change erasure
makes: who did it replaced by a pseudonym (`anon-...`, 退会したユーザー), and where the recorded before/after name
the person, the pseudonym in their place. What was done, to what and when never changes, and no entry is ever
deleted.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APPEND_ONLY = "audit_log is append-only"


def redact(text: str) -> str:
    """The one update allowed: what was done, to what and when unchanged; either who did it becomes the pseudonym
    (and its name 退会したユーザー), or who did it stays and what it recorded (before, after) now holds a pseudonym
    where the person was (services/projects/privacy.py). `text` casts a JSON value for LIKE. Nothing here may be
    NULL: SQLite skips a trigger whose WHEN is NULL."""
    after, before = text.format('NEW."after"'), text.format('NEW."before"')
    return ("NEW.seq = OLD.seq AND NEW.subject_kind = OLD.subject_kind AND NEW.subject_id = OLD.subject_id "
            "AND NEW.action = OLD.action AND NEW.at = OLD.at AND NEW.note = OLD.note "
            "AND ((NEW.actor LIKE 'anon-%' AND NEW.actor_name = '退会したユーザー') "
            "OR (NEW.actor = OLD.actor AND NEW.actor_name = OLD.actor_name "
            f"AND (COALESCE({after}, '') LIKE '%anon-%' OR COALESCE({before}, '') LIKE '%anon-%')))")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE' AND {redact("CAST({} AS text)")} THEN RETURN NEW; END IF;
              RAISE EXCEPTION '{APPEND_ONLY}';
            END $$""")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute(f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log WHEN NOT ({redact('{}')}) "
                   f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$""")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute(f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                   f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")
