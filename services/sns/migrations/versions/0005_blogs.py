"""Blogs: a person's entries outside communities (public, friends or one community), their pictures (prepared,
without metadata) and comments; 共感 takes the kinds blog and bcomment.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS, Seq

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _like_kinds(kinds: str) -> None:
    with op.batch_alter_table("likes") as batch:
        batch.drop_constraint(op.f("ck_likes_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_likes_kind"), f"kind IN {kinds}")


def upgrade() -> None:
    op.create_table(
        "blog_entries",
        sa.Column("id", Seq, autoincrement=True, nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("audience", sa.String(length=9), nullable=False),
        sa.Column("community_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("hidden_at", TS, nullable=True),
        sa.Column("hidden_reason", sa.String(length=300), nullable=True),
        sa.Column("hidden_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("audience IN ('public', 'friends', 'community')", name=op.f("ck_blog_entries_audience")),
        sa.CheckConstraint("(audience = 'community') = (community_id IS NOT NULL)",
                           name=op.f("ck_blog_entries_community")),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"],
                                name=op.f("fk_blog_entries_community_id_communities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blog_entries")),
    )
    op.create_index("ix_blog_entries_author_id", "blog_entries", ["author", "id"], unique=False)
    op.create_index("ix_blog_entries_audience_id", "blog_entries", ["audience", "id"], unique=False)
    op.create_index("ix_blog_entries_community_id", "blog_entries", ["community_id"], unique=False)
    op.create_table(
        "blog_pictures",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("entry_id", Seq, nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("alt", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("thumb", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["blog_entries.id"],
                                name=op.f("fk_blog_pictures_entry_id_blog_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blog_pictures")),
    )
    op.create_index("ix_blog_pictures_entry_id_position", "blog_pictures", ["entry_id", "position"], unique=True)
    op.create_table(
        "blog_comments",
        sa.Column("id", Seq, autoincrement=True, nullable=False),
        sa.Column("entry_id", Seq, nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("hidden_at", TS, nullable=True),
        sa.Column("hidden_reason", sa.String(length=300), nullable=True),
        sa.Column("hidden_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["blog_entries.id"],
                                name=op.f("fk_blog_comments_entry_id_blog_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blog_comments")),
    )
    op.create_index("ix_blog_comments_entry_id_id", "blog_comments", ["entry_id", "id"], unique=False)
    op.create_index("ix_blog_comments_author_created_at", "blog_comments", ["author", "created_at"], unique=False)
    _like_kinds("('post', 'comment', 'blog', 'bcomment')")


def downgrade() -> None:
    op.execute("DELETE FROM likes WHERE kind IN ('blog', 'bcomment')")
    _like_kinds("('post', 'comment')")
    op.drop_index("ix_blog_comments_author_created_at", table_name="blog_comments")
    op.drop_index("ix_blog_comments_entry_id_id", table_name="blog_comments")
    op.drop_table("blog_comments")
    op.drop_index("ix_blog_pictures_entry_id_position", table_name="blog_pictures")
    op.drop_table("blog_pictures")
    op.drop_index("ix_blog_entries_community_id", table_name="blog_entries")
    op.drop_index("ix_blog_entries_audience_id", table_name="blog_entries")
    op.drop_index("ix_blog_entries_author_id", table_name="blog_entries")
    op.drop_table("blog_entries")
