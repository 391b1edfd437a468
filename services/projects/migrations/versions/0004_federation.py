"""Federation: the member municipalities, read-only copies of other nodes' published themes and cases, follows,
wide-area themes (invitations, participants, this node's own participations) and the case a theme was started
from (横展開).

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite takes it with a constant default; a batch copy of `themes` would fight its foreign
    # keys).
    op.add_column("themes", sa.Column("wide_area", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("themes", sa.Column("origin_case", sa.JSON(), nullable=True))
    op.create_table(
        "federation_members",
        sa.Column("node", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(300), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("node", name="pk_federation_members"),
    )
    op.create_table(
        "remote_themes",
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("owner_department_name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("background", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("desired_outcome", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("company_points", sa.Text(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("wide_area", sa.Boolean(), nullable=False),
        sa.Column("invited_nodes", sa.JSON(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("origin_case", sa.JSON(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("origin_node", "id", name="pk_remote_themes"),
    )
    op.create_table(
        "remote_cases",
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("owner_department_name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("approach", sa.Text(), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.Column("lessons", sa.Text(), nullable=False),
        sa.Column("transferability", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("kpis", sa.JSON(), nullable=False),
        sa.Column("partners", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("origin_node", "id", name="pk_remote_cases"),
    )
    op.create_table(
        "follows",
        sa.Column("global_handle", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("followed_at", TS, nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.Column("seen_version", sa.Integer(), nullable=False),
        sa.Column("seen_phase", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("global_handle", "kind", "origin_node", "item_id", name="pk_follows"),
        sa.CheckConstraint("kind IN ('theme', 'case')", name="ck_follows_kind"),
    )
    op.create_table(
        "theme_invitations",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("node", sa.String(32), nullable=False),
        sa.Column("invited_at", TS, nullable=False),
        sa.Column("invited_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("theme_id", "node", name="pk_theme_invitations"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_theme_invitations_theme_id_themes"),
    )
    op.create_table(
        "theme_participants",
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("node", sa.String(32), nullable=False),
        sa.Column("declared_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("theme_id", "node", name="pk_theme_participants"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], name="fk_theme_participants_theme_id_themes"),
    )
    op.create_table(
        "participations",
        sa.Column("origin_node", sa.String(32), nullable=False),
        sa.Column("theme_id", sa.String(36), nullable=False),
        sa.Column("declared_at", TS, nullable=False),
        sa.Column("declared_by", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("origin_node", "theme_id", name="pk_participations"),
    )


def downgrade() -> None:
    for name in ("participations", "theme_participants", "theme_invitations", "follows", "remote_cases",
                 "remote_themes", "federation_members"):
        op.drop_table(name)
    with op.batch_alter_table("themes") as batch:
        batch.drop_column("origin_case")
        batch.drop_column("wide_area")
