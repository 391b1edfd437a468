"""What waits for a community's leader (リーダーの用事): in each open community the person leads, the members who
joined, and the posts and comments others wrote, within the last LEADER_WINDOW_DAYS (hidden ones and the leader's
own left out). Counts only: the texts stay on the community's pages, where the leader reads and hides them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns.models import comments, communities, memberships, posts
from towntip.kernel.contracts import sns as c


async def todo(session: AsyncSession, *, q: c.LeaderTodoQuery, now: datetime) -> c.LeaderTodo:
    me = q.actor.global_handle
    since = now - timedelta(days=c.LEADER_WINDOW_DAYS)
    led = (await session.execute(
        select(communities.c.id, communities.c.name, communities.c.categories, communities.c.members)
        .select_from(memberships.join(communities, communities.c.id == memberships.c.community_id))
        .where(memberships.c.global_handle == me, memberships.c.role == "leader",
               communities.c.status == "open"))).all()
    if not led:
        return c.LeaderTodo(since=since, communities=[])
    ids = [r.id for r in led]
    joined: dict[str, int] = dict((await session.execute(
        select(memberships.c.community_id, func.count())
        .where(memberships.c.community_id.in_(ids), memberships.c.joined_at >= since,
               memberships.c.global_handle != me)
        .group_by(memberships.c.community_id))).tuples().all())
    posted: dict[str, int] = dict((await session.execute(
        select(posts.c.community_id, func.count())
        .where(posts.c.community_id.in_(ids), posts.c.created_at >= since, posts.c.hidden_at.is_(None),
               posts.c.author.is_distinct_from(me))
        .group_by(posts.c.community_id))).tuples().all())
    commented: dict[str, int] = dict((await session.execute(
        select(posts.c.community_id, func.count())
        .select_from(comments.join(posts, posts.c.id == comments.c.post_id))
        .where(posts.c.community_id.in_(ids), comments.c.created_at >= since, comments.c.hidden_at.is_(None),
               comments.c.author.is_distinct_from(me))
        .group_by(posts.c.community_id))).tuples().all())
    out = [c.LeaderCommunity(community_id=r.id, name=r.name, categories=list(r.categories or []), members=r.members,
                             new_members=joined.get(r.id, 0), new_posts=posted.get(r.id, 0),
                             new_comments=commented.get(r.id, 0)) for r in led]
    out.sort(key=lambda x: (not (x.new_members or x.new_posts or x.new_comments), x.name))
    return c.LeaderTodo(since=since, communities=out)
