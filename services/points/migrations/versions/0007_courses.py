"""Certified courses (認定講座), completions and their credits (単位), certifications (修了資格), the certificates
issued and the Ed25519 keys that sign them (services/points/models_courses.py).

A branch from 0006 beside 0007_donations; migrate.upgrade brings the service to every head, a merge comes later.

Revision ID: 0007_courses
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_courses"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_courses"),
        sa.CheckConstraint("credits > 0", name="ck_courses_credits_positive"),
    )
    op.create_table(
        "certifications",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("credits_required", sa.Integer(), nullable=False),
        sa.Column("rule_fields", sa.JSON(), nullable=False),
        sa.Column("rule_courses", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_certifications"),
        sa.CheckConstraint("credits_required > 0", name="ck_certifications_required_positive"),
    )
    op.create_table(
        "course_people",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_course_people"),
        sa.UniqueConstraint("global_handle", name="uq_course_people_global_handle"),
    )
    op.create_table(
        "course_completions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("course_code", sa.String(64), nullable=False),
        sa.Column("person_ref", sa.String(100), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=True),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("journal_key", sa.String(200), nullable=True),
        sa.Column("credited_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_course_completions"),
        sa.ForeignKeyConstraint(["course_code"], ["courses.code"], name="fk_course_completions_course_code_courses"),
        sa.UniqueConstraint("course_code", "person_id", name="uq_course_completions_course_person"),
        sa.UniqueConstraint("course_code", "person_ref", name="uq_course_completions_course_ref"),
        sa.UniqueConstraint("journal_key", name="uq_course_completions_journal_key"),
    )
    op.create_index("ix_course_completions_person", "course_completions", ["person_id"])
    op.create_table(
        "certificate_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_x", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("retired_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_certificate_keys"),
    )
    op.create_table(
        "certificates",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("certification_code", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("revoke_reason", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_certificates"),
        sa.ForeignKeyConstraint(["certification_code"], ["certifications.code"],
                                name="fk_certificates_certification_code_certifications"),
        sa.ForeignKeyConstraint(["kid"], ["certificate_keys.kid"], name="fk_certificates_kid_certificate_keys"),
        sa.UniqueConstraint("certification_code", "person_id", name="uq_certificates_certification_person"),
    )
    op.create_index("ix_certificates_person", "certificates", ["person_id"])


def downgrade() -> None:
    op.drop_table("certificates")
    op.drop_table("certificate_keys")
    op.drop_table("course_completions")
    op.drop_table("course_people")
    op.drop_table("certifications")
    op.drop_table("courses")
