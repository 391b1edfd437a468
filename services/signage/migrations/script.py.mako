"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None
# Expand only (docs/operating.md, "Rolling upgrade"): the previous release runs on this schema until every instance
# is new. A contract step (drop, rename, type change, NOT NULL without a server default) ships a release later,
# with `contract = True` here; `make lint` refuses it unmarked.


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
