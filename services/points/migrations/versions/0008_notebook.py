"""まちづくり手帳: the notebook's facts of each event, and the people directory fed by identity's events.

Merges the branches of coupons, courses and donations (all from 0006).

Revision ID: 0008
Revises: 0007_coupons, 0007_courses, 0007_donations
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = ("0007_coupons", "0007_courses", "0007_donations")
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
EVENT_FACTS = (("field", sa.String(16)), ("activity", sa.String(16)), ("minutes", sa.Integer()),
               ("co2_g", sa.Integer()), ("kcal", sa.Integer()))


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:  # SQLite cannot ALTER much; batch mode copies when it must
        for name, type_ in EVENT_FACTS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "people",
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("district", sa.String(100), nullable=False, server_default=""),
        sa.Column("profile_at", TS, nullable=True),
        sa.Column("seen_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("global_handle", name="pk_people"),
        sa.UniqueConstraint("user_id", name="uq_people_user_id"),
    )
    op.create_index("ix_people_district", "people", ["district"])
    # Whom the courses already know (course_people: user id and handle, vouched for by the gateway) is known here too.
    op.execute(
        "INSERT INTO people (global_handle, user_id, display_name, district, seen_at) "
        "SELECT global_handle, user_id, display_name, '', seen_at FROM course_people"
    )


def downgrade() -> None:
    op.drop_index("ix_people_district", table_name="people")
    op.drop_table("people")
    with op.batch_alter_table("events") as batch:
        for name, _ in reversed(EVENT_FACTS):
            batch.drop_column(name)
