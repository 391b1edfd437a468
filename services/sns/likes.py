"""共感 (likes) on posts and comments, blog entries and their comments (kinds blog and bcomment: only by someone who
may see the entry, services/sns/blog_access.py): one per person per item (the table's primary key), given to what
others wrote, withdrawn by its giver; giving twice or withdrawing one never given answers the state and changes
nothing. The author who receives it is kept with it, for the notebook's 共感 column (`likes.received`). No NATS, no
commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import blog_access as ba
from services.sns import communities as cm
from services.sns.models import comments, likes, posts
from towntip.kernel import db, errors
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts.actor import Actor


async def counts(session: AsyncSession, kind: str, ids: list[int], actor: Actor | None
                 ) -> tuple[dict[int, int], set[int]]:
    """({item id: 共感 count}, the ids the actor gave 共感 to) of items of one kind."""
    if not ids:
        return {}, set()
    found: dict[int, int] = dict((await session.execute(
        select(likes.c.item_id, func.count()).where(likes.c.kind == kind, likes.c.item_id.in_(ids))
        .group_by(likes.c.item_id))).all())
    mine: set[int] = set()
    if actor is not None:
        mine = set((await session.execute(select(likes.c.item_id).where(
            likes.c.kind == kind, likes.c.item_id.in_(ids), likes.c.giver == actor.global_handle))).scalars())
    return found, mine


def _number(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise lk.LIKE_NOT_FOUND(f"no {value!r} here / 見つかりません")
    return int(value)


async def _target(session: AsyncSession, kind: str, item_id: int) -> Any:
    """The post or comment (with its community's id) that may take 共感: visible (not hidden) and there."""
    if kind == "post":
        row = (await session.execute(select(posts.c.id, posts.c.author, posts.c.hidden_at, posts.c.community_id)
                                     .where(posts.c.id == item_id))).first()
    elif kind == "comment":
        row = (await session.execute(
            select(comments.c.id, comments.c.author, comments.c.hidden_at, posts.c.community_id)
            .select_from(comments.join(posts, posts.c.id == comments.c.post_id))
            .where(comments.c.id == item_id))).first()
    else:
        row = None
    if row is None or row.hidden_at is not None:
        raise lk.LIKE_NOT_FOUND(f"no visible {kind} {item_id} / 共感できる{kind}が見つかりません")
    return row


async def _blog_target(session: AsyncSession, kind: str, item_id: int, actor: Actor) -> Any:
    """The blog entry or comment the actor may see and that is not hidden (LIKE_NOT_FOUND otherwise)."""
    try:
        row = (await ba.entry(session, item_id, actor) if kind == "blog"
               else (await ba.comment(session, item_id, actor))[0])
    except errors.NotFound:
        row = None
    if row is None or row.hidden_at is not None:
        raise lk.LIKE_NOT_FOUND(f"no visible {kind} {item_id} / 共感できる{kind}が見つかりません")
    return row


async def _state(session: AsyncSession, kind: str, item_id: int, actor: Actor) -> lk.LikeState:
    found, mine = await counts(session, kind, [item_id], actor)
    return lk.LikeState(kind=kind, id=str(item_id), likes=found.get(item_id, 0), liked=item_id in mine)


async def give(session: AsyncSession, *, data: lk.LikeIn, now: datetime) -> lk.LikeState:
    item_id = _number(data.id)
    if data.kind in ba.BLOG_KINDS:
        row = await _blog_target(session, data.kind, item_id, data.actor)
    else:
        row = await _target(session, data.kind, item_id)
    if row.author == data.actor.global_handle:
        raise lk.LIKE_OWN("you wrote this yourself / 自分の投稿には共感できません")
    if data.kind not in ba.BLOG_KINDS:
        cm.must_be_open(await cm.locked(session, row.community_id))
    ins = db.insert_on_conflict(session, likes).values(kind=data.kind, item_id=item_id,
                                                       giver=data.actor.global_handle, recipient=row.author,
                                                       given_at=now)
    await session.execute(ins.on_conflict_do_nothing(index_elements=["kind", "item_id", "giver"]))
    return await _state(session, data.kind, item_id, data.actor)


async def withdraw(session: AsyncSession, *, data: lk.LikeIn) -> lk.LikeState:
    item_id = _number(data.id)
    if data.kind in ba.BLOG_KINDS:
        await _blog_target(session, data.kind, item_id, data.actor)
    else:
        await _target(session, data.kind, item_id)
    await session.execute(delete(likes).where(likes.c.kind == data.kind, likes.c.item_id == item_id,
                                              likes.c.giver == data.actor.global_handle))
    return await _state(session, data.kind, item_id, data.actor)


async def states(session: AsyncSession, *, q: lk.LikesQuery) -> lk.LikeStates:
    ids = [int(i) for i in q.ids if i.isdigit() and len(i) <= 18]
    found, mine = await counts(session, q.kind, ids, q.actor)
    return lk.LikeStates(items=[lk.LikeState(kind=q.kind, id=i, likes=found.get(int(i), 0) if i in map(str, ids)
                                             else 0, liked=i.isdigit() and int(i) in mine) for i in q.ids])


async def received(session: AsyncSession, *, q: lk.ReceivedQuery) -> lk.Received:
    n = (await session.execute(select(func.count()).select_from(likes)
                               .where(likes.c.recipient == q.global_handle))).scalar_one()
    return lk.Received(global_handle=q.global_handle, likes=n)


async def drop_items(session: AsyncSession, kind: str, ids: list[int]) -> None:
    """The 共感 of deleted posts or comments go with them."""
    if ids:
        await session.execute(delete(likes).where(and_(likes.c.kind == kind, likes.c.item_id.in_(ids))))
