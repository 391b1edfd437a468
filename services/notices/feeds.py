"""Collected feeds (issue 18 point 7): staff register other sites' feeds; each is read at once, then on its schedule
by whichever instance holds its lease; every item is kept once (the unique (feed, key)), sorted by the staff's rules,
and shown as a public notice, or as a calendar entry when it has a start time. A feed that fails is marked broken
with its reason and read again at its next turn; it never holds back the others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notices.feeds_fetch import FeedReader
from services.notices.feeds_models import feed_items, feed_rules, feeds
from services.notices.feeds_parse import SUMMARY_MAX as SUMMARY
from services.notices.feeds_parse import Parsed, categorise, parse
from services.notices.models import bus, notices
from services.notices.models import items as items_table
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware, insert_on_conflict, rowcount
from towntip.kernel.errors import ServiceError
from towntip.kernel.loops import woken_rounds

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)  # longer than a fetch may take (feeds_fetch.TOTAL_SECONDS) and the write after it
RETRY_BROKEN = timedelta(minutes=15)  # a broken feed is tried again after this, or its schedule if that is longer
CONCURRENT = 4  # feeds fetched at once by one instance: a slow site holds only its own slot


def check_staff(actor: Actor | None) -> None:
    if actor is not None and not actor.has("staff", "secretariat"):
        raise f.FEED_STAFF_ONLY("only staff manage collected feeds")


def view(row: Any, items: int = 0) -> f.Feed:
    return f.Feed(
        id=row.id,
        url=row.url,
        title=row.title,
        category=row.category,
        every_minutes=row.every_minutes,
        community_id=row.community_id,
        state=row.state,
        error_code=row.error_code,
        error=row.error,
        items=items,
        last_polled_at=aware(row.last_polled_at),
        last_ok_at=aware(row.last_ok_at),
        next_poll_at=aware(row.next_poll_at),
        created_at=aware(row.created_at),
    )


async def _feed(session: AsyncSession, feed_id: str) -> f.Feed:
    row = (await session.execute(select(feeds).where(feeds.c.id == feed_id))).first()
    if row is None:
        raise f.FEED_NOT_FOUND(f"no feed {feed_id}")
    n = await session.scalar(select(func.count()).select_from(feed_items).where(feed_items.c.feed_id == feed_id))
    return view(row, n or 0)


# ---- endpoints ---------------------------------------------------------------------------------------------------


async def register(
    *,
    sessions: async_sessionmaker[AsyncSession],
    data: f.FeedCreate,
    now: datetime,
    reader: FeedReader,
    owner: str,
    node: str,
) -> f.Feed:
    """Register a feed and read it at once. A URL that is not http(s) or whose host is private is refused and
    nothing is kept; a site that is down, slow or malformed is kept, marked broken, and tried again later."""
    check_staff(data.actor)
    await reader.check(data.url)
    feed_id = new_id()
    async with sessions() as s, s.begin():
        if await s.scalar(select(feeds.c.id).where(feeds.c.url == data.url)) is not None:
            raise f.FEED_DUPLICATE(f"{data.url} is already registered")
        await s.execute(
            insert(feeds).values(
                id=feed_id,
                url=data.url,
                title=data.title,
                category=data.category,
                every_minutes=data.every_minutes,
                community_id=data.community_id,
                state="new",
                next_poll_at=now,
                created_at=now,
                created_by=data.actor.global_handle if data.actor is not None else "operator",
            )
        )
    await poll_one(sessions, feed_id, reader=reader, owner=owner, now=now, node=node)
    async with sessions() as s:
        return await _feed(s, feed_id)


async def poll_now(
    *,
    sessions: async_sessionmaker[AsyncSession],
    data: f.FeedAction,
    now: datetime,
    reader: FeedReader,
    owner: str,
    node: str,
) -> f.Feed:
    check_staff(data.actor)
    async with sessions() as s:
        await _feed(s, data.feed_id)
    await poll_one(sessions, data.feed_id, reader=reader, owner=owner, now=now, node=node, due_only=False)
    async with sessions() as s:
        return await _feed(s, data.feed_id)


async def pause(session: AsyncSession, *, data: f.FeedPause, now: datetime) -> f.Feed:
    check_staff(data.actor)
    await _feed(session, data.feed_id)
    await session.execute(
        update(feeds)
        .where(feeds.c.id == data.feed_id)
        .values(state="paused" if data.paused else "new", next_poll_at=now, error_code=None, error=None)
    )
    return await _feed(session, data.feed_id)


async def list_(session: AsyncSession, *, q: f.FeedListQuery) -> f.FeedList:
    check_staff(q.actor)
    counts: dict[str, int] = dict(
        (await session.execute(select(feed_items.c.feed_id, func.count()).group_by(feed_items.c.feed_id)))
        .tuples()
        .all()
    )
    rows = (await session.execute(select(feeds).order_by(feeds.c.created_at))).all()
    return f.FeedList(feeds=[view(r, counts.get(r.id, 0)) for r in rows])


async def rules_get(session: AsyncSession, *, q: f.RulesQuery) -> f.Rules:
    check_staff(q.actor)
    return f.Rules(rules=[f.Rule(keyword=k, category=c) for k, c in await _rules(session)])


async def rules_put(session: AsyncSession, *, data: f.RulesPut) -> f.Rules:
    """Replace the rules; items already collected keep their category (a rule sorts what arrives after it)."""
    check_staff(data.actor)
    await session.execute(delete(feed_rules))
    if data.rules:
        await session.execute(
            insert(feed_rules),
            [{"position": i, "keyword": r.keyword, "category": r.category} for i, r in enumerate(data.rules)],
        )
    return f.Rules(rules=list(data.rules))


async def _rules(session: AsyncSession) -> list[tuple[str, str]]:
    rows = await session.execute(select(feed_rules.c.keyword, feed_rules.c.category).order_by(feed_rules.c.position))
    return [(k, c) for k, c in rows.tuples()]


def item_view(row: Any) -> f.Item:
    return f.Item(
        id=row.id,
        feed_id=row.feed_id,
        source=row.source,
        title=row.title,
        link=row.link,
        summary=row.summary,
        category=row.category,
        kind=row.kind,
        published_at=aware(row.published_at),
        starts_at=aware(row.starts_at),
        ends_at=aware(row.ends_at),
        all_day=bool(row.all_day),
        location=row.location,
        community_id=row.community_id,
        first_seen_at=aware(row.first_seen_at),
        updated_at=aware(row.updated_at),
    )


def _items_select() -> Any:
    return (
        select(feed_items, feeds.c.title.label("source"), feeds.c.community_id)
        .join(feeds, feeds.c.id == feed_items.c.feed_id)
        .where(feeds.c.state != "paused")
    )


async def items(session: AsyncSession, *, q: f.ItemsQuery) -> f.ItemList:
    """The public collected items, newest first (by the site's date, else when the node first saw them)."""
    stmt = _items_select()
    if q.kind is not None:
        stmt = stmt.where(feed_items.c.kind == q.kind)
    if q.category is not None:
        stmt = stmt.where(feed_items.c.category == q.category)
    newest = func.coalesce(feed_items.c.published_at, feed_items.c.first_seen_at)
    rows = (await session.execute(stmt.order_by(newest.desc(), feed_items.c.id.desc()).limit(q.limit))).all()
    return f.ItemList(items=[item_view(r) for r in rows])


async def public(session: AsyncSession, *, q: f.PublicQuery) -> f.PublicNotices:
    """The node's public notices for its Atom feed: what staff sent to everyone (not withdrawn) and the collected
    notices, merged newest first."""
    n, it = notices.c, items_table.c
    own_rows = (
        await session.execute(
            select(it.id, it.title, it.body, it.category, n.sent_at, it.updated_at)
            .join(notices, notices.c.id == items_table.c.id)
            .where(n.target_kind == "everyone", n.state == "sent", it.withdrawn_at.is_(None))
            .order_by(n.sent_at.desc())
            .limit(q.limit)
        )
    ).all()
    out = [
        f.PublicNotice(
            id=r.id,
            title=r.title,
            summary=r.body[:SUMMARY],
            link=None,
            category=r.category,
            source="",
            published_at=aware(r.sent_at),
            updated_at=aware(r.updated_at),
        )
        for r in own_rows
        if r.sent_at is not None
    ]
    for c in (await items(session, q=f.ItemsQuery(kind="notice", limit=q.limit))).items:
        out.append(
            f.PublicNotice(
                id=c.id,
                title=c.title,
                summary=c.summary,
                link=c.link,
                category=c.category,
                source=c.source,
                published_at=c.published_at or c.first_seen_at,
                updated_at=c.updated_at,
            )
        )
    out.sort(key=lambda x: x.published_at, reverse=True)
    return f.PublicNotices(notices=out[: q.limit])


async def calendar(session: AsyncSession, *, q: f.CalendarQuery) -> f.CalendarEntries:
    """Collected items with a start time that overlap the days asked (a community's: its feeds' items only)."""
    start = datetime(q.start.year, q.start.month, q.start.day, tzinfo=JST)
    end = start + timedelta(days=q.days)
    stmt = _items_select().where(
        feed_items.c.starts_at.is_not(None),
        feed_items.c.starts_at < end,
        func.coalesce(feed_items.c.ends_at, feed_items.c.starts_at) >= start,
    )
    if q.community_id is not None:
        stmt = stmt.where(feeds.c.community_id == q.community_id)
    rows = (await session.execute(stmt.order_by(feed_items.c.starts_at, feed_items.c.id).limit(2000))).all()
    dated: list[f.CalendarNotice] = []
    if q.community_id is None:  # the node's own notices to everyone, sent and not withdrawn, by their validity
        n, it = notices.c, items_table.c
        found = await session.execute(
            select(it.id, it.title, it.sender, it.valid_from, it.valid_until)
            .join(notices, n.id == it.id)
            .where(n.target_kind == "everyone", n.state == "sent", it.withdrawn_at.is_(None),
                   it.valid_from.is_not(None), it.valid_from < end,
                   func.coalesce(it.valid_until, it.valid_from) >= start)
            .order_by(it.valid_from, it.id).limit(500))
        dated = [f.CalendarNotice(id=r.id, title=r.title, sender=r.sender, starts_at=aware(r.valid_from),
                                  ends_at=aware(r.valid_until)) for r in found]
    return f.CalendarEntries(start=q.start, days=q.days, items=[item_view(r) for r in rows], notices=dated)


# ---- polling -----------------------------------------------------------------------------------------------------


async def claim(session: AsyncSession, feed_id: str, *, owner: str, now: datetime, due_only: bool = True) -> Any:
    """Take the feed's lease if nobody holds it (and, `due_only`, if its turn has come): the row, or None."""
    free = or_(feeds.c.leased_until.is_(None), feeds.c.leased_until < now)
    cond = and_(feeds.c.id == feed_id, free, feeds.c.state != "paused")
    if due_only:
        cond = and_(cond, feeds.c.next_poll_at <= now)
    taken = await session.execute(update(feeds).where(cond).values(leased_until=now + LEASE, lease_owner=owner))
    if rowcount(taken) != 1:
        return None
    return (await session.execute(select(feeds).where(feeds.c.id == feed_id))).first()


async def poll_one(
    sessions: async_sessionmaker[AsyncSession],
    feed_id: str,
    *,
    reader: FeedReader,
    owner: str,
    now: datetime,
    node: str,
    due_only: bool = True,
) -> int | None:
    """Read one feed if this instance gets its lease: the items new or changed, or None (not taken, or broken)."""
    async with sessions() as s, s.begin():
        row = await claim(s, feed_id, owner=owner, now=now, due_only=due_only)
    if row is None:
        return None
    try:
        got = await reader.fetch(row.url, etag=row.etag, last_modified=row.last_modified)
        parsed = parse(got.body, got.content_type) if got.status == 200 else []
    except ServiceError as exc:
        log.info("feed %s (%s) is broken: %s %s", row.id, row.url, exc.error_code, exc.reason)
        await _done(sessions, row, now, owner, error=exc)
        return None
    async with sessions() as s, s.begin():
        stored = await store(s, row, parsed, now=now, node=node) if parsed else 0
        await _finish(s, row, now, owner, etag=got.etag, last_modified=got.last_modified)
    return stored


async def _done(
    sessions: async_sessionmaker[AsyncSession], row: Any, now: datetime, owner: str, *, error: ServiceError
) -> None:
    async with sessions() as s, s.begin():
        await s.execute(
            update(feeds)
            .where(feeds.c.id == row.id, feeds.c.lease_owner == owner)
            .values(
                state="broken",
                error_code=error.error_code,
                error=error.reason[:300],
                last_polled_at=now,
                next_poll_at=now + max(RETRY_BROKEN, timedelta(minutes=row.every_minutes)),
                leased_until=None,
                lease_owner=None,
            )
        )


async def _finish(
    s: AsyncSession, row: Any, now: datetime, owner: str, *, etag: str | None, last_modified: str | None
) -> None:
    await s.execute(
        update(feeds)
        .where(feeds.c.id == row.id, feeds.c.lease_owner == owner)
        .values(
            state="ok",
            error_code=None,
            error=None,
            last_polled_at=now,
            last_ok_at=now,
            next_poll_at=now + timedelta(minutes=row.every_minutes),
            etag=(etag or "")[:300] or None,
            last_modified=(last_modified or "")[:100] or None,
            leased_until=None,
            lease_owner=None,
        )
    )


async def store(s: AsyncSession, feed: Any, parsed: list[Parsed], *, now: datetime, node: str) -> int:
    """Insert the items not seen before and update those the site changed; an item seen again unchanged is left
    alone (its row, id and first-seen time stay). A new item is announced (FeedItemCollected) in the same
    transaction, once: a second writer of the same item updates, or leaves, the row the first inserted. Answers how
    many rows were written."""
    rules = await _rules(s)
    written = 0
    for p in {p.key_hash: p for p in parsed}.values():  # a site listing one item twice: the last one
        values = {
            "title": p.title,
            "link": p.link,
            "summary": p.summary,
            "category": categorise(p, rules, feed.category),
            "kind": "event" if p.starts_at else "notice",
            "published_at": p.published_at,
            "starts_at": p.starts_at,
            "ends_at": p.ends_at,
            "all_day": p.all_day,
            "location": p.location,
        }
        item_id = new_id()
        stmt = insert_on_conflict(s, feed_items).values(
            id=item_id, feed_id=feed.id, key_hash=p.key_hash, first_seen_at=now, updated_at=now, **values
        )
        changed = or_(
            *(
                feed_items.c[k].is_distinct_from(stmt.excluded[k])
                for k in ("title", "link", "summary", "starts_at", "ends_at", "location")
            )
        )
        result = await s.execute(
            stmt.on_conflict_do_update(
                index_elements=["feed_id", "key_hash"],
                where=changed,
                set_={**{k: stmt.excluded[k] for k in values if k != "category"}, "updated_at": now},
            ).returning(feed_items.c.id)
        )
        row_id = result.scalar()
        if row_id is None:
            continue
        written += 1
        if row_id == item_id:  # inserted, not updated: the id is the one made here
            event = f.FeedItemCollected(
                item_id=item_id,
                feed_id=feed.id,
                source=feed.title,
                community_id=feed.community_id,
                title=p.title,
                link=p.link,
                category=values["category"],
                kind=values["kind"],
                starts_at=p.starts_at,
                ends_at=p.ends_at,
                at=now,
            )
            await announce(s, bus, event, node=node)
    return written


async def due(sessions: async_sessionmaker[AsyncSession], *, now: datetime, limit: int = 50) -> list[str]:
    async with sessions() as s:
        rows = await s.execute(
            select(feeds.c.id)
            .where(
                feeds.c.next_poll_at <= now,
                feeds.c.state != "paused",
                or_(feeds.c.leased_until.is_(None), feeds.c.leased_until < now),
            )
            .order_by(feeds.c.next_poll_at)
            .limit(limit)
        )
        return list(rows.scalars())


async def poll_round(
    sessions: async_sessionmaker[AsyncSession], *, reader: FeedReader, owner: str, now: datetime, node: str
) -> bool:
    """Read every feed whose turn has come, CONCURRENT at a time; True when more may be waiting."""
    ids = await due(sessions, now=now)
    gate = asyncio.Semaphore(CONCURRENT)

    async def one(feed_id: str) -> None:
        async with gate:
            try:
                await poll_one(sessions, feed_id, reader=reader, owner=owner, now=now, node=node)
            except Exception:  # one feed's failure (a database hiccup) is retried when its lease runs out
                log.exception("polling feed %s failed", feed_id)

    await asyncio.gather(*(one(i) for i in ids))
    return len(ids) == 50


async def run_poller(
    sessions: async_sessionmaker[AsyncSession],
    *,
    reader: FeedReader,
    owner: str,
    node: str,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    every: float = 30.0,
    wake: Callable[[], None] = lambda: None,
) -> None:
    """The instance's polling loop (a round when feeds are due, else every `every` seconds); `wake` after each
    round (the outbox relay: new items' events)."""

    async def round_() -> bool:
        more = await poll_round(sessions, reader=reader, owner=owner, now=clock(), node=node)
        wake()
        return more

    await woken_rounds("notices-feeds", round_, wake=asyncio.Event(), stop=stop, poll_interval=every)
