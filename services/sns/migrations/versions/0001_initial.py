"""Communities, their categories and members, posts and comments, people, friend requests and friendships; outbox and
inbox of the sns service.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from towntip.kernel.migration_ops import TS, Seq, create_bus_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables()
    op.create_table('communities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('name_key', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('leader', sa.String(length=64), nullable=True),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.Column('opened_at', TS, nullable=False),
    sa.Column('closed_at', TS, nullable=True),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_communities_status')),
    sa.CheckConstraint('members >= 0', name=op.f('ck_communities_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communities')),
    sa.UniqueConstraint('name_key', name=op.f('uq_communities_name_key'))
    )
    op.create_table('friend_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('pair', sa.String(length=130), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('addressee', sa.String(length=64), nullable=False),
    sa.Column('sent_at', TS, nullable=False),
    sa.CheckConstraint('sender <> addressee', name=op.f('ck_friend_requests_not_self')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_friend_requests')),
    sa.UniqueConstraint('pair', name=op.f('uq_friend_requests_pair'))
    )
    op.create_index('ix_friend_requests_addressee', 'friend_requests', ['addressee'], unique=False)
    op.create_index('ix_friend_requests_sender', 'friend_requests', ['sender'], unique=False)
    op.create_table('friendships',
    sa.Column('a', sa.String(length=64), nullable=False),
    sa.Column('b', sa.String(length=64), nullable=False),
    sa.Column('since', TS, nullable=False),
    sa.CheckConstraint('a < b', name=op.f('ck_friendships_ordered')),
    sa.PrimaryKeyConstraint('a', 'b', name='pk_friendships')
    )
    op.create_index('ix_friendships_b', 'friendships', ['b'], unique=False)
    op.create_table('people',
    sa.Column('global_handle', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('seen_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('global_handle', name=op.f('pk_people')),
    sa.UniqueConstraint('user_id', name=op.f('uq_people_user_id'))
    )
    op.create_table('request_log',
    sa.Column('seq', Seq, autoincrement=True, nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('sent_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_request_log'))
    )
    op.create_index('ix_request_log_sender_sent_at', 'request_log', ['sender', 'sent_at'], unique=False)
    op.create_table('community_categories',
    sa.Column('community_id', sa.String(length=36), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'],
                            name=op.f('fk_community_categories_community_id_communities')),
    sa.PrimaryKeyConstraint('community_id', 'category', name='pk_community_categories')
    )
    op.create_index('ix_community_categories_category', 'community_categories', ['category'], unique=False)
    op.create_table('memberships',
    sa.Column('community_id', sa.String(length=36), nullable=False),
    sa.Column('global_handle', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('joined_at', TS, nullable=False),
    sa.CheckConstraint("role IN ('leader', 'member')", name=op.f('ck_memberships_role')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_memberships_community_id_communities')),
    sa.PrimaryKeyConstraint('community_id', 'global_handle', name='pk_memberships')
    )
    op.create_index('ix_memberships_global_handle', 'memberships', ['global_handle'], unique=False)
    op.create_table('posts',
    sa.Column('id', Seq, autoincrement=True, nullable=False),
    sa.Column('community_id', sa.String(length=36), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('edited_at', TS, nullable=True),
    sa.Column('hidden_at', TS, nullable=True),
    sa.Column('hidden_reason', sa.String(length=300), nullable=True),
    sa.Column('hidden_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_posts_community_id_communities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts'))
    )
    op.create_index('ix_posts_author_created_at', 'posts', ['author', 'created_at'], unique=False)
    op.create_index('ix_posts_community_id_id', 'posts', ['community_id', 'id'], unique=False)
    op.create_table('comments',
    sa.Column('id', Seq, autoincrement=True, nullable=False),
    sa.Column('post_id', Seq, nullable=False),
    sa.Column('author', sa.String(length=64), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('edited_at', TS, nullable=True),
    sa.Column('hidden_at', TS, nullable=True),
    sa.Column('hidden_reason', sa.String(length=300), nullable=True),
    sa.Column('hidden_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_comments_post_id_posts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    op.create_index('ix_comments_author_created_at', 'comments', ['author', 'created_at'], unique=False)
    op.create_index('ix_comments_post_id_id', 'comments', ['post_id', 'id'], unique=False)


def downgrade() -> None:
    for table in ("comments", "posts", "memberships", "community_categories", "request_log", "people", "friendships",
                  "friend_requests", "communities", "inbox", "outbox"):
        op.drop_table(table)
