"""One directory of people for the whole points service: the courses' own `course_people` (the gateway-vouched links
from user id to global handle) folds into `people` (migration 0008) and goes.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Links made after 0008 copied the table: a handle not in `people` yet comes with its link; a handle there
    # without a user id takes it (unless another row holds that id).
    op.execute(
        "INSERT INTO people (global_handle, user_id, display_name, district, seen_at) "
        "SELECT c.global_handle, c.user_id, c.display_name, '', c.seen_at FROM course_people c "
        "WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.global_handle = c.global_handle) "
        "AND NOT EXISTS (SELECT 1 FROM people p WHERE p.user_id = c.user_id)")
    op.execute(
        "UPDATE people SET user_id = (SELECT c.user_id FROM course_people c "
        "WHERE c.global_handle = people.global_handle) "
        "WHERE user_id IS NULL AND EXISTS (SELECT 1 FROM course_people c WHERE c.global_handle = people.global_handle "
        "AND NOT EXISTS (SELECT 1 FROM people p2 WHERE p2.user_id = c.user_id))")
    op.drop_table("course_people")


def downgrade() -> None:
    op.create_table(
        "course_people",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_course_people"),
        sa.UniqueConstraint("global_handle", name="uq_course_people_global_handle"),
    )
    op.execute("INSERT INTO course_people (user_id, global_handle, display_name, seen_at) "
               "SELECT user_id, global_handle, display_name, COALESCE(seen_at, CURRENT_TIMESTAMP) FROM people "
               "WHERE user_id IS NOT NULL")
