"""Matching (マッチング): openings of communities and themes, applications, the skills people state.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "openings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("host_kind", sa.String(length=12), nullable=False),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("host_name", sa.String(length=200), nullable=False),
        sa.Column("organiser", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("skills", sa.String(length=300), nullable=False),
        sa.Column("skill_words", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("event_code", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.CheckConstraint("host_kind IN ('community', 'theme')", name=op.f("ck_openings_host_kind")),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_openings_status")),
        sa.CheckConstraint("accepted >= 0 AND accepted <= capacity", name=op.f("ck_openings_accepted")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_openings")),
    )
    op.create_index("ix_openings_status_id", "openings", ["status", "id"])
    op.create_index("ix_openings_host_id", "openings", ["host_id"])
    op.create_index("ix_openings_organiser", "openings", ["organiser"])
    op.create_table(
        "applications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("opening_id", sa.String(length=36), nullable=False),
        sa.Column("applicant", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("applied_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'declined', 'withdrawn')",
                           name=op.f("ck_applications_status")),
        sa.ForeignKeyConstraint(["opening_id"], ["openings.id"], name=op.f("fk_applications_opening_id_openings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
    )
    op.create_index("ix_applications_opening_id_applicant", "applications", ["opening_id", "applicant"],
                    unique=True)
    op.create_index("ix_applications_applicant", "applications", ["applicant"])
    op.create_table(
        "person_skills",
        sa.Column("global_handle", sa.String(length=64), nullable=False),
        sa.Column("skills", sa.String(length=300), nullable=False),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("global_handle", name=op.f("pk_person_skills")),
    )


def downgrade() -> None:
    op.drop_table("person_skills")
    op.drop_table("applications")
    op.drop_table("openings")
