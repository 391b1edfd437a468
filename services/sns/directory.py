"""The directory of communities across towns (issue 20, point 6). No NATS and no commits here.

- **Listing.** `touch` compares one community with what this node last announced of it (`dir_announced`) and
  announces, on EVT_<NODE>_SNSFED through the outbox in the same transaction as the change, CommunityListed for an
  open community not yet listed, CommunityUpdated when what peers show of it changed (name, description,
  categories, member count rounded down to ten: most joins change nothing), and CommunityUnlisted once it is
  closed. `communities` calls it on open, join, leave, removal and close. `sync` does the same for every
  community: at every start (which lists the communities that existed before this feature, once: it is
  idempotent, a second run announces nothing) and on a timer (a community closed because its last member's
  account was deleted; CommunityListed again after REFRESH_DAYS, as the streams keep 30 days, so that a town
  that joins later still hears of every open community).
- **What is told.** Only what a community's public page shows already, and no person: no leader, no member name,
  the member count rounded down to MEMBERS_STEP. The page's URL on this node's portal goes with it.
- **Applying.** `PeerDirectoryHandler` keeps other towns' listings (`dir_entries`), once (the kernel's inbox keys
  each event by `<peer>:<event id>`). A node speaks only for itself: an event of X on another node's subject, or
  about another node's community (`origin_node`), is dead-lettered (403) and changes nothing. Categories this
  version does not know are dropped; the text is bounded as a local community's.
- **Links.** The directory links to `<the town's public URL><PAGE_PATH>`, the public URL the trust anchor vouches for
  (`dir_towns`, refreshed by services/sns/directory_link.py), never a URL a peer's event carries: a town cannot
  send residents elsewhere. Towns no longer listed by the anchor, and listings not heard of for STALE_DAYS, are not
  shown. Joining happens at that node: the person signs in there with their home ID (federated login) and is an
  Actor `name@home` whom `communities.join` takes like a local resident.
- **Personal data:** none is kept here (communities' public names and descriptions only).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns.directory_models import dir_announced, dir_entries, dir_entry_categories, dir_towns
from services.sns.models import bus, communities
from towntip.kernel import categories
from towntip.kernel.bus.consumer import Delivery, Outcome, Rejected, peer_event
from towntip.kernel.bus.envelope import event_token, utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts import sns_directory as d
from towntip.kernel.db import aware

log = logging.getLogger(__name__)


# ---- the member towns ---------------------------------------------------------------------------------------------


async def record_towns(session: AsyncSession, found: dict[str, str], now: datetime) -> None:
    """The other member towns as the trust anchor lists them now ({node: public URL}); a town no longer listed is
    dropped (its communities are no longer shown; they come back with it)."""
    await session.execute(delete(dir_towns).where(dir_towns.c.node.not_in(list(found) or [""])))
    for node, url in found.items():
        if not url.startswith(("https://", "http://")):  # the directory links there: a web address only
            log.warning("member town %s has no web address (%r): its communities are not shown", node, url)
            continue
        values = {"public_url": url.rstrip("/")[:300], "checked_at": now}
        if (await session.execute(select(dir_towns.c.node).where(dir_towns.c.node == node))).first():
            await session.execute(update(dir_towns).where(dir_towns.c.node == node).values(**values))
        else:
            await session.execute(insert(dir_towns).values(node=node, **values))


async def towns(session: AsyncSession) -> dict[str, str]:
    return {r.node: r.public_url for r in await session.execute(select(dir_towns))}


def page_url(public_url: str, community_id: str) -> str:
    return public_url.rstrip("/") + d.PAGE_PATH.format(community_id=quote(community_id, safe=""))


# ---- listing this node's communities ------------------------------------------------------------------------------


def _shown(row: Any) -> dict[str, Any]:
    return {"name": row.name, "description": row.description, "categories": list(row.categories),
            "members": d.rounded(row.members)}


def fingerprint(shown: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(shown, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def _compare(session: AsyncSession, row: Any, before: Any, *, node: str, public_url: str, now: datetime,
                   refresh_before: datetime) -> int:
    """Announce what changed of one community since it was last announced (0 or 1 event)."""
    if row.status != "open":
        if before is None or not before.fingerprint:
            return 0
        await announce(session, bus, d.CommunityUnlisted(community_id=row.id, origin_node=node, at=now),
                       node=node, at=now)
        await session.execute(update(dir_announced).where(dir_announced.c.community_id == row.id)
                              .values(fingerprint="", announced_at=now))
        return 1
    shown = _shown(row)
    mark = fingerprint(shown)
    if before is not None and before.fingerprint == mark and aware(before.announced_at) > refresh_before:
        return 0
    changed = before is not None and bool(before.fingerprint) and before.fingerprint != mark
    model = d.CommunityUpdated if changed else d.CommunityListed
    await announce(session, bus, model(community_id=row.id, origin_node=node, url=page_url(public_url, row.id),
                                       at=now, **shown), node=node, at=now)
    if before is None:
        await session.execute(insert(dir_announced).values(community_id=row.id, fingerprint=mark, announced_at=now))
    else:
        await session.execute(update(dir_announced).where(dir_announced.c.community_id == row.id)
                              .values(fingerprint=mark, announced_at=now))
    return 1


async def touch(session: AsyncSession, *, node: str, public_url: str, community_id: str, now: datetime) -> int:
    """One community changed (opened, joined, left, closed): announce what peers should now show of it, in the
    same transaction as the change (the outbox). Nothing when what they show did not change."""
    row = (await session.execute(select(communities).where(communities.c.id == community_id))).first()
    if row is None:
        return 0
    before = (await session.execute(select(dir_announced).where(
        dir_announced.c.community_id == community_id))).first()
    return await _compare(session, row, before, node=node, public_url=public_url, now=now,
                          refresh_before=now - timedelta(days=d.REFRESH_DAYS))


async def sync(session: AsyncSession, *, node: str, public_url: str, now: datetime) -> int:
    """Announce what changed in this node's communities since they were last announced; returns the events
    announced (0 when nothing changed: running it twice announces nothing the second time)."""
    told = {r.community_id: r for r in await session.execute(select(dir_announced))}
    refresh_before = now - timedelta(days=d.REFRESH_DAYS)
    sent = 0
    for row in (await session.execute(select(communities).order_by(communities.c.id))).all():
        sent += await _compare(session, row, told.get(row.id), node=node, public_url=public_url, now=now,
                               refresh_before=refresh_before)
    return sent


# ---- the directory: other towns' communities -----------------------------------------------------------------------


async def list_(session: AsyncSession, *, q: d.DirectoryQuery, now: datetime) -> d.Directory:
    """Other member towns' open communities, newest listed first, by town and category if asked."""
    if q.category is not None and q.category not in categories.codes():
        raise c.COMMUNITY_UNKNOWN_CATEGORY(f"unknown category {q.category!r}")
    fresh = dir_entries.c.seen_at >= now - timedelta(days=d.STALE_DAYS)
    base = (select(dir_entries, dir_towns.c.public_url)
            .join(dir_towns, dir_towns.c.node == dir_entries.c.origin_node).where(fresh))
    stmt = base
    if q.town:
        stmt = stmt.where(dir_entries.c.origin_node == q.town)
    if q.category:
        stmt = stmt.where(select(dir_entry_categories.c.category).where(
            dir_entry_categories.c.origin_node == dir_entries.c.origin_node,
            dir_entry_categories.c.community_id == dir_entries.c.community_id,
            dir_entry_categories.c.category == q.category).exists())
    rows = await session.execute(stmt.order_by(dir_entries.c.listed_at.desc(), dir_entries.c.origin_node,
                                               dir_entries.c.community_id).limit(q.limit))
    entries = [d.DirectoryEntry(town=r.origin_node, community_id=r.community_id, name=r.name,
                                description=r.description, categories=list(r.categories), members=r.members,
                                url=page_url(r.public_url, r.community_id), listed_at=aware(r.listed_at))
               for r in rows]
    listed = await session.execute(select(dir_entries.c.origin_node).distinct()
                                   .join(dir_towns, dir_towns.c.node == dir_entries.c.origin_node).where(fresh))
    return d.Directory(entries=entries, towns=sorted(listed.scalars()))


# ---- what the peers say, checked like input ------------------------------------------------------------------------

APPLIED: dict[str, type[d.SnsfedEvent]] = {
    "CommunityListed": d.CommunityListed,
    "CommunityUpdated": d.CommunityUpdated,
    "CommunityUnlisted": d.CommunityUnlisted,
}


class PeerDirectoryHandler:
    """Applies other towns' listings (sourced into FED_<NODE>_SNSFED) to this node's directory, once."""

    def __init__(self, node: str) -> None:
        self.node = node

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        key, peer, type_, data = peer_event(msg, self.node, d.EVENTS)
        if not isinstance(type_, str) or msg.subject.split(".")[3] != event_token(type_):
            raise Rejected(f"event type {type_!r} does not match its subject {msg.subject!r}")
        model = APPLIED.get(type_)
        if model is None:  # a newer peer's event this version does not know: acknowledged, nothing changes
            return f"{peer}:{key}", {"peer": peer, "event": None}
        if not isinstance(data, dict):
            raise Rejected("the event carries no data")
        if data.get("origin_node") != peer:
            raise Rejected(f"{peer!r} may speak only for its own communities, not for "
                           f"{data.get('origin_node')!r}'s", code=403)
        try:
            event = model.model_validate(data)
        except ValidationError as exc:
            raise Rejected(f"{type_}: {exc.errors()[0]['msg']}") from None
        return f"{peer}:{key}", {"peer": peer, "event": event}

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        for delivery in deliveries:
            if not delivery.duplicate and delivery.item["event"] is not None:
                await keep(session, delivery.item["peer"], delivery.item["event"], utcnow())
        return [None for _ in deliveries]


async def keep(session: AsyncSession, peer: str, e: Any, now: datetime) -> None:
    """One listing of `peer` (already checked to be its own) into this node's directory."""
    where = (dir_entries.c.origin_node == peer, dir_entries.c.community_id == e.community_id)
    cats_where = (dir_entry_categories.c.origin_node == peer,
                  dir_entry_categories.c.community_id == e.community_id)
    if isinstance(e, d.CommunityUnlisted):
        await session.execute(delete(dir_entry_categories).where(*cats_where))
        await session.execute(delete(dir_entries).where(*where))
        return
    known = categories.codes()
    cats = list(dict.fromkeys(code for code in e.categories if code in known))
    values = {"name": e.name[:c.NAME_MAX] or "(無題)", "description": e.description[:c.DESCRIPTION_MAX],
              "categories": cats, "members": d.rounded(e.members), "seen_at": now}
    if (await session.execute(select(dir_entries.c.community_id).where(*where))).first():
        await session.execute(update(dir_entries).where(*where).values(**values))
    else:
        await session.execute(insert(dir_entries).values(origin_node=peer, community_id=e.community_id,
                                                         listed_at=now, **values))
    await session.execute(delete(dir_entry_categories).where(*cats_where))
    if cats:
        await session.execute(insert(dir_entry_categories), [
            {"origin_node": peer, "community_id": e.community_id, "category": code} for code in cats])
