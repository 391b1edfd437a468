"""Posts and comments (ブログやコメントなどの投稿) in a community: members of an open community write, authors edit and
delete their own, the leader hides (with a reason kept). Reading is public; a hidden item's text is shown only to
its author and the leader. No NATS and no commits here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import communities as cm
from services.sns import likes as lk
from services.sns import moderation
from services.sns.models import bus, comments, communities, posts
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware


async def _throttle(session: AsyncSession, handle: str, now: datetime) -> None:
    since = now - timedelta(minutes=1)
    n = 0
    for table in (posts, comments):
        n += (await session.execute(select(func.count()).select_from(table)
                                    .where(table.c.author == handle, table.c.created_at > since))).scalar_one()
    if n >= c.WRITES_PER_MINUTE:
        raise c.POST_WRITE_LIMIT(f"at most {c.WRITES_PER_MINUTE} posts and comments a minute: wait a moment / "
                                     "投稿が多すぎます。少し待ってから書き込んでください")


async def _writable(session: AsyncSession, community_id: str, actor: Actor, now: datetime) -> Any:
    """The community (locked) if the actor may write in it: a member of an open community, not suspended by staff,
    from a node this one does not block."""
    await moderation.check_may_write(session, actor, now)
    row = await cm.locked(session, community_id)
    cm.must_be_open(row)
    if await cm.role_of(session, community_id, actor.global_handle) is None:
        raise c.POST_MEMBERS_ONLY("only members write here: join the community first / "
                               "投稿できるのはメンバーだけです。先に参加してください")
    return row


def _hidden(row: Any, staff: set[int] | frozenset[int] = frozenset()) -> c.Hidden | None:
    return (c.Hidden(at=aware(row.hidden_at), reason=row.hidden_reason or "", by_staff=row.id in staff)
            if row.hidden_at else None)


def _may_see(row: Any, actor: Actor | None, leader: str | None) -> bool:
    return row.hidden_at is None or (actor is not None and actor.global_handle in (row.author, leader))


Likes = tuple[dict[int, int], set[int]]
NO_LIKES: Likes = ({}, set())


def _post(row: Any, names: dict[str, str], actor: Actor | None, leader: str | None, n_comments: int,
          liked: Likes = NO_LIKES, staff: set[int] | frozenset[int] = frozenset()) -> c.Post:
    visible = _may_see(row, actor, leader)
    hidden = _hidden(row, staff)
    if hidden is not None and not visible:
        hidden = c.Hidden(at=hidden.at, reason="", by_staff=hidden.by_staff)
    return c.Post(id=row.id, community_id=row.community_id, author=cm.person_of(row.author, names),
                  title=row.title if visible else "", body=row.body if visible else "",
                  created_at=aware(row.created_at), edited_at=aware(row.edited_at), hidden=hidden,
                  comments=n_comments, mine=actor is not None and row.author == actor.global_handle,
                  likes=liked[0].get(row.id, 0), liked=row.id in liked[1])


def _comment(row: Any, names: dict[str, str], actor: Actor | None, leader: str | None,
             liked: Likes = NO_LIKES, staff: set[int] | frozenset[int] = frozenset()) -> c.Comment:
    visible = _may_see(row, actor, leader)
    hidden = _hidden(row, staff)
    if hidden is not None and not visible:
        hidden = c.Hidden(at=hidden.at, reason="", by_staff=hidden.by_staff)
    return c.Comment(id=row.id, post_id=row.post_id, author=cm.person_of(row.author, names),
                     body=row.body if visible else "", created_at=aware(row.created_at),
                     edited_at=aware(row.edited_at), hidden=hidden,
                     mine=actor is not None and row.author == actor.global_handle,
                     likes=liked[0].get(row.id, 0), liked=row.id in liked[1])


async def _post_row(session: AsyncSession, post_id: int) -> Any:
    row = (await session.execute(select(posts).where(posts.c.id == post_id))).first()
    if row is None:
        raise c.POST_NOT_FOUND(f"no post {post_id} / 投稿が見つかりません")
    return row


async def _comment_counts(session: AsyncSession, post_ids: list[int]) -> dict[int, int]:
    if not post_ids:
        return {}
    rows = await session.execute(select(comments.c.post_id, func.count()).where(comments.c.post_id.in_(post_ids))
                                 .group_by(comments.c.post_id))
    return dict(rows.all())


async def create(session: AsyncSession, *, node: str, data: c.PostCreate, now: datetime) -> c.Post:
    row = await _writable(session, data.community_id, data.actor, now)
    await _throttle(session, data.actor.global_handle, now)
    post_id = (await session.execute(insert(posts).values(
        community_id=row.id, author=data.actor.global_handle, title=data.title, body=data.body, created_at=now,
    ).returning(posts.c.id))).scalar_one()
    await announce(session, bus, node=node, at=now, event=c.PostPublished(
        post_id=post_id, community_id=row.id, categories=list(row.categories), at=now))
    return await get_post(session, post_id=post_id, actor=data.actor)


async def _own(session: AsyncSession, table: Any, item_id: int, actor: Actor, what: str) -> Any:
    """An item the actor wrote, in an open community they may still write in."""
    if table is posts:
        row = await _post_row(session, item_id)
        community_id = row.community_id
    else:
        row = (await session.execute(select(comments).where(comments.c.id == item_id))).first()
        if row is None:
            raise c.COMMENT_NOT_FOUND(f"no comment {item_id} / コメントが見つかりません")
        community_id = (await _post_row(session, row.post_id)).community_id
    if row.author != actor.global_handle:
        raise c.POST_NOT_AUTHOR(f"only its author may change this {what} / {what}を変更できるのは書いた本人だけです")
    cm.must_be_open(await cm.locked(session, community_id))
    return row


async def update_post(session: AsyncSession, *, data: c.PostUpdate, now: datetime) -> c.Post:
    row = await _own(session, posts, data.post_id, data.actor, "post")
    if row.hidden_at is not None:
        raise c.POST_HIDDEN(
            "the leader hid this post: it cannot be edited / リーダーが非表示にした投稿は編集できません")
    await session.execute(update(posts).where(posts.c.id == row.id)
                          .values(title=data.title, body=data.body, edited_at=now))
    return await get_post(session, post_id=row.id, actor=data.actor)


async def delete_post(session: AsyncSession, *, data: c.ItemRef, now: datetime) -> c.Done:
    row = await _own(session, posts, data.id, data.actor, "post")
    gone = list((await session.execute(select(comments.c.id).where(comments.c.post_id == row.id))).scalars())
    await lk.drop_items(session, "comment", gone)
    await lk.drop_items(session, "post", [row.id])
    await session.execute(delete(comments).where(comments.c.post_id == row.id))
    await session.execute(delete(posts).where(posts.c.id == row.id))
    return c.Done()


async def _hide(session: AsyncSession, table: Any, data: c.HideIn, now: datetime) -> None:
    """The leader hides a post or comment of their community (also once it is closed: moderation is no writing)."""
    if table is posts:
        row = await _post_row(session, data.id)
        community_id = row.community_id
    else:
        row = (await session.execute(select(comments).where(comments.c.id == data.id))).first()
        if row is None:
            raise c.COMMENT_NOT_FOUND(f"no comment {data.id} / コメントが見つかりません")
        community_id = (await _post_row(session, row.post_id)).community_id
    cm.must_lead(await cm.locked(session, community_id), data.actor)
    if row.hidden_at is not None:
        raise c.POST_ALREADY_HIDDEN("hidden already / すでに非表示です")
    await session.execute(update(table).where(table.c.id == row.id).values(
        hidden_at=now, hidden_reason=data.reason, hidden_by=data.actor.global_handle))


async def hide_post(session: AsyncSession, *, data: c.HideIn, now: datetime) -> c.Post:
    await _hide(session, posts, data, now)
    return await get_post(session, post_id=data.id, actor=data.actor)


async def hide_comment(session: AsyncSession, *, data: c.HideIn, now: datetime) -> c.Comment:
    await _hide(session, comments, data, now)
    return await _get_comment(session, data.id, data.actor)


async def create_comment(session: AsyncSession, *, node: str, data: c.CommentCreate, now: datetime
                         ) -> c.Comment:
    post = await _post_row(session, data.post_id)
    await _writable(session, post.community_id, data.actor, now)
    if post.hidden_at is not None:
        raise c.POST_HIDDEN("this post is hidden: no new comments / 非表示の投稿にはコメントできません")
    await _throttle(session, data.actor.global_handle, now)
    cid = (await session.execute(insert(comments).values(
        post_id=post.id, author=data.actor.global_handle, body=data.body, created_at=now,
    ).returning(comments.c.id))).scalar_one()
    await announce(session, bus, node=node, at=now, event=c.CommentPublished(
        comment_id=cid, post_id=post.id, community_id=post.community_id, post_author=post.author,
        author=data.actor.global_handle, at=now))
    return await _get_comment(session, cid, data.actor)


async def update_comment(session: AsyncSession, *, data: c.CommentUpdate, now: datetime) -> c.Comment:
    row = await _own(session, comments, data.comment_id, data.actor, "comment")
    if row.hidden_at is not None:
        raise c.COMMENT_HIDDEN("the leader hid this comment: it cannot be edited / "
                              "リーダーが非表示にしたコメントは編集できません")
    await session.execute(update(comments).where(comments.c.id == row.id).values(body=data.body, edited_at=now))
    return await _get_comment(session, row.id, data.actor)


async def delete_comment(session: AsyncSession, *, data: c.ItemRef, now: datetime) -> c.Done:
    row = await _own(session, comments, data.id, data.actor, "comment")
    await lk.drop_items(session, "comment", [row.id])
    await session.execute(delete(comments).where(comments.c.id == row.id))
    return c.Done()


async def _leader(session: AsyncSession, community_id: str) -> str | None:
    return (await session.execute(select(communities.c.leader).where(communities.c.id == community_id))).scalar()


async def _get_comment(session: AsyncSession, comment_id: int, actor: Actor | None) -> c.Comment:
    row = (await session.execute(select(comments).where(comments.c.id == comment_id))).one()
    leader = await _leader(session, (await _post_row(session, row.post_id)).community_id)
    return _comment(row, await cm.names_of(session, {row.author} if row.author else set()), actor, leader,
                    await lk.counts(session, "comment", [row.id], actor),
                    await moderation.staff_hidden(session, "comment", [row]))


async def get_post(session: AsyncSession, *, post_id: int, actor: Actor | None) -> c.Post:
    return (await detail(session, post_id=post_id, actor=actor, with_comments=False)).post


async def detail(session: AsyncSession, *, post_id: int, actor: Actor | None, with_comments: bool = True,
                 before: int | None = None, limit: int = c.PAGE_MAX) -> c.PostDetail:
    """The post and one page of its comments, newest first (`before`: the cursor of the page)."""
    row = await _post_row(session, post_id)
    community = await cm.get(session, community_id=row.community_id, actor=actor)
    leader = community.leader.global_handle if community.leader else None
    found: list[Any] = []
    more = False
    if with_comments:
        stmt = select(comments).where(comments.c.post_id == row.id)
        if before is not None:
            stmt = stmt.where(comments.c.id < before)
        found = list((await session.execute(stmt.order_by(comments.c.id.desc()).limit(limit + 1))).all())
        more, found = len(found) > limit, found[:limit]
    names = await cm.names_of(session, {r.author for r in [row, *found] if r.author})
    n = (await _comment_counts(session, [row.id])).get(row.id, 0)
    liked_c = await lk.counts(session, "comment", [r.id for r in found], actor)
    staff_c = await moderation.staff_hidden(session, "comment", found)
    return c.PostDetail(post=_post(row, names, actor, leader, n, await lk.counts(session, "post", [row.id], actor),
                                   await moderation.staff_hidden(session, "post", [row])),
                        community=community,
                        comments=[_comment(r, names, actor, leader, liked_c, staff_c) for r in found],
                        next_comments=found[-1].id if more else None)


async def page(session: AsyncSession, *, q: c.PostQuery) -> c.PostDetail:
    """The post and the page of its comments the query asks for."""
    return await detail(session, post_id=q.post_id, actor=q.actor, before=q.comments_before, limit=q.comments_limit)


async def list_(session: AsyncSession, *, q: c.PostListQuery) -> c.PostList:
    """Newest first, `limit` at a time; `next` is the cursor of the following page (the id to go below)."""
    leader = await _leader(session, q.community_id)
    if leader is None:
        await cm.get(session, community_id=q.community_id, actor=None)  # NotFound if there is none
    stmt = select(posts).where(posts.c.community_id == q.community_id)
    if q.before is not None:
        stmt = stmt.where(posts.c.id < q.before)
    rows = (await session.execute(stmt.order_by(posts.c.id.desc()).limit(q.limit + 1))).all()
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    names = await cm.names_of(session, {r.author for r in rows if r.author})
    counts = await _comment_counts(session, [r.id for r in rows])
    liked = await lk.counts(session, "post", [r.id for r in rows], q.actor)
    staff = await moderation.staff_hidden(session, "post", rows)
    return c.PostList(posts=[_post(r, names, q.actor, leader, counts.get(r.id, 0), liked, staff) for r in rows],
                      next=rows[-1].id if more else None)
