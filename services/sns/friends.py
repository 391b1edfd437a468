"""Friendships (トモダチ関係): requests by global handle, answered by the addressee, cancelled by the sender; either
friend may end one. One friendship and at most one pending request per pair of people, never with oneself; My Page's
summary of a person (contracts.mypage). No NATS and no commits here."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import communities as cm
from services.sns import messages as dm
from services.sns import people as pp
from services.sns.models import bus, communities, friend_requests, friendships, memberships, people, request_log
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import mypage as mp
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware, rowcount


def pair(x: str, y: str) -> tuple[str, str]:
    return (x, y) if x < y else (y, x)


async def _friends_since(session: AsyncSession, x: str, y: str) -> datetime | None:
    a, b = pair(x, y)
    return (await session.execute(select(friendships.c.since).where(friendships.c.a == a, friendships.c.b == b))
            ).scalar()


async def _befriend(session: AsyncSession, x: str, y: str, now: datetime) -> None:
    a, b = pair(x, y)
    try:
        async with session.begin_nested():
            await session.execute(insert(friendships).values(a=a, b=b, since=now))
    except IntegrityError:
        raise c.FRIEND_ALREADY("you are friends already / すでにトモダチです") from None


def _request(row: Any, names: dict[str, str], became: bool = False) -> c.FriendRequest:
    return c.FriendRequest(id=row.id, sender=cm.person_of(row.sender, names),
                           addressee=cm.person_of(row.addressee, names), sent_at=aware(row.sent_at),
                           became_friends=became)


async def request(session: AsyncSession, *, node: str, data: c.FriendRequestIn, now: datetime) -> c.FriendRequest:
    me, other = data.actor.global_handle, data.to
    if me == other:
        raise c.FRIEND_SELF("you cannot befriend yourself / 自分自身にはトモダチ申請できません")
    # Both people's rows in one order (by handle): two crossed requests would otherwise lock them in opposite orders.
    for handle in sorted((me, other)):
        if handle == me:
            await pp.link(session, data.actor, now)
        else:
            await pp.know(session, other, data.to_name, now)
    if await _friends_since(session, me, other) is not None:
        raise c.FRIEND_ALREADY(f"you and {other} are friends already / すでにトモダチです")
    sent = (await session.execute(select(func.count()).select_from(request_log).where(
        request_log.c.sender == me, request_log.c.sent_at > now - timedelta(minutes=1)))).scalar_one()
    if sent >= c.REQUESTS_PER_MINUTE:
        raise c.FRIEND_REQUEST_LIMIT(f"at most {c.REQUESTS_PER_MINUTE} friend requests a minute / "
                                     "トモダチ申請が多すぎます。少し待ってください")
    key = " ".join(pair(me, other))
    pending = (await session.execute(select(friend_requests).where(friend_requests.c.pair == key)
                                     .with_for_update())).first()
    names = await cm.names_of(session, {me, other})
    if pending is not None:
        if pending.sender == me:
            raise c.FRIEND_ALREADY_ASKED(f"you have asked {other} already / すでに申請しています")
        # They asked first: this request answers theirs.
        await session.execute(delete(friend_requests).where(friend_requests.c.id == pending.id))
        await _befriend(session, me, other, now)
        return _request(pending, names, became=True)
    rid = str(uuid.uuid4())
    try:
        async with session.begin_nested():
            await session.execute(insert(friend_requests).values(id=rid, pair=key, sender=me, addressee=other,
                                                                 sent_at=now))
    except IntegrityError:  # a request between the two was stored a moment ago (crossed requests)
        raise c.FRIEND_REQUEST_PENDING(
            f"{other} and you have a request pending between you already: look at your friend "
            "requests / あいだに申請がすでにあります。トモダチ申請を確認してください") from None
    await session.execute(insert(request_log).values(sender=me, sent_at=now))
    await announce(session, bus, node=node, at=now, event=c.FriendRequested(
        request_id=rid, sender=me, sender_name=data.actor.display_name, addressee=other, at=now))
    return c.FriendRequest(id=rid, sender=cm.person_of(me, names), addressee=cm.person_of(other, names),
                           sent_at=now)


async def _pending(session: AsyncSession, request_id: str, actor: Actor, side: str) -> Any:
    """A pending request the actor is party to, on `side` (sender or addressee)."""
    row = (await session.execute(select(friend_requests).where(friend_requests.c.id == request_id)
                                 .with_for_update())).first()
    if row is None or actor.global_handle not in (row.sender, row.addressee):
        raise c.FRIEND_REQUEST_NOT_FOUND("no such friend request / トモダチ申請が見つかりません")
    if getattr(row, side) != actor.global_handle:
        raise c.FRIEND_REQUEST_NOT_YOURS("only the addressee answers a request, only its sender cancels it / "
                               "申請に答えられるのは受け取った人、取り消せるのは送った人だけです")
    return row


async def accept(session: AsyncSession, *, data: c.RequestAction, now: datetime) -> c.Friend:
    row = await _pending(session, data.request_id, data.actor, "addressee")
    await session.execute(delete(friend_requests).where(friend_requests.c.id == row.id))
    await _befriend(session, row.sender, row.addressee, now)
    names = await cm.names_of(session, {row.sender})
    return c.Friend(global_handle=row.sender, display_name=names.get(row.sender, row.sender), since=now)


async def decline(session: AsyncSession, *, data: c.RequestAction, now: datetime) -> c.Done:
    row = await _pending(session, data.request_id, data.actor, "addressee")
    await session.execute(delete(friend_requests).where(friend_requests.c.id == row.id))
    return c.Done()


async def cancel(session: AsyncSession, *, data: c.RequestAction, now: datetime) -> c.Done:
    row = await _pending(session, data.request_id, data.actor, "sender")
    await session.execute(delete(friend_requests).where(friend_requests.c.id == row.id))
    return c.Done()


async def remove(session: AsyncSession, *, data: c.FriendRemove, now: datetime) -> c.Done:
    a, b = pair(data.actor.global_handle, data.friend)
    gone = await session.execute(delete(friendships).where(friendships.c.a == a, friendships.c.b == b))
    if not rowcount(gone):
        raise c.FRIEND_NOT_FRIENDS(f"you and {data.friend} are not friends / {data.friend} とはトモダチではありません")
    return c.Done()


async def _friend_rows(session: AsyncSession, handle: str) -> list[tuple[str, datetime]]:
    rows = await session.execute(select(friendships).where(or_(friendships.c.a == handle, friendships.c.b == handle)))
    return sorted(((r.b if r.a == handle else r.a, aware(r.since)) for r in rows), key=lambda x: x[1], reverse=True)


async def list_(session: AsyncSession, *, actor: Actor) -> c.Friends:
    me = actor.global_handle
    found = await _friend_rows(session, me)
    reqs = (await session.execute(select(friend_requests).where(
        or_(friend_requests.c.sender == me, friend_requests.c.addressee == me))
        .order_by(friend_requests.c.sent_at.desc()))).all()
    names = await cm.names_of(session, {h for h, _ in found} | {r.sender for r in reqs} | {r.addressee for r in reqs})
    return c.Friends(
        friends=[c.Friend(global_handle=h, display_name=names.get(h, h), since=since) for h, since in found],
        incoming=[_request(r, names) for r in reqs if r.addressee == me],
        outgoing=[_request(r, names) for r in reqs if r.sender == me])


async def summary(session: AsyncSession, *, q: mp.SummaryQuery) -> mp.SnsSummary:
    """My Page's part: the person (by their user id here) in communities, their friends, requests awaiting them,
    their unread direct messages (a count only)."""
    handle = (await session.execute(select(people.c.global_handle).where(people.c.user_id == q.person))).scalar()
    if handle is None:
        return mp.SnsSummary(communities=[], friends=[], friend_requests=0)
    rows = await session.execute(
        select(communities.c.id, communities.c.name, communities.c.categories, communities.c.members,
               memberships.c.role, memberships.c.joined_at)
        .select_from(memberships.join(communities, communities.c.id == memberships.c.community_id))
        .where(memberships.c.global_handle == handle).order_by(memberships.c.joined_at.desc()))
    groups = [mp.CommunityRef(id=r.id, name=r.name, category=(list(r.categories) or [""])[0], role=r.role,
                              members=r.members, joined_at=aware(r.joined_at)) for r in rows]
    found = await _friend_rows(session, handle)
    names = await cm.names_of(session, {h for h, _ in found})
    waiting = (await session.execute(select(func.count()).select_from(friend_requests)
                                     .where(friend_requests.c.addressee == handle))).scalar_one()
    return mp.SnsSummary(communities=groups, friends=[mp.FriendRef(global_handle=h, display_name=names.get(h, h),
                                                                   since=since) for h, since in found],
                         friend_requests=waiting, unread_messages=await dm.unread_of(session, handle))
