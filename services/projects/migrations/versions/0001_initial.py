"""Organisations, memberships, hearings, themes, requirements, criteria, the audit log, inquiries; outbox, inbox and
mail outbox of the projects service.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import create_bus_tables, create_mail_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_bus_tables()
    create_mail_table()
    op.create_table(
        "organisations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("size", sa.String(16), nullable=False),
        sa.Column("industry", sa.String(200), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("expertise", sa.Text(), nullable=False),
        sa.Column("website", sa.String(300), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organisations"),
        sa.UniqueConstraint("origin_node", "kind", "name", name="uq_organisations_origin_node_kind_name"),
        sa.CheckConstraint("kind IN ('department', 'company')", name="ck_organisations_kind"),
    )
    op.create_table(
        "memberships",
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "global_handle", name="pk_memberships"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name="fk_memberships_org_id_organisations"),
        sa.CheckConstraint("role IN ('admin', 'member')", name="ck_memberships_role"),
    )
    op.create_index("ix_memberships_global_handle", "memberships", ["global_handle"])
    op.create_table(
        "hearings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("department_id", sa.String(36), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("current_state", sa.Text(), nullable=False),
        sa.Column("issues", sa.JSON(), nullable=False),
        sa.Column("attendees", sa.String(200), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hearings"),
        sa.ForeignKeyConstraint(["department_id"], ["organisations.id"],
                                name="fk_hearings_department_id_organisations"),
    )
    op.create_index("ix_hearings_department_id", "hearings", ["department_id"])
    op.create_table(
        "themes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("owner_department_id", sa.String(36), nullable=False),
        sa.Column("hearing_id", sa.String(36), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("background", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("desired_outcome", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("company_points", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_themes"),
        sa.ForeignKeyConstraint(["owner_department_id"], ["organisations.id"],
                                name="fk_themes_owner_department_id_organisations"),
        sa.ForeignKeyConstraint(["hearing_id"], ["hearings.id"], name="fk_themes_hearing_id_hearings"),
        sa.CheckConstraint("phase BETWEEN 1 AND 4", name="ck_themes_phase"),
        sa.CheckConstraint("status IN ('draft', 'published')", name="ck_themes_status"),
    )
    op.create_index("ix_themes_status", "themes", ["status", "published_at"])
    op.create_index("ix_themes_owner_department_id", "themes", ["owner_department_id"])
    op.create_table(
        "requirements",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("call_opened_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("theme_id", name="pk_requirements"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_requirements_theme_id_themes"),
    )
    op.create_table(
        "criteria",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_criteria"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_criteria_theme_id_themes"),
        sa.UniqueConstraint("theme_id", "position", name="uq_criteria_theme_id_position"),
        sa.CheckConstraint("weight BETWEEN 1 AND 100", name="ck_criteria_weight"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_name", sa.String(100), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("note", sa.String(1000), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject_kind", "subject_id", "seq"])
    # Append-only, enforced by the database itself: an UPDATE or DELETE of a history row fails, whoever tries.
    # (A later SQLite migration that rebuilds this table in batch mode must create these triggers again.)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    op.create_table(
        "inquiries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("phone", sa.String(30), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("answered_by", sa.String(64), nullable=True),
        sa.Column("mail_key", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inquiries"),
        sa.UniqueConstraint("reference", name="uq_inquiries_reference"),
        sa.CheckConstraint("kind IN ('municipality', 'company')", name="ck_inquiries_kind"),
        sa.CheckConstraint("status IN ('open', 'answered')", name="ck_inquiries_status"),
    )
    op.create_index("ix_inquiries_status", "inquiries", ["status", "received_at"])
    op.create_index("ix_inquiries_email", "inquiries", ["email", "received_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in ("inquiries", "audit_log", "criteria", "requirements", "themes", "hearings", "memberships",
                  "organisations", "mail_outbox", "inbox", "outbox"):
        op.drop_table(table)
