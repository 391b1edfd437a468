"""NATS adapters of the sns service: request/reply endpoints. Each change runs in its own transaction, records the
asking person (their user id and display name, for My Page) with it, and wakes the outbox relay after the commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.sns import communities, friends, people, posts
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import mypage as mp
from towntip.kernel.contracts import sns as c

T = TypeVar("T")


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, on_commit: Callable[[], None],
                    clock: Callable[[], datetime] = utcnow) -> Endpoints:
    eps = Endpoints()

    async def write(change: Callable[..., Awaitable[T]], data: Any, *, link: bool = True, **args: Any) -> T:
        """`link=False`: the change records the actor itself (in a set order with other people's rows)."""
        async with sessions() as session, session.begin():
            now = clock()
            if link:
                await people.link(session, data.actor, now)
            out = await change(session=session, data=data, now=now, **args)
        on_commit()
        return out

    async def read(query: Callable[..., Awaitable[T]], **args: Any) -> T:
        async with sessions() as session:
            return await query(session=session, **args)

    # ---- communities ----

    @eps.add(c.EP_COMMUNITY_OPEN, c.CommunityOpen)
    async def community_open(q: c.CommunityOpen) -> c.Community:
        return await write(communities.open_, q, node=node)

    @eps.add(c.EP_COMMUNITY_LIST, c.CommunityListQuery)
    async def community_list(q: c.CommunityListQuery) -> c.CommunityList:
        return await read(communities.list_, q=q)

    @eps.add(c.EP_COMMUNITY_GET, c.CommunityQuery)
    async def community_get(q: c.CommunityQuery) -> c.Community:
        return await read(communities.get, community_id=q.community_id, actor=q.actor)

    @eps.add(c.EP_COMMUNITY_MEMBERS, c.CommunityQuery)
    async def community_members(q: c.CommunityQuery) -> c.MemberList:
        return c.MemberList(members=await read(communities.members, community_id=q.community_id))

    @eps.add(c.EP_COMMUNITY_JOIN, c.CommunityAction)
    async def community_join(q: c.CommunityAction) -> c.Community:
        return await write(communities.join, q)

    @eps.add(c.EP_COMMUNITY_LEAVE, c.CommunityAction)
    async def community_leave(q: c.CommunityAction) -> c.Community:
        return await write(communities.leave, q)

    @eps.add(c.EP_COMMUNITY_REMOVE, c.MemberAction)
    async def community_remove(q: c.MemberAction) -> c.Community:
        return await write(communities.remove_member, q)

    @eps.add(c.EP_COMMUNITY_HAND_OVER, c.MemberAction)
    async def community_hand_over(q: c.MemberAction) -> c.Community:
        return await write(communities.hand_over, q)

    @eps.add(c.EP_COMMUNITY_CLOSE, c.CommunityAction)
    async def community_close(q: c.CommunityAction) -> c.Community:
        return await write(communities.close, q, node=node)

    # ---- posts and comments ----

    @eps.add(c.EP_POST_CREATE, c.PostCreate)
    async def post_create(q: c.PostCreate) -> c.Post:
        return await write(posts.create, q, node=node)

    @eps.add(c.EP_POST_UPDATE, c.PostUpdate)
    async def post_update(q: c.PostUpdate) -> c.Post:
        return await write(posts.update_post, q)

    @eps.add(c.EP_POST_DELETE, c.ItemRef)
    async def post_delete(q: c.ItemRef) -> c.Done:
        return await write(posts.delete_post, q)

    @eps.add(c.EP_POST_HIDE, c.HideIn)
    async def post_hide(q: c.HideIn) -> c.Post:
        return await write(posts.hide_post, q)

    @eps.add(c.EP_POST_LIST, c.PostListQuery)
    async def post_list(q: c.PostListQuery) -> c.PostList:
        return await read(posts.list_, q=q)

    @eps.add(c.EP_POST_GET, c.PostQuery)
    async def post_get(q: c.PostQuery) -> c.PostDetail:
        return await read(posts.detail, post_id=q.post_id, actor=q.actor, before=q.comments_before,
                          limit=q.comments_limit)

    @eps.add(c.EP_COMMENT_CREATE, c.CommentCreate)
    async def comment_create(q: c.CommentCreate) -> c.Comment:
        return await write(posts.create_comment, q)

    @eps.add(c.EP_COMMENT_UPDATE, c.CommentUpdate)
    async def comment_update(q: c.CommentUpdate) -> c.Comment:
        return await write(posts.update_comment, q)

    @eps.add(c.EP_COMMENT_DELETE, c.ItemRef)
    async def comment_delete(q: c.ItemRef) -> c.Done:
        return await write(posts.delete_comment, q)

    @eps.add(c.EP_COMMENT_HIDE, c.HideIn)
    async def comment_hide(q: c.HideIn) -> c.Comment:
        return await write(posts.hide_comment, q)

    # ---- friends ----

    @eps.add(c.EP_FRIEND_REQUEST, c.FriendRequestIn)
    async def friend_request(q: c.FriendRequestIn) -> c.FriendRequest:
        return await write(friends.request, q, link=False)

    @eps.add(c.EP_FRIEND_ACCEPT, c.RequestAction)
    async def friend_accept(q: c.RequestAction) -> c.Friend:
        return await write(friends.accept, q)

    @eps.add(c.EP_FRIEND_DECLINE, c.RequestAction)
    async def friend_decline(q: c.RequestAction) -> c.Done:
        return await write(friends.decline, q)

    @eps.add(c.EP_FRIEND_CANCEL, c.RequestAction)
    async def friend_cancel(q: c.RequestAction) -> c.Done:
        return await write(friends.cancel, q)

    @eps.add(c.EP_FRIEND_REMOVE, c.FriendRemove)
    async def friend_remove(q: c.FriendRemove) -> c.Done:
        return await write(friends.remove, q)

    @eps.add(c.EP_FRIEND_LIST, c.FriendsQuery)
    async def friend_list(q: c.FriendsQuery) -> c.Friends:
        return await read(friends.list_, actor=q.actor)

    # ---- My Page ----

    @eps.add(mp.EP_PERSON_SUMMARY, mp.SummaryQuery)
    async def person_summary(q: mp.SummaryQuery) -> mp.SnsSummary:
        return await read(friends.summary, q=q)

    return eps
