"""The contact form takes residents too (issue 16: a 「市民」 choice): inquiries.kind may be 'resident'.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _kinds(kinds: str) -> None:
    with op.batch_alter_table("inquiries") as batch:
        batch.drop_constraint("ck_inquiries_kind", type_="check")
        batch.create_check_constraint("ck_inquiries_kind", f"kind IN {kinds}")


def upgrade() -> None:
    _kinds("('municipality', 'company', 'resident')")


def downgrade() -> None:
    op.execute("UPDATE inquiries SET kind = 'company' WHERE kind = 'resident'")
    _kinds("('municipality', 'company')")
