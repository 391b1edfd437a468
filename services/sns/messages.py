"""Direct messages (ダイレクト・メッセージ): one conversation per pair of people known here by global handle, plain
text, newest first with a keyset cursor, each side's read mark and unread count; blocks (the blocked cannot message
the blocker) and mutes (no unread count); at most MESSAGES_PER_MINUTE per sender. Only the two people of a
conversation ever read it: every function here answers the actor's own conversations only. No NATS, no commits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import communities as cm
from services.sns import moderation
from services.sns import people as pp
from services.sns.models import conversation_members, conversations, message_peers, messages
from towntip.kernel import db
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware


async def _peer_row(session: AsyncSession, owner: str, peer: str) -> Any:
    return (await session.execute(select(message_peers).where(message_peers.c.owner == owner,
                                                              message_peers.c.peer == peer))).first()


def _state(peer: str, row: Any) -> c.PeerState:
    return c.PeerState(peer=peer, blocked=bool(row and row.blocked), muted=bool(row and row.muted))


async def _conversation(session: AsyncSession, me: str, peer: str) -> str | None:
    return (await session.execute(select(conversation_members.c.conversation_id).where(
        conversation_members.c.global_handle == me, conversation_members.c.peer == peer))).scalar()


async def _open(session: AsyncSession, me: str, peer: str, now: datetime) -> str:
    """The pair's conversation, made if there is none (two first messages at once: one row, by the unique pair)."""
    key = " ".join(sorted((me, peer)))  # the pair, whichever way
    await session.execute(db.insert_on_conflict(session, conversations).values(
        id=str(uuid.uuid4()), pair=key, started_at=now).on_conflict_do_nothing(index_elements=["pair"]))
    cid = (await session.execute(select(conversations.c.id).where(conversations.c.pair == key)
                                 .with_for_update())).scalar_one()
    for handle, other in ((me, peer), (peer, me)):
        await session.execute(db.insert_on_conflict(session, conversation_members).values(
            conversation_id=cid, global_handle=handle, peer=other, read_upto=0,
        ).on_conflict_do_nothing(index_elements=["conversation_id", "global_handle"]))
    return str(cid)


async def send(session: AsyncSession, *, data: c.MessageIn, now: datetime) -> c.Message:
    me, other = data.actor.global_handle, data.to
    if me == other:
        raise c.MESSAGE_SELF("you cannot message yourself / 自分自身にはメッセージを送れません")
    # Refusals first, before anything is written: a refused message changes nothing. A person staff suspended, or
    # of a peer node blocked here, writes no messages either (they would be the way round a suspension).
    await moderation.check_may_write(session, data.actor, now)
    if (row := await _peer_row(session, other, me)) is not None and row.blocked:
        raise c.MESSAGE_BLOCKED(f"{other} does not take messages from you / この方にはメッセージを送れません")
    if (row := await _peer_row(session, me, other)) is not None and row.blocked:
        raise c.MESSAGE_YOU_BLOCKED(f"you blocked {other}: unblock them first / ブロックを解除してから送ってください")
    sent = (await session.execute(select(func.count()).select_from(messages).where(
        messages.c.sender == me, messages.c.sent_at > now - timedelta(minutes=1)))).scalar_one()
    if sent >= c.MESSAGES_PER_MINUTE:
        raise c.MESSAGE_RATE_LIMIT(f"at most {c.MESSAGES_PER_MINUTE} messages a minute / "
                                   "メッセージが多すぎます。少し待ってください")
    # Both people's rows in one order (by handle): two crossed first messages would otherwise lock them in opposite
    # orders.
    for handle in sorted((me, other)):
        if handle == me:
            await pp.link(session, data.actor, now)
        else:
            await pp.know(session, other, data.to_name, now)
    cid = await _open(session, me, other, now)
    mid = (await session.execute(insert(messages).values(conversation_id=cid, sender=me, body=data.body,
                                                         sent_at=now).returning(messages.c.id))).scalar_one()
    await session.execute(update(conversations).where(conversations.c.id == cid)
                          .values(last_message_id=mid, last_at=now))
    # What one sends, one has read.
    await session.execute(update(conversation_members).where(
        conversation_members.c.conversation_id == cid, conversation_members.c.global_handle == me)
        .values(read_upto=mid))
    return c.Message(id=mid, sender=me, body=data.body, sent_at=now, mine=True)


def _unread_query(me: str) -> Any:
    """Per conversation of `me`: how many of the other's messages came after `me`'s read mark."""
    return (select(messages.c.conversation_id, func.count().label("n"))
            .select_from(messages.join(conversation_members, and_(
                conversation_members.c.conversation_id == messages.c.conversation_id,
                conversation_members.c.global_handle == me)))
            .where(messages.c.id > conversation_members.c.read_upto, messages.c.sender != me)
            .group_by(messages.c.conversation_id))


async def _muted(session: AsyncSession, me: str) -> set[str]:
    return set((await session.execute(select(message_peers.c.peer).where(
        message_peers.c.owner == me, message_peers.c.muted.is_(True)))).scalars())


async def unread(session: AsyncSession, *, actor: Actor) -> c.Unread:
    return c.Unread(unread=await unread_of(session, actor.global_handle))


async def unread_of(session: AsyncSession, me: str) -> int:
    """The person's unread messages in all their conversations, the muted ones left out."""
    counts = {r.conversation_id: r.n for r in await session.execute(_unread_query(me))}
    if not counts:
        return 0
    muted = await _muted(session, me)
    peers = {r.conversation_id: r.peer for r in await session.execute(
        select(conversation_members.c.conversation_id, conversation_members.c.peer).where(
            conversation_members.c.global_handle == me))}
    return sum(n for cid, n in counts.items() if peers.get(cid) not in muted)


async def list_(session: AsyncSession, *, data: c.ConversationsQuery) -> c.Conversations:
    me = data.actor.global_handle
    q = (select(conversations.c.id, conversations.c.last_message_id, conversations.c.last_at,
                conversation_members.c.peer, messages.c.body, messages.c.sender)
         .select_from(conversation_members
                      .join(conversations, conversations.c.id == conversation_members.c.conversation_id)
                      .join(messages, messages.c.id == conversations.c.last_message_id))
         .where(conversation_members.c.global_handle == me)
         .order_by(conversations.c.last_message_id.desc()).limit(data.limit + 1))
    if data.before is not None:
        q = q.where(conversations.c.last_message_id < data.before)
    rows = (await session.execute(q)).all()
    more = len(rows) > data.limit
    rows = rows[: data.limit]
    counts = {r.conversation_id: r.n for r in await session.execute(_unread_query(me))}
    states = {r.peer: r for r in await session.execute(select(message_peers).where(message_peers.c.owner == me))}
    names = await cm.names_of(session, {r.peer for r in rows})
    muted = {p for p, r in states.items() if r.muted}
    out = []
    for r in rows:
        state = _state(r.peer, states.get(r.peer))
        out.append(c.Conversation(
            peer=c.Person(global_handle=r.peer, display_name=names.get(r.peer, r.peer)), last_at=aware(r.last_at),
            preview=r.body[: c.PREVIEW_MAX], last_mine=r.sender == me,
            unread=0 if state.muted else counts.get(r.id, 0), muted=state.muted, blocked=state.blocked,
            cursor=r.last_message_id))
    peers = {r.conversation_id: r.peer for r in await session.execute(
        select(conversation_members.c.conversation_id, conversation_members.c.peer).where(
            conversation_members.c.global_handle == me))}
    total = sum(n for cid, n in counts.items() if peers.get(cid) not in muted)
    return c.Conversations(conversations=out, unread_total=total, next=rows[-1].last_message_id if more else None)


async def thread(session: AsyncSession, *, data: c.ThreadQuery) -> c.Thread:
    """The actor's conversation with `peer` (empty if they have none: nobody learns of others' conversations)."""
    me, peer = data.actor.global_handle, data.peer
    names = await cm.names_of(session, {peer})
    state = _state(peer, await _peer_row(session, me, peer))
    person = c.Person(global_handle=peer, display_name=names.get(peer, peer))
    cid = await _conversation(session, me, peer)
    if cid is None:
        return c.Thread(peer=person, messages=[], unread=0, state=state)
    q = (select(messages).where(messages.c.conversation_id == cid).order_by(messages.c.id.desc())
         .limit(data.limit + 1))
    if data.before is not None:
        q = q.where(messages.c.id < data.before)
    rows = (await session.execute(q)).all()
    more = len(rows) > data.limit
    rows = rows[: data.limit]
    read_upto = (await session.execute(select(conversation_members.c.read_upto).where(
        conversation_members.c.conversation_id == cid, conversation_members.c.global_handle == me))).scalar_one()
    waiting = (await session.execute(select(func.count()).select_from(messages).where(
        messages.c.conversation_id == cid, messages.c.id > read_upto, messages.c.sender != me))).scalar_one()
    return c.Thread(peer=person, messages=[
        c.Message(id=r.id, sender=r.sender, body=r.body, sent_at=aware(r.sent_at), mine=r.sender == me) for r in rows],
        next=rows[-1].id if more else None, unread=waiting, state=state)


async def mark_read(session: AsyncSession, *, data: c.ReadIn, now: datetime) -> c.Unread:
    """The actor's read mark in their conversation with `peer` moves forward to `upto` (never back, never past the
    newest message); answers the actor's total unread."""
    me = data.actor.global_handle
    cid = await _conversation(session, me, data.peer)
    if cid is not None:
        newest = (await session.execute(select(func.max(messages.c.id)).where(
            messages.c.conversation_id == cid, messages.c.id <= data.upto))).scalar()
        if newest is not None:
            await session.execute(update(conversation_members).where(
                conversation_members.c.conversation_id == cid, conversation_members.c.global_handle == me,
                conversation_members.c.read_upto < newest).values(read_upto=newest))
    return await unread(session, actor=data.actor)


async def set_peer(session: AsyncSession, *, data: c.PeerSettingIn, now: datetime) -> c.PeerState:
    me, peer = data.actor.global_handle, data.peer
    if me == peer:
        raise c.MESSAGE_SELF("you cannot block or mute yourself / 自分自身は設定できません")
    row = await _peer_row(session, me, peer)
    blocked = bool(row and row.blocked) if data.blocked is None else data.blocked
    muted = bool(row and row.muted) if data.muted is None else data.muted
    await session.execute(delete(message_peers).where(message_peers.c.owner == me, message_peers.c.peer == peer))
    if blocked or muted:
        await session.execute(insert(message_peers).values(owner=me, peer=peer, blocked=blocked, muted=muted,
                                                           changed_at=now))
    return c.PeerState(peer=peer, blocked=blocked, muted=muted)

