"""Communities (プロジェクト・コミュニティ): opening, the public list and page, joining and leaving, and the leader's
tools (remove a member, hand over, close). No NATS and no commits here: the adapter owns the transaction."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import directory
from services.sns.models import bus, communities, community_categories, memberships, people
from towntip.kernel import categories, db
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import notices as nc
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware


def name_key(name: str) -> str:
    """What makes two names the same community: width (ＡＢＣ/ABC), case and spacing do not count."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


async def person(session: AsyncSession, handle: str | None) -> c.Person | None:
    if handle is None:
        return None
    name = (await session.execute(select(people.c.display_name).where(people.c.global_handle == handle))).scalar()
    return c.Person(global_handle=handle, display_name=name or handle)


async def names_of(session: AsyncSession, handles: set[str]) -> dict[str, str]:
    """{handle: display name} of the people known here among `handles`."""
    if not handles:
        return {}
    rows = await session.execute(select(people.c.global_handle, people.c.display_name)
                                 .where(db.among(session, people.c.global_handle, sorted(handles))))
    return {r.global_handle: r.display_name for r in rows}


def person_of(handle: str | None, names: dict[str, str]) -> c.Person | None:
    return c.Person(global_handle=handle, display_name=names.get(handle, handle)) if handle else None


async def role_of(session: AsyncSession, community_id: str, handle: str) -> str | None:
    return (await session.execute(select(memberships.c.role).where(
        memberships.c.community_id == community_id, memberships.c.global_handle == handle))).scalar()


def _view(row: Any, leader: c.Person | None, my_role: str | None) -> c.Community:
    return c.Community(id=row.id, name=row.name, description=row.description, categories=list(row.categories),
                       status=row.status, leader=leader, members=row.members, opened_at=aware(row.opened_at),
                       closed_at=aware(row.closed_at), my_role=my_role)


async def view(session: AsyncSession, row: Any, actor: Actor | None) -> c.Community:
    my_role = await role_of(session, row.id, actor.global_handle) if actor else None
    return _view(row, await person(session, row.leader), my_role)


async def locked(session: AsyncSession, community_id: str) -> Any:
    """The community's row, locked for the rest of the transaction (changes to one community queue up)."""
    row = (await session.execute(select(communities).where(communities.c.id == community_id)
                                 .with_for_update())).first()
    if row is None:
        raise c.COMMUNITY_NOT_FOUND(f"no community {community_id} / コミュニティが見つかりません")
    return row


def must_be_open(row: Any) -> None:
    if row.status != "open":
        raise c.COMMUNITY_CLOSED("this community is closed: it can be read, not changed / "
                              "このコミュニティは終了しています（閲覧のみ）")


def must_lead(row: Any, actor: Actor) -> None:
    if row.leader != actor.global_handle:
        raise c.COMMUNITY_NOT_LEADER("only the community's leader may do this / コミュニティリーダーのみが行えます")


async def open_(session: AsyncSession, *, node: str, public_url: str, data: c.CommunityOpen,
                now: datetime) -> c.Community:
    opened = (await session.execute(select(func.count()).select_from(memberships).where(
        memberships.c.global_handle == data.actor.global_handle, memberships.c.role == "leader",
        memberships.c.joined_at > now - timedelta(hours=1)))).scalar_one()
    if opened >= c.OPENED_PER_HOUR:
        raise c.COMMUNITY_OPEN_LIMIT(f"at most {c.OPENED_PER_HOUR} new communities an hour / "
                                     "コミュニティの開設が多すぎます。しばらく待ってください")
    key = name_key(data.name)
    if (await session.execute(select(communities.c.id).where(communities.c.name_key == key))).first() is not None:
        raise c.COMMUNITY_NAME_TAKEN(
            f"a community named {data.name!r} exists already / 同じ名前のコミュニティがあります")
    cid = new_id()  # time-ordered: the list's keyset cursor (newest first)
    try:
        await session.execute(insert(communities).values(
            id=cid, name=data.name, name_key=key, description=data.description, categories=data.categories,
            status="open", leader=data.actor.global_handle, members=1, opened_at=now, closed_at=None))
    except IntegrityError:  # the same name, opened at the same moment by someone else
        raise c.COMMUNITY_NAME_TAKEN(
            f"a community named {data.name!r} exists already / 同じ名前のコミュニティがあります"
        ) from None
    await session.execute(insert(community_categories), [{"community_id": cid, "category": code}
                                                         for code in data.categories])
    await session.execute(insert(memberships).values(community_id=cid, global_handle=data.actor.global_handle,
                                                     role="leader", joined_at=now))
    await announce(session, bus, node=node, at=now, event=c.CommunityOpened(
        community_id=cid, name=data.name, categories=data.categories, at=now))
    await directory.touch(session, node=node, public_url=public_url, community_id=cid, now=now)  # other towns
    return await get(session, community_id=cid, actor=data.actor)


async def get(session: AsyncSession, *, community_id: str, actor: Actor | None) -> c.Community:
    row = (await session.execute(select(communities).where(communities.c.id == community_id))).first()
    if row is None:
        raise c.COMMUNITY_NOT_FOUND(f"no community {community_id} / コミュニティが見つかりません")
    return await view(session, row, actor)


async def member_list(session: AsyncSession, *, q: c.CommunityQuery) -> c.MemberList:
    return c.MemberList(members=await members(session, community_id=q.community_id))


async def audience(session: AsyncSession, *, q: nc.CommunityAudienceQuery) -> nc.Audience:
    """Every member's handle, for the notices service sending a notice to the community (no names, no roles)."""
    known = await session.scalar(select(communities.c.id).where(communities.c.id == q.community_id))
    handles = (await session.execute(select(memberships.c.global_handle).where(
        memberships.c.community_id == q.community_id).order_by(memberships.c.global_handle)
        .limit(nc.AUDIENCE_MAX))).scalars().all()
    return nc.Audience(handles=list(handles), known=known is not None)


async def list_(session: AsyncSession, *, q: c.CommunityListQuery) -> c.CommunityList:
    """Newest first, `limit` at a time; `next` is the cursor of the following page."""
    stmt = select(communities)
    if q.category:
        if q.category not in categories.codes():
            raise c.COMMUNITY_UNKNOWN_CATEGORY(f"unknown category {q.category!r}")
        stmt = stmt.where(communities.c.id.in_(select(community_categories.c.community_id)
                                               .where(community_categories.c.category == q.category)))
    if q.search:
        needle = name_key(q.search).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(communities.c.name_key.like(f"%{needle}%", escape="\\"))
    if q.member is not None:
        stmt = stmt.where(communities.c.id.in_(select(memberships.c.community_id)
                                               .where(memberships.c.global_handle == q.member.global_handle)))
    if not q.include_closed:
        stmt = stmt.where(communities.c.status == "open")
    if q.before is not None:
        stmt = stmt.where(communities.c.id < q.before)
    rows = (await session.execute(stmt.order_by(communities.c.id.desc()).limit(q.limit + 1))).all()
    more, rows = len(rows) > q.limit, rows[:q.limit]
    names = await names_of(session, {r.leader for r in rows if r.leader})
    mine: dict[str, str] = {}
    if q.member is not None and rows:
        mine = dict((await session.execute(select(memberships.c.community_id, memberships.c.role).where(
            memberships.c.global_handle == q.member.global_handle))).all())
    return c.CommunityList(communities=[_view(r, person_of(r.leader, names), mine.get(r.id)) for r in rows],
                           next=rows[-1].id if more else None)


async def members(session: AsyncSession, *, community_id: str) -> list[c.Member]:
    await get(session, community_id=community_id, actor=None)
    rows = await session.execute(
        select(memberships.c.global_handle, memberships.c.role, memberships.c.joined_at, people.c.display_name)
        .select_from(memberships.outerjoin(people, people.c.global_handle == memberships.c.global_handle))
        .where(memberships.c.community_id == community_id)
        .order_by(memberships.c.role, memberships.c.joined_at, memberships.c.global_handle))
    return [c.Member(global_handle=r.global_handle, display_name=r.display_name or r.global_handle, role=r.role,
                     joined_at=aware(r.joined_at)) for r in rows]


async def join(session: AsyncSession, *, node: str, public_url: str, data: c.CommunityAction,
               now: datetime) -> c.Community:
    row = await locked(session, data.community_id)
    must_be_open(row)
    if await role_of(session, row.id, data.actor.global_handle) is not None:
        raise c.COMMUNITY_ALREADY_MEMBER("you are a member already / すでに参加しています")
    await session.execute(insert(memberships).values(community_id=row.id, global_handle=data.actor.global_handle,
                                                     role="member", joined_at=now))
    await session.execute(update(communities).where(communities.c.id == row.id)
                          .values(members=communities.c.members + 1))
    await directory.touch(session, node=node, public_url=public_url, community_id=row.id, now=now)
    return await get(session, community_id=row.id, actor=data.actor)


async def leave(session: AsyncSession, *, node: str, public_url: str, data: c.CommunityAction,
                now: datetime) -> c.Community:
    row = await locked(session, data.community_id)
    must_be_open(row)
    role = await role_of(session, row.id, data.actor.global_handle)
    if role is None:
        raise c.COMMUNITY_NOT_MEMBER("you are not a member / 参加していません")
    if role == "leader":
        raise c.COMMUNITY_LEADER_STAYS("the leader hands the community to a member (or closes it) before leaving / "
                              "リーダーは退出する前に、メンバーに引き継ぐかコミュニティを終了してください")
    await _remove(session, row.id, data.actor.global_handle)
    await directory.touch(session, node=node, public_url=public_url, community_id=row.id, now=now)
    return await get(session, community_id=row.id, actor=data.actor)


async def remove_member(session: AsyncSession, *, node: str, public_url: str, data: c.MemberAction,
                        now: datetime) -> c.Community:
    row = await locked(session, data.community_id)
    must_be_open(row)
    must_lead(row, data.actor)
    if data.member == data.actor.global_handle:
        raise c.COMMUNITY_LEADER_STAYS("the leader cannot remove themself: hand over first / "
                              "リーダー自身は外せません。先に引き継いでください")
    if await role_of(session, row.id, data.member) is None:
        raise c.COMMUNITY_MEMBER_NOT_FOUND(f"{data.member} is not a member / {data.member} はメンバーではありません")
    await _remove(session, row.id, data.member)
    await directory.touch(session, node=node, public_url=public_url, community_id=row.id, now=now)
    return await get(session, community_id=row.id, actor=data.actor)


async def hand_over(session: AsyncSession, *, data: c.MemberAction, now: datetime) -> c.Community:
    row = await locked(session, data.community_id)
    must_be_open(row)
    must_lead(row, data.actor)
    if data.member == data.actor.global_handle:
        raise c.COMMUNITY_ALREADY_LEADER("you lead this community already / すでにリーダーです")
    if await role_of(session, row.id, data.member) is None:
        raise c.COMMUNITY_MEMBER_NOT_FOUND(f"{data.member} is not a member / {data.member} はメンバーではありません")
    await _set_leader(session, row.id, data.member, previous=data.actor.global_handle)
    return await get(session, community_id=row.id, actor=data.actor)


async def close(session: AsyncSession, *, node: str, public_url: str, data: c.CommunityAction,
                now: datetime) -> c.Community:
    row = await locked(session, data.community_id)
    must_be_open(row)
    must_lead(row, data.actor)
    await _close(session, node=node, row=row, now=now, why="leader")
    await directory.touch(session, node=node, public_url=public_url, community_id=row.id, now=now)
    return await get(session, community_id=row.id, actor=data.actor)


async def drop_member(session: AsyncSession, *, node: str, community_id: str, handle: str, now: datetime) -> None:
    """A member whose account was deleted: out of the community; a leader's community passes to the longest-standing
    member, or is closed when nobody else is in it (a closed community keeps its members: they simply go)."""
    row = await locked(session, community_id)
    await _remove(session, community_id, handle)
    if row.leader != handle:
        return
    heir = (await session.execute(select(memberships.c.global_handle)
                                  .where(memberships.c.community_id == community_id)
                                  .order_by(memberships.c.joined_at, memberships.c.global_handle).limit(1))).scalar()
    if heir is not None:
        await _set_leader(session, community_id, heir, previous=None)
    else:
        await session.execute(update(communities).where(communities.c.id == community_id).values(leader=None))
        if row.status == "open":
            await _close(session, node=node, row=row, now=now, why="leader_deleted")


async def _remove(session: AsyncSession, community_id: str, handle: str) -> None:
    gone = await session.execute(delete(memberships).where(memberships.c.community_id == community_id,
                                                           memberships.c.global_handle == handle))
    removed = db.rowcount(gone)
    if removed:
        await session.execute(update(communities).where(communities.c.id == community_id)
                              .values(members=communities.c.members - removed))


async def _set_leader(session: AsyncSession, community_id: str, handle: str, *, previous: str | None) -> None:
    if previous is not None:
        await session.execute(update(memberships).where(memberships.c.community_id == community_id,
                                                        memberships.c.global_handle == previous).values(role="member"))
    await session.execute(update(memberships).where(memberships.c.community_id == community_id,
                                                    memberships.c.global_handle == handle).values(role="leader"))
    await session.execute(update(communities).where(communities.c.id == community_id).values(leader=handle))


async def _close(session: AsyncSession, *, node: str, row: Any, now: datetime, why: str) -> None:
    await session.execute(update(communities).where(communities.c.id == row.id)
                          .values(status="closed", closed_at=now))
    await announce(session, bus, node=node, at=now, event=c.CommunityClosed(
        community_id=row.id, categories=list(row.categories), at=now, why=why))


async def count(session: AsyncSession, community_id: str) -> int:
    """The members counted from the rows (tests compare it with the kept count)."""
    return (await session.execute(select(func.count()).select_from(memberships)
                                  .where(memberships.c.community_id == community_id))).scalar_one()
