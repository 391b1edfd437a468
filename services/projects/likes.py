"""共感 (likes) on published themes and case studies: one per person per item (the table's primary key), never to
what one made oneself (a theme's maker, a case's publisher), withdrawn by its giver; giving twice or withdrawing one
never given answers the state and changes nothing. The maker who receives it is kept, for the notebook's 共感
(`likes.received`). No NATS, no commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects.models import case_versions, cases, likes, themes
from towntip.kernel import db
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts.actor import Actor


async def _recipient(session: AsyncSession, kind: str, item_id: str) -> str:
    """The maker of a published theme, or the publisher of a case's latest version; LIKE_NOT_FOUND otherwise."""
    maker: str | None = None
    if kind == "theme":
        maker = (await session.execute(select(themes.c.created_by).where(
            themes.c.id == item_id, themes.c.status == "published"))).scalar()
    elif kind == "case":
        maker = (await session.execute(
            select(case_versions.c.published_by).select_from(cases.join(case_versions, and_(
                case_versions.c.case_id == cases.c.id, case_versions.c.version == cases.c.version)))
            .where(cases.c.id == item_id))).scalar()
    if maker is None:
        raise lk.LIKE_NOT_FOUND(f"no published {kind} {item_id} / 共感できる{kind}が見つかりません")
    return maker


async def _states(session: AsyncSession, kind: str, ids: list[str], actor: Actor | None) -> list[lk.LikeState]:
    found: dict[str, int] = {}
    mine: set[str] = set()
    if ids:
        found = dict((await session.execute(
            select(likes.c.item_id, func.count()).where(likes.c.kind == kind, likes.c.item_id.in_(ids))
            .group_by(likes.c.item_id))).all())
        if actor is not None:
            mine = set((await session.execute(select(likes.c.item_id).where(
                likes.c.kind == kind, likes.c.item_id.in_(ids), likes.c.giver == actor.global_handle))).scalars())
    return [lk.LikeState(kind=kind, id=i, likes=found.get(i, 0), liked=i in mine)
            for i in ids]


async def give(*, session: AsyncSession, data: lk.LikeIn, now: datetime) -> lk.LikeState:
    maker = await _recipient(session, data.kind, data.id)
    if maker == data.actor.global_handle:
        raise lk.LIKE_OWN("you made this yourself / ご自身のテーマや事例には共感できません")
    ins = db.insert_on_conflict(session, likes).values(kind=data.kind, item_id=data.id,
                                                       giver=data.actor.global_handle, recipient=maker, given_at=now)
    await session.execute(ins.on_conflict_do_nothing(index_elements=["kind", "item_id", "giver"]))
    return (await _states(session, data.kind, [data.id], data.actor))[0]


async def withdraw(*, session: AsyncSession, data: lk.LikeIn) -> lk.LikeState:
    await _recipient(session, data.kind, data.id)
    await session.execute(delete(likes).where(likes.c.kind == data.kind, likes.c.item_id == data.id,
                                              likes.c.giver == data.actor.global_handle))
    return (await _states(session, data.kind, [data.id], data.actor))[0]


async def states(*, session: AsyncSession, q: lk.LikesQuery) -> lk.LikeStates:
    return lk.LikeStates(items=await _states(session, q.kind, list(q.ids), q.actor))


async def received(*, session: AsyncSession, q: lk.ReceivedQuery) -> lk.Received:
    n = (await session.execute(select(func.count()).select_from(likes)
                               .where(likes.c.recipient == q.global_handle))).scalar_one()
    return lk.Received(global_handle=q.global_handle, likes=n)
