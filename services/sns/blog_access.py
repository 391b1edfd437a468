"""Who may see a blog entry (and so its pictures, comments and 共感): everyone for a public one, the author's friends
for a friends' one, the community's members for a community's one; the author always; nobody else once staff hid it.
Shared by blogs, likes and moderation (a person reports only what they may see). No NATS and no commits here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.sns.models import blog_comments, blog_entries, friendships, memberships
from towntip.kernel import errors
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor

BLOG_KINDS = ("blog", "bcomment")


def _number(value: int | str) -> int | None:
    text = str(value)
    return int(text) if text.isdigit() and len(text) <= 18 else None


async def may_see(session: AsyncSession, row: Any, actor: Actor | None) -> bool:
    """The entry `row` (author, audience, community_id, hidden_at) is one the actor may see."""
    me = actor.global_handle if actor is not None else None
    if me is not None and row.author == me:
        return True
    if row.hidden_at is not None:
        return False
    if row.audience == "public":
        return True
    if me is None or row.author is None:
        return False
    if row.audience == "friends":
        a, b = sorted((row.author, me))  # one row per friendship, `a` < `b` (models.friendships)
        return (await session.execute(select(friendships.c.a).where(friendships.c.a == a, friendships.c.b == b))
                ).first() is not None
    return (await session.execute(select(memberships.c.role).where(
        memberships.c.community_id == row.community_id, memberships.c.global_handle == me))).first() is not None


def visible_clause(actor: Actor | None) -> ColumnElement[bool]:
    """The same rule as `may_see`, as a WHERE clause on blog_entries (the list)."""
    e = blog_entries.c
    if actor is None:
        return and_(e.audience == "public", e.hidden_at.is_(None))
    me = actor.global_handle
    friends = select(friendships.c.b).where(friendships.c.a == me).union(
        select(friendships.c.a).where(friendships.c.b == me))
    joined = select(memberships.c.community_id).where(memberships.c.global_handle == me)
    return or_(e.author == me, and_(e.hidden_at.is_(None), or_(
        e.audience == "public",
        and_(e.audience == "friends", e.author.in_(friends)),
        and_(e.audience == "community", e.community_id.in_(joined)))))


async def entry(session: AsyncSession, entry_id: int | str, actor: Actor | None) -> Any:
    """The entry if the actor may see it; BLOG_NOT_FOUND otherwise (the same answer as for no entry at all, so that
    a guess learns nothing)."""
    n = _number(entry_id)
    row = None
    if n is not None:
        row = (await session.execute(select(blog_entries).where(blog_entries.c.id == n))).first()
    if row is None or not await may_see(session, row, actor):
        raise c.BLOG_NOT_FOUND(f"no blog entry {entry_id} / ブログが見つかりません")
    return row


async def comment(session: AsyncSession, comment_id: int | str, actor: Actor | None) -> tuple[Any, Any]:
    """(the comment, its entry) if the actor may see the entry; BLOG_COMMENT_NOT_FOUND otherwise."""
    n = _number(comment_id)
    row = None
    if n is not None:
        row = (await session.execute(select(blog_comments).where(blog_comments.c.id == n))).first()
    if row is None:
        raise c.BLOG_COMMENT_NOT_FOUND(f"no comment {comment_id} / コメントが見つかりません")
    try:
        return row, await entry(session, row.entry_id, actor)
    except errors.NotFound:
        raise c.BLOG_COMMENT_NOT_FOUND(f"no comment {comment_id} / コメントが見つかりません") from None
