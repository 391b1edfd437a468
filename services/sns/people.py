"""People as the sns service knows them: linked from the Actors the gateway vouches for, and dropped when identity
announces that an account was deleted (UserDeleted on EVT_<NODE>_IDENTITY, applied once through the kernel's inbox).

People of other nodes deleted at their home node come the same way from FED_<NODE>, where the identity
service sources the identity events of every node one of whose people is linked here.

A deleted person's memberships, friendships, friend requests and direct-message conversations (both sides'
messages) go; their posts and comments stay, by nobody (退会したユーザー / deleted user), or go if the person chose so
(services/sns/privacy.py, which the consumer calls: towntip.kernel.privacy.UserDeletedHandler refuses a UserDeleted
naming a person of another home node, 403); a community they led passes to its longest-standing member, or is
closed when nobody is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import communities, moderation, openings
from services.sns.models import (
    comments,
    conversation_members,
    conversations,
    friend_requests,
    friendships,
    likes,
    memberships,
    message_peers,
    messages,
    people,
    posts,
    request_log,
)
from towntip.kernel import db, privacy
from towntip.kernel.bus.consumer import ConsumerSpec
from towntip.kernel.contracts.actor import Actor

CONSUMER = "sns-people"


PEER_CONSUMER = "sns-peer-people"


def consumer_spec(node: str, service: str) -> ConsumerSpec:
    return privacy.consumer_spec(node, service, CONSUMER)


def peer_consumer_spec(node: str, service: str) -> ConsumerSpec:
    return privacy.consumer_spec(node, service, PEER_CONSUMER, peers=True)


async def link(session: AsyncSession, actor: Actor, now: datetime) -> None:
    """The gateway vouches that `actor.user_id` is `actor.global_handle` here: record it (a user id belongs to one
    handle; a stale row holding it lets go) and the display name they have now."""
    await session.execute(update(people).where(people.c.user_id == actor.user_id,
                                               people.c.global_handle != actor.global_handle).values(user_id=None))
    ins = db.insert_on_conflict(session, people).values(global_handle=actor.global_handle, user_id=actor.user_id,
                                                        display_name=actor.display_name, seen_at=now)
    await session.execute(ins.on_conflict_do_update(
        index_elements=["global_handle"],
        set_={"user_id": actor.user_id, "display_name": actor.display_name, "seen_at": now}))


async def link_actor(session: AsyncSession, *, data: Any, now: datetime) -> None:
    """The setup step of the service's writes: the asking person is recorded (user id and display name, for My
    Page) in the same transaction as their change."""
    await link(session, data.actor, now)


async def know(session: AsyncSession, handle: str, display_name: str, now: datetime) -> None:
    """A person the gateway found at the identity service (a friend request's addressee): known by name from now."""
    ins = db.insert_on_conflict(session, people).values(global_handle=handle, user_id=None,
                                                        display_name=display_name, seen_at=now)
    await session.execute(ins.on_conflict_do_update(index_elements=["global_handle"],
                                                    set_={"display_name": display_name}))


async def forget(session: AsyncSession, *, node: str, handle: str, now: datetime) -> None:
    """Everything a deleted account leaves behind, in the caller's transaction."""
    led = (await session.execute(select(memberships.c.community_id, memberships.c.role)
                                 .where(memberships.c.global_handle == handle))).all()
    for row in led:
        await communities.drop_member(session, node=node, community_id=row.community_id, handle=handle, now=now)
    await session.execute(delete(friendships).where(or_(friendships.c.a == handle, friendships.c.b == handle)))
    await session.execute(delete(friend_requests).where(
        or_(friend_requests.c.sender == handle, friend_requests.c.addressee == handle)))
    await session.execute(delete(request_log).where(request_log.c.sender == handle))
    await session.execute(delete(likes).where(likes.c.giver == handle))
    await moderation.forget(session, handle)
    await forget_messages(session, handle)
    await openings.forget(session, handle, now)
    await session.execute(update(likes).where(likes.c.recipient == handle).values(recipient=None))
    for table in (posts, comments):
        await session.execute(update(table).where(table.c.author == handle).values(author=None))
        await session.execute(update(table).where(table.c.hidden_by == handle).values(hidden_by=None))
    await session.execute(delete(people).where(people.c.global_handle == handle))


async def forget_messages(session: AsyncSession, handle: str) -> None:
    """Direct messages of a deleted account: every conversation they were part of goes with all its messages (both
    sides': a conversation is between two, and one of them is gone), and every block and mute by or about them."""
    ids = list((await session.execute(select(conversation_members.c.conversation_id).where(
        conversation_members.c.global_handle == handle))).scalars())
    if ids:
        await session.execute(delete(messages).where(db.among(session, messages.c.conversation_id, ids)))
        await session.execute(delete(conversation_members).where(
            db.among(session, conversation_members.c.conversation_id, ids)))
        await session.execute(delete(conversations).where(db.among(session, conversations.c.id, ids)))
    await session.execute(delete(message_peers).where(
        or_(message_peers.c.owner == handle, message_peers.c.peer == handle)))
