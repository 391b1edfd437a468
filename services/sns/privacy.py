"""A person's data in the sns service (issue 20 point 7): what it keeps about them, exported on request and erased
when their account is deleted.

`KEPT` lists every table and column that names a person; the export answers the rows that name them
(`person.export`, role GATEWAY: only the node's gateway asks, for the signed-in person it vouches for), and
`forget` erases them when UserDeleted arrives (this node's own, and a peer's for its own people: services/sns/
people.py decodes and refuses a UserDeleted naming someone of another home node, 403, nothing changed). The person
chose on the delete page what happens to their posts and comments: "anonymise" keeps them, by nobody
(退会したユーザー); "remove" deletes them with their comments and 共感.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import people as people_domain
from services.sns.models import (
    applications,
    blocked_nodes,
    blog_comments,
    blog_entries,
    blog_pictures,
    bus,
    comments,
    conversation_members,
    friend_requests,
    friendships,
    likes,
    memberships,
    message_peers,
    messages,
    moderation_actions,
    openings,
    people,
    person_skills,
    posts,
    reports,
    request_log,
)
from towntip.kernel import privacy
from towntip.kernel.contracts import privacy as pc
from towntip.kernel.contracts.sns import SERVICE
from towntip.kernel.privacy import Kept

# Every table and column that names a person. Erasure below runs after people.forget (which ends memberships,
# friendships, messages and likes given); what is left is made anonymous here.
KEPT = (
    Kept(people, "global_handle", about="SNSでのあなた(表示名) / you as the SNS knows you"),
    Kept(memberships, "global_handle", about="参加しているコミュニティ / communities you joined"),
    Kept(posts, "author", erase="null", about="投稿 / your posts"),
    Kept(posts, "hidden_by", erase="null"),
    Kept(comments, "author", erase="null", about="コメント / your comments"),
    Kept(comments, "hidden_by", erase="null"),
    Kept(likes, "giver", about="共感したもの / what you liked"),
    Kept(likes, "recipient", erase="null"),
    Kept(friendships, "a", about="友達 / friends"),
    Kept(friendships, "b"),
    Kept(friend_requests, "sender", about="友達申請 / friend requests"),
    Kept(friend_requests, "addressee"),
    Kept(request_log, "sender", about="友達申請の記録 / when you sent friend requests"),
    Kept(conversation_members, "global_handle", about="メッセージの相手 / your conversations"),
    Kept(messages, "sender", about="送ったメッセージ / messages you sent"),
    Kept(message_peers, "owner", about="ブロック・ミュート / blocks and mutes"),
    Kept(message_peers, "peer"),
    Kept(reports, "reporter", erase="null", clear=("detail",), about="通報 / reports"),
    Kept(reports, "author", erase="null"),
    Kept(reports, "target", erase="anonymise"),
    Kept(reports, "decided_by", erase="null"),
    Kept(moderation_actions, "person", about="あなたへの対応 / moderation about you"),
    Kept(moderation_actions, "by", erase="anonymise"),
    Kept(moderation_actions, "appeal_decided_by", erase="null"),
    Kept(blocked_nodes, "by", erase="anonymise"),
    Kept(blog_entries, "author", erase="null", about="ブログ / your blog entries"),
    Kept(blog_entries, "hidden_by", erase="null"),
    Kept(blog_pictures, "author", erase="null", about="ブログの写真 / your blog pictures"),
    Kept(blog_comments, "author", erase="null", about="ブログへのコメント / your blog comments"),
    Kept(blog_comments, "hidden_by", erase="null"),
    Kept(openings, "organiser", erase="null", about="募集した活動 / openings you organised"),
    Kept(applications, "applicant", erase="anonymise", clear=("message",), about="応募 / your applications"),
    Kept(applications, "decided_by", erase="null"),
    Kept(person_skills, "global_handle", about="あなたのスキル / your skills"),
)


async def export(session: AsyncSession, *, data: pc.ExportQuery) -> pc.PersonData:
    person = privacy.Person(data.global_handle, data.user_id)
    return pc.PersonData(service=SERVICE, tables=await privacy.export(session, KEPT, person),
                         about=privacy.about(KEPT))


async def remove_writing(session: AsyncSession, handle: str) -> None:
    """The person chose "remove": their posts go (with everyone's comments and 共感 on them), and their comments."""
    own_posts = select(posts.c.id).where(posts.c.author == handle)
    gone_comments = select(comments.c.id).where(or_(comments.c.author == handle, comments.c.post_id.in_(own_posts)))
    await session.execute(delete(likes).where(or_(
        (likes.c.kind == "post") & likes.c.item_id.in_(own_posts),
        (likes.c.kind == "comment") & likes.c.item_id.in_(gone_comments))))
    await session.execute(delete(comments).where(or_(comments.c.author == handle,
                                                     comments.c.post_id.in_(own_posts))))
    await session.execute(delete(posts).where(posts.c.author == handle))
    # their blog entries go with their pictures and everyone's comments on them, and their comments elsewhere
    own_entries = select(blog_entries.c.id).where(blog_entries.c.author == handle)
    await session.execute(delete(blog_comments).where(or_(blog_comments.c.author == handle,
                                                          blog_comments.c.entry_id.in_(own_entries))))
    await session.execute(delete(blog_pictures).where(blog_pictures.c.entry_id.in_(own_entries)))
    await session.execute(delete(blog_entries).where(blog_entries.c.author == handle))


async def forget(session: AsyncSession, erasure: privacy.Erasure) -> None:
    """Everything of the person here, in the consumer's transaction."""
    handle = erasure.person.global_handle
    if erasure.content == "remove":
        await remove_writing(session, handle)
    await people_domain.forget(session, node=erasure.node, handle=handle, now=erasure.at)
    await privacy.erase(session, KEPT, erasure.person, alias=erasure.alias)
    await privacy.scrub_outbox(session, bus.outbox, erasure.person)
