"""Blogs (issue 20 point 2): a person's own entries outside communities — activity reports, impressions of an event —
with up to four pictures, comments and 共感, seen by everyone, the author's friends or one community's members, as
the author chose. No NATS and no commits here.

Security and privacy:
- Who: anyone signed in writes an entry (not while staff suspend them, not from a peer node this node blocks: the
  checks posts use, services/sns/moderation.py); a community entry only by a member of that open community. Only the
  author adds pictures to an entry or deletes it; a comment is deleted by its author or the entry's author.
- Reading is decided here on every read (blog_access.py): the list, one entry, its pictures, its comments, 共感. An
  entry a person may not see answers "not found", as one that does not exist, so ids cannot be probed. Staff hide an
  entry or comment through moderation; hidden, it is shown to its author only.
- Across nodes: people of other nodes logged in here by cross-node SSO write like this node's people; entries stay
  on this node (no federation of blogs).
- Pictures: the gateway prepares them with Pillow (towntip/kernel/images.py: checked by content, pixel limit, EXIF
  and GPS and every other metadata dropped, resized), and this service checks them again (`check_prepared`: a JPEG or
  PNG within the sizes, no metadata left) before it keeps them. An attacker's file that is no picture, too big or a
  decompression bomb is refused before anything is stored.
- Kept: the title and text, the audience, the pictures (pixels only, no metadata) with their alt text, comments and
  共感, each with the author's handle, until the author deletes them: deleting an entry deletes its pictures, its
  comments and their 共感 at once. Reports about an entry stay with the staff's decisions (services/sns/moderation.py).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import blog_access as ba
from services.sns import communities as cm
from services.sns import likes as lk
from services.sns import moderation
from services.sns.models import blog_comments, blog_entries, blog_pictures, communities
from towntip.kernel import images
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware
from towntip.kernel.errors import ServiceError

PICTURE_COLUMNS = [col for col in blog_pictures.c if col.name not in ("image", "thumb", "author", "created_at")]
Likes = tuple[dict[int, int], set[int]]


async def _throttle(session: AsyncSession, handle: str, now: datetime) -> None:
    since = now - timedelta(minutes=1)
    n = 0
    for table in (blog_entries, blog_comments):
        n += (await session.execute(select(func.count()).select_from(table)
                                    .where(table.c.author == handle, table.c.created_at > since))).scalar_one()
    if n >= c.WRITES_PER_MINUTE:
        raise c.POST_WRITE_LIMIT(f"at most {c.WRITES_PER_MINUTE} blog entries and comments a minute: wait a moment / "
                                 "投稿が多すぎます。少し待ってから書き込んでください")


def _hidden(row: Any, staff: set[int]) -> c.Hidden | None:
    return (c.Hidden(at=aware(row.hidden_at), reason=row.hidden_reason or "", by_staff=row.id in staff)
            if row.hidden_at else None)


async def _pictures(session: AsyncSession, entry_ids: list[int]) -> dict[int, list[c.BlogPicture]]:
    out: dict[int, list[c.BlogPicture]] = {}
    if not entry_ids:
        return out
    rows = await session.execute(select(*PICTURE_COLUMNS).where(blog_pictures.c.entry_id.in_(entry_ids))
                                 .order_by(blog_pictures.c.entry_id, blog_pictures.c.position))
    for r in rows:
        out.setdefault(r.entry_id, []).append(c.BlogPicture(
            id=r.id, entry_id=r.entry_id, position=r.position, alt=r.alt, content_type=r.content_type,
            width=r.width, height=r.height))
    return out


async def _entries(session: AsyncSession, rows: list[Any], actor: Actor | None) -> list[c.BlogEntry]:
    ids = [r.id for r in rows]
    names = await cm.names_of(session, {r.author for r in rows if r.author})
    pictures = await _pictures(session, ids)
    n_comments: dict[int, int] = {}
    community_names: dict[str, str] = {}
    if ids:
        n_comments = dict((await session.execute(
            select(blog_comments.c.entry_id, func.count()).where(blog_comments.c.entry_id.in_(ids))
            .group_by(blog_comments.c.entry_id))).all())
        cids = {r.community_id for r in rows if r.community_id}
        if cids:
            community_names = dict((await session.execute(
                select(communities.c.id, communities.c.name).where(communities.c.id.in_(sorted(cids))))).all())
    liked = await lk.counts(session, "blog", ids, actor)
    staff = await moderation.staff_hidden(session, "blog", rows)
    me = actor.global_handle if actor else None
    return [c.BlogEntry(id=r.id, author=cm.person_of(r.author, names), title=r.title, body=r.body,
                        audience=r.audience, community=r.community_id,
                        community_name=community_names.get(r.community_id) if r.community_id else None,
                        created_at=aware(r.created_at), hidden=_hidden(r, staff), pictures=pictures.get(r.id, []),
                        comments=n_comments.get(r.id, 0), mine=me is not None and r.author == me,
                        likes=liked[0].get(r.id, 0), liked=r.id in liked[1]) for r in rows]


async def create(session: AsyncSession, *, data: c.BlogCreate, now: datetime) -> c.BlogEntry:
    me = data.actor.global_handle
    await moderation.check_may_write(session, data.actor, now)
    if (data.audience == "community") != (data.community_id is not None):
        raise c.BLOG_AUDIENCE("choose the community for a community entry, and only then / "
                              "コミュニティ向けのときだけコミュニティを選んでください")
    if data.community_id is not None:
        cm.must_be_open(await cm.locked(session, data.community_id))
        if await cm.role_of(session, data.community_id, me) is None:
            raise c.BLOG_NOT_MEMBER("only its members write for a community / "
                                    "コミュニティ向けに書けるのはメンバーだけです")
    await _throttle(session, me, now)
    entry_id = (await session.execute(insert(blog_entries).values(
        author=me, title=data.title, body=data.body, audience=data.audience, community_id=data.community_id,
        created_at=now).returning(blog_entries.c.id))).scalar_one()
    row = (await session.execute(select(blog_entries).where(blog_entries.c.id == entry_id))).one()
    return (await _entries(session, [row], data.actor))[0]


def _picture(text: str, *, max_bytes: int, max_side: int) -> images.Picture:
    try:
        return images.check_prepared(base64.b64decode(text, validate=True), max_bytes=max_bytes, max_side=max_side)
    except (binascii.Error, ValueError) as exc:
        raise c.BLOG_BAD_PICTURE("the picture is not valid base64 / 画像を読み取れません") from exc
    except ServiceError as exc:
        raise c.BLOG_BAD_PICTURE(exc.reason) from None


async def add_picture(session: AsyncSession, *, data: c.BlogPictureAdd, now: datetime) -> c.BlogPicture:
    row = await ba.entry(session, data.entry_id, data.actor)
    if row.author != data.actor.global_handle:
        raise c.BLOG_NOT_AUTHOR("only the entry's author adds pictures / 写真を追加できるのは書いた本人だけです")
    if row.hidden_at is not None:
        raise c.BLOG_HIDDEN("staff hid this entry / 職員により非表示になったブログです")
    full = _picture(data.image, max_bytes=c.BLOG_FULL_BYTES, max_side=c.BLOG_FULL_SIDE)
    thumb = _picture(data.thumb, max_bytes=c.BLOG_THUMB_BYTES, max_side=c.BLOG_THUMB_SIDE)
    p = blog_pictures.c
    count, last = (await session.execute(select(func.count(), func.max(p.position))
                                         .where(p.entry_id == row.id))).one()
    if count >= c.BLOG_PICTURES_MAX:
        raise c.BLOG_TOO_MANY_PICTURES(
            f"at most {c.BLOG_PICTURES_MAX} pictures / 写真は{c.BLOG_PICTURES_MAX}枚までです")
    pid = uuid.uuid4().hex
    await session.execute(blog_pictures.insert().values(
        id=pid, entry_id=row.id, author=row.author, position=(last or 0) + 1, alt=data.alt,
        content_type=full.content_type, width=full.width, height=full.height, image=full.data, thumb=thumb.data,
        created_at=now))
    return (await _pictures(session, [row.id]))[row.id][-1]


async def list_(session: AsyncSession, *, q: c.BlogListQuery) -> c.BlogList:
    """What the actor may see, newest first, `limit` at a time (`next`: the id to go below)."""
    stmt = select(blog_entries).where(ba.visible_clause(q.actor))
    if q.author is not None:
        stmt = stmt.where(blog_entries.c.author == q.author)
    if q.before is not None:
        stmt = stmt.where(blog_entries.c.id < q.before)
    rows = list((await session.execute(stmt.order_by(blog_entries.c.id.desc()).limit(q.limit + 1))).all())
    more, rows = len(rows) > q.limit, rows[:q.limit]
    return c.BlogList(entries=await _entries(session, rows, q.actor), next=rows[-1].id if more else None)


def _comment(row: Any, names: dict[str, str], actor: Actor | None, liked: Likes, staff: set[int]) -> c.BlogComment:
    mine = actor is not None and row.author == actor.global_handle
    return c.BlogComment(id=row.id, entry_id=row.entry_id, author=cm.person_of(row.author, names),
                         body=row.body if mine or row.hidden_at is None else "", created_at=aware(row.created_at),
                         hidden=_hidden(row, staff), mine=mine, likes=liked[0].get(row.id, 0),
                         liked=row.id in liked[1])


async def get(session: AsyncSession, *, q: c.BlogQuery) -> c.BlogDetail:
    """The entry (if the actor may see it) and one page of its comments, newest first."""
    row = await ba.entry(session, q.entry_id, q.actor)
    stmt = select(blog_comments).where(blog_comments.c.entry_id == row.id)
    if q.comments_before is not None:
        stmt = stmt.where(blog_comments.c.id < q.comments_before)
    found = list((await session.execute(stmt.order_by(blog_comments.c.id.desc()).limit(q.comments_limit + 1))).all())
    more, found = len(found) > q.comments_limit, found[:q.comments_limit]
    names = await cm.names_of(session, {r.author for r in found if r.author})
    liked = await lk.counts(session, "bcomment", [r.id for r in found], q.actor)
    staff = await moderation.staff_hidden(session, "bcomment", found)
    return c.BlogDetail(entry=(await _entries(session, [row], q.actor))[0],
                        comments=[_comment(r, names, q.actor, liked, staff) for r in found],
                        next_comments=found[-1].id if more else None)


async def picture(session: AsyncSession, *, q: c.BlogPictureQuery) -> c.BlogPictureData:
    """One picture, to whoever may see its entry (BLOG_NOT_FOUND otherwise, as for no picture)."""
    p = blog_pictures.c
    column = p.image if q.size == "full" else p.thumb
    row = (await session.execute(select(column.label("data"), p.content_type, p.entry_id)
                                 .where(p.id == q.picture_id))).first()
    if row is None:
        raise c.BLOG_NOT_FOUND(f"no picture {q.picture_id} / 写真が見つかりません")
    entry = await ba.entry(session, row.entry_id, q.actor)
    thumb_type = "image/png" if row.data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return c.BlogPictureData(content_type=row.content_type if q.size == "full" else thumb_type,
                             data=base64.b64encode(row.data).decode(),
                             public=entry.audience == "public" and entry.hidden_at is None)


async def delete_entry(session: AsyncSession, *, data: c.ItemRef) -> c.Done:
    """The author deletes the entry: its pictures, comments and 共感 go with it, at once."""
    row = await ba.entry(session, data.id, data.actor)
    if row.author != data.actor.global_handle:
        raise c.BLOG_NOT_AUTHOR("only its author deletes an entry / ブログを削除できるのは書いた本人だけです")
    gone = list((await session.execute(select(blog_comments.c.id).where(blog_comments.c.entry_id == row.id)))
                .scalars())
    await lk.drop_items(session, "bcomment", gone)
    await lk.drop_items(session, "blog", [row.id])
    await session.execute(delete(blog_comments).where(blog_comments.c.entry_id == row.id))
    await session.execute(delete(blog_pictures).where(blog_pictures.c.entry_id == row.id))
    await session.execute(delete(blog_entries).where(blog_entries.c.id == row.id))
    return c.Done()


async def create_comment(session: AsyncSession, *, data: c.BlogCommentCreate, now: datetime) -> c.BlogComment:
    row = await ba.entry(session, data.entry_id, data.actor)
    await moderation.check_may_write(session, data.actor, now)
    if row.hidden_at is not None:
        raise c.BLOG_HIDDEN("staff hid this entry: no new comments / 非表示のブログにはコメントできません")
    await _throttle(session, data.actor.global_handle, now)
    cid = (await session.execute(insert(blog_comments).values(
        entry_id=row.id, author=data.actor.global_handle, body=data.body, created_at=now,
    ).returning(blog_comments.c.id))).scalar_one()
    made = (await session.execute(select(blog_comments).where(blog_comments.c.id == cid))).one()
    names = await cm.names_of(session, {data.actor.global_handle})
    return _comment(made, names, data.actor, ({}, set()), set())


async def delete_comment(session: AsyncSession, *, data: c.ItemRef) -> c.Done:
    row, entry = await ba.comment(session, data.id, data.actor)
    if data.actor.global_handle not in (row.author, entry.author):
        raise c.BLOG_NOT_AUTHOR("only its author or the entry's author deletes a comment / "
                                "コメントを削除できるのは書いた本人かブログの筆者だけです")
    await lk.drop_items(session, "bcomment", [row.id])
    await session.execute(delete(blog_comments).where(blog_comments.c.id == row.id))
    return c.Done()
