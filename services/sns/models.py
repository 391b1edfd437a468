"""Tables of the sns service (its own database or schema): people as this node's SNS knows them, communities and
their members, posts and comments, friend requests and friendships, and the kernel's outbox and inbox.

People are keyed by global handle (name@home), the same on every node; `user_id` is the identity service's id of the
person at this node (what My Page's `person.summary` asks by), learnt from the Actor the gateway passes. A deleted
account's posts and comments stay, with `author` NULL (shown as 退会したユーザー / deleted user).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from towntip.kernel import db
from towntip.kernel.bus.outbox import SeqType, define_bus_tables

metadata = MetaData(naming_convention=db.NAMING_CONVENTION)
bus = define_bus_tables(metadata)
TS = DateTime(timezone=True)

people = Table(
    "people",
    metadata,
    Column("global_handle", String(64), primary_key=True),
    Column("user_id", String(64), nullable=True, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("seen_at", TS, nullable=False),
)

communities = Table(
    "communities",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("name_key", String(80), nullable=False, unique=True),  # casefolded: unique per node, whatever the case
    Column("description", Text, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("status", String(8), nullable=False),  # open | closed
    Column("leader", String(64), nullable=True),  # NULL only when closed because the last member left the node
    Column("members", Integer, nullable=False),
    Column("opened_at", TS, nullable=False),
    Column("closed_at", TS, nullable=True),
    CheckConstraint("status IN ('open', 'closed')", name="status"),
    CheckConstraint("members >= 0", name="members"),
)

# The categories of each community, one row per code: the list's filter by category is an indexed lookup.
community_categories = Table(
    "community_categories",
    metadata,
    Column("community_id", String(36), ForeignKey("communities.id"), nullable=False),
    Column("category", String(16), nullable=False),
    PrimaryKeyConstraint("community_id", "category", name="pk_community_categories"),
    Index("ix_community_categories_category", "category"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("community_id", String(36), ForeignKey("communities.id"), nullable=False),
    Column("global_handle", String(64), nullable=False),
    Column("role", String(8), nullable=False),  # leader | member
    Column("joined_at", TS, nullable=False),
    PrimaryKeyConstraint("community_id", "global_handle", name="pk_memberships"),
    Index("ix_memberships_global_handle", "global_handle"),
    CheckConstraint("role IN ('leader', 'member')", name="role"),
)

posts = Table(
    "posts",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),  # also the list's keyset cursor (newest first)
    Column("community_id", String(36), ForeignKey("communities.id"), nullable=False),
    Column("author", String(64), nullable=True),
    Column("title", String(120), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("edited_at", TS, nullable=True),
    Column("hidden_at", TS, nullable=True),
    Column("hidden_reason", String(300), nullable=True),
    Column("hidden_by", String(64), nullable=True),
    Index("ix_posts_community_id_id", "community_id", "id"),
    Index("ix_posts_author_created_at", "author", "created_at"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("post_id", SeqType, ForeignKey("posts.id"), nullable=False),
    Column("author", String(64), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("edited_at", TS, nullable=True),
    Column("hidden_at", TS, nullable=True),
    Column("hidden_reason", String(300), nullable=True),
    Column("hidden_by", String(64), nullable=True),
    Index("ix_comments_post_id_id", "post_id", "id"),
    Index("ix_comments_author_created_at", "author", "created_at"),
)

# A pending request; answered or cancelled requests are deleted. `pair` (the two handles sorted, joined by a space)
# is unique: one request per pair whichever way it goes, so two crossed requests cannot both be stored.
friend_requests = Table(
    "friend_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("pair", String(130), nullable=False, unique=True),
    Column("sender", String(64), nullable=False),
    Column("addressee", String(64), nullable=False),
    Column("sent_at", TS, nullable=False),
    Index("ix_friend_requests_addressee", "addressee"),
    Index("ix_friend_requests_sender", "sender"),
    CheckConstraint("sender <> addressee", name="not_self"),
)

# One row per friendship: `a` < `b`, so a pair is stored once.
friendships = Table(
    "friendships",
    metadata,
    Column("a", String(64), nullable=False),
    Column("b", String(64), nullable=False),
    Column("since", TS, nullable=False),
    PrimaryKeyConstraint("a", "b", name="pk_friendships"),
    Index("ix_friendships_b", "b"),
    CheckConstraint("a < b", name="ordered"),
)

# Kept for the rate limit on friend requests (a cancelled request still counts).
request_log = Table(
    "request_log",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("sender", String(64), nullable=False),
    Column("sent_at", TS, nullable=False),
    Index("ix_request_log_sender_sent_at", "sender", "sent_at"),
)

# 共感 (likes, migration 0002): one per person per post or comment (the primary key); `recipient` is the author when
# it was given (NULL once their account is deleted), so `likes.received` counts by an index.
likes = Table(
    "likes",
    metadata,
    Column("kind", String(8), nullable=False),  # post | comment | blog | bcomment
    Column("item_id", SeqType, nullable=False),
    Column("giver", String(64), nullable=False),
    Column("recipient", String(64), nullable=True),
    Column("given_at", TS, nullable=False),
    PrimaryKeyConstraint("kind", "item_id", "giver", name="pk_likes"),
    Index("ix_likes_recipient", "recipient"),
    Index("ix_likes_giver", "giver"),
    CheckConstraint("kind IN ('post', 'comment', 'blog', 'bcomment')", name="kind"),  # blogs: 0005
    CheckConstraint("giver <> recipient", name="not_own"),
)

# Moderation (migration 0003). A report of a post, comment or person; `open_key` (reporter, kind, target) is set
# while it is open and unique, so one person has at most one open report on a thing; closing sets it NULL.
reports = Table(
    "reports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(8), nullable=False),  # post | comment | person
    Column("target", String(64), nullable=False),  # the item's id, or the person's global handle
    Column("author", String(64), nullable=True),  # who wrote it (or the person), when reported
    Column("reporter", String(64), nullable=True),  # NULL once their account is deleted
    Column("reason", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("status", String(8), nullable=False),  # open | closed
    Column("open_key", String(140), nullable=True, unique=True),
    Column("decision", String(8), nullable=True),  # hide | warn | suspend | dismiss
    Column("decision_reason", String(300), nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", TS, nullable=True),
    Index("ix_reports_status_created_at", "status", "created_at"),
    CheckConstraint("status IN ('open', 'closed')", name="status"),
)

# A decision about a person (hide, warn, suspend), with its reason, who and when, and the person's one appeal.
moderation_actions = Table(
    "moderation_actions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("report_id", String(36), ForeignKey("reports.id"), nullable=False),
    Column("person", String(64), nullable=False),
    Column("action", String(8), nullable=False),  # hide | warn | suspend
    Column("reason", String(300), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("target", String(64), nullable=False),
    Column("until", TS, nullable=True),
    Column("by", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Column("appeal", Text, nullable=True),
    Column("appealed_at", TS, nullable=True),
    Column("appeal_decision", String(8), nullable=True),  # uphold | lift
    Column("appeal_reason", String(300), nullable=True),
    Column("appeal_decided_by", String(64), nullable=True),
    Column("appeal_decided_at", TS, nullable=True),
    Index("ix_moderation_actions_person", "person", "action", "until"),
    CheckConstraint("action IN ('hide', 'warn', 'suspend')", name="action"),
)

# Peer nodes whose people may not post or comment here (checked on post and comment create).
blocked_nodes = Table(
    "blocked_nodes",
    metadata,
    Column("node", String(32), primary_key=True),
    Column("reason", String(300), nullable=False),
    Column("by", String(64), nullable=False),
    Column("at", TS, nullable=False),
)

# Direct messages (migration 0004). One conversation per pair of people (`pair`: the two handles sorted, joined by a
# space, unique), whatever the direction; `last_message_id` orders the list of conversations (newest first).
conversations = Table(
    "conversations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("pair", String(130), nullable=False, unique=True),
    Column("started_at", TS, nullable=False),
    Column("last_message_id", SeqType, nullable=True),
    Column("last_at", TS, nullable=True),
)

# Each side of a conversation: what they have read (the id of the last message they saw; 0 for nothing).
conversation_members = Table(
    "conversation_members",
    metadata,
    Column("conversation_id", String(36), ForeignKey("conversations.id"), nullable=False),
    Column("global_handle", String(64), nullable=False),
    Column("peer", String(64), nullable=False),
    Column("read_upto", SeqType, nullable=False),
    PrimaryKeyConstraint("conversation_id", "global_handle", name="pk_conversation_members"),
    Index("ix_conversation_members_global_handle_peer", "global_handle", "peer", unique=True),
)

# Messages: plain text; `id` is also the thread's keyset cursor (newest first). Staff have no endpoint that reads them.
messages = Table(
    "messages",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("conversation_id", String(36), ForeignKey("conversations.id"), nullable=False),
    Column("sender", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("sent_at", TS, nullable=False),
    Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    Index("ix_messages_sender_sent_at", "sender", "sent_at"),
)

# What one person chose about another for direct messages: blocked (the other cannot message them) and muted (no
# unread count for that conversation). A row with both false is deleted.
message_peers = Table(
    "message_peers",
    metadata,
    Column("owner", String(64), nullable=False),
    Column("peer", String(64), nullable=False),
    Column("blocked", Boolean, nullable=False),
    Column("muted", Boolean, nullable=False),
    Column("changed_at", TS, nullable=False),
    PrimaryKeyConstraint("owner", "peer", name="pk_message_peers"),
    Index("ix_message_peers_peer", "peer"),
    CheckConstraint("owner <> peer", name="not_self"),
)

# Blogs (migration 0005): a person's own entries outside communities. `audience` says who sees one: everyone, the
# author's friends, or the members of `community_id`. Staff hide through moderation (hidden_*), like posts. Deleting
# an entry deletes its pictures, comments and 共感. `author` on each table (NULL once the account is deleted) makes a
# person's blog easy to find for an export or a deletion.
blog_entries = Table(
    "blog_entries",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),  # also the list's keyset cursor (newest first)
    Column("author", String(64), nullable=True),
    Column("title", String(120), nullable=False),
    Column("body", Text, nullable=False),
    Column("audience", String(9), nullable=False),  # public | friends | community
    Column("community_id", String(36), ForeignKey("communities.id"), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("hidden_at", TS, nullable=True),
    Column("hidden_reason", String(300), nullable=True),
    Column("hidden_by", String(64), nullable=True),
    Index("ix_blog_entries_author_id", "author", "id"),
    Index("ix_blog_entries_audience_id", "audience", "id"),
    Index("ix_blog_entries_community_id", "community_id"),
    CheckConstraint("audience IN ('public', 'friends', 'community')", name="audience"),
    CheckConstraint("(audience = 'community') = (community_id IS NOT NULL)", name="community"),
)

# The pictures as the gateway prepared them (no metadata left: towntip/kernel/images.py), checked again on the way in.
blog_pictures = Table(
    "blog_pictures",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("entry_id", SeqType, ForeignKey("blog_entries.id"), nullable=False),
    Column("author", String(64), nullable=True),
    Column("position", Integer, nullable=False),
    Column("alt", String(200), nullable=False),
    Column("content_type", String(16), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("image", LargeBinary, nullable=False),
    Column("thumb", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_blog_pictures_entry_id_position", "entry_id", "position", unique=True),
)

blog_comments = Table(
    "blog_comments",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("entry_id", SeqType, ForeignKey("blog_entries.id"), nullable=False),
    Column("author", String(64), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("hidden_at", TS, nullable=True),
    Column("hidden_reason", String(300), nullable=True),
    Column("hidden_by", String(64), nullable=True),
    Index("ix_blog_comments_entry_id_id", "entry_id", "id"),
    Index("ix_blog_comments_author_created_at", "author", "created_at"),
)

# ---- matching (マッチング, migration 0006: services/sns/openings.py) ------------------------------------------------
# An opening (募集) of a community (its leader posts) or a co-creation theme (its managers post: the projects service
# says who they are). `accepted` counts the accepted applications (never above `capacity`).
openings = Table(
    "openings",
    metadata,
    Column("id", String(36), primary_key=True),  # time-ordered: the list's order
    Column("host_kind", String(12), nullable=False),  # community | theme
    Column("host_id", String(36), nullable=False),
    Column("host_name", String(200), nullable=False),
    Column("organiser", String(64), nullable=True),  # global handle; NULL once their account is deleted
    Column("title", String(120), nullable=False),
    Column("task", Text, nullable=False),
    Column("skills", String(300), nullable=False),
    Column("skill_words", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("district", String(64), nullable=False),
    Column("place", String(200), nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=True),
    Column("capacity", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("event_code", String(64), nullable=True),
    Column("status", String(8), nullable=False),  # open | closed
    Column("created_at", TS, nullable=False),
    Column("closed_at", TS, nullable=True),
    Index("ix_openings_status_id", "status", "id"),
    Index("ix_openings_host_id", "host_id"),
    Index("ix_openings_organiser", "organiser"),
    CheckConstraint("host_kind IN ('community', 'theme')", name="host_kind"),
    CheckConstraint("status IN ('open', 'closed')", name="status"),
    CheckConstraint("accepted >= 0 AND accepted <= capacity", name="accepted"),
)

# One application per person per opening (the unique pair): applying twice is refused; a withdrawn one may apply
# again (the same row), a declined one may not.
applications = Table(
    "applications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("opening_id", String(36), ForeignKey("openings.id"), nullable=False),
    Column("applicant", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("status", String(12), nullable=False),  # pending | accepted | declined | withdrawn
    Column("applied_at", TS, nullable=False),
    Column("decided_at", TS, nullable=True),
    Column("decided_by", String(64), nullable=True),
    Index("ix_applications_opening_id_applicant", "opening_id", "applicant", unique=True),
    Index("ix_applications_applicant", "applicant"),
    CheckConstraint("status IN ('pending', 'accepted', 'declined', 'withdrawn')", name="status"),
)

# The skills a person states (free words), matched against the openings' skills wanted.
person_skills = Table(
    "person_skills",
    metadata,
    Column("global_handle", String(64), primary_key=True),
    Column("skills", String(300), nullable=False),
    Column("words", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
)
