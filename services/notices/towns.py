"""Other towns' public notices in a person's home inbox (issue 18, point 3). No commits here but the unit of work's.

- **Following.** A person chooses, on their home node only, which other member towns of the federation they follow
  (`town_follows`). The member towns are what the node knows of the federation: the projects service's list
  (`projects.federation.members`, which it keeps from the trust anchor), asked over the bus.
- **Sourcing.** `PeerSources` makes this node's `FED_<NODE>_PUBLICNOTICES` source `EVT_<PEER>_PUBLICNOTICES` of
  every town someone here follows (added, never removed: a town nobody follows any more sends what nobody gets).
  Peers' public notices stream is the only notices stream a peer may source (towntip/node/leafnode.py).
- **Applying.** `PeerNoticesHandler` takes each peer's public notice into the inboxes of its followers here, once:
  the kernel's inbox keys the event by `<peer>:<event id>`, the item by `town:<peer>:<notice id>` (unique), and an
  inbox row is one (person, item). Corrections replace the content (the newest version wins) and withdrawals mark
  it withdrawn wherever it arrived. A node speaks only for itself: an event of node X on another node's subject, or
  about another node's notice (`origin_node`), is dead-lettered and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notices.models import TS, inbox_entries, items
from services.notices.towns_models import town_follows
from towntip.kernel import categories, errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, peer_event
from towntip.kernel.bus.envelope import event_token, utcnow
from towntip.kernel.bus.streams import ensure_peer_sources
from towntip.kernel.contracts import federation as fc
from towntip.kernel.contracts import notices as nc
from towntip.kernel.contracts import notices_towns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware, insert_on_conflict
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)
DURABLE = "notices-town-notices"
_NOTICE_ID = re.compile(r"^[0-9a-f-]{36}$")

# ---- the member towns ---------------------------------------------------------------------------------------------


class Towns(Protocol):
    async def members(self) -> dict[str, str]:
        """{node: public URL} of the other member towns, active; raises TOWNS_UNAVAILABLE when not known now."""
        ...


class TownsOverBus:
    """The member towns as the projects service of this node keeps them from the trust anchor."""

    def __init__(self, nc_: NATS, node: str, *, timeout: float = 5.0) -> None:
        self.nc, self.node, self.timeout = nc_, node, timeout

    async def members(self) -> dict[str, str]:
        try:
            got = fc.Members.model_validate(await rpc.call(
                self.nc, subjects.svc(self.node, "projects", fc.EP_MEMBERS), fc.MembersQuery(), timeout=self.timeout))
        except (errors.Unavailable, TimeoutError) as exc:
            raise c.TOWNS_UNAVAILABLE(f"projects did not answer: {exc}") from exc
        return {m.node: m.public_url for m in got.members if m.active and m.node != self.node}


# ---- following: the person's own, on their home node --------------------------------------------------------------


def _home(actor: Actor, node: str) -> str:
    if not actor.global_handle.endswith(f"@{node}"):
        raise c.TOWNS_HOME_ONLY("the towns a person follows are kept on their home node only")
    return actor.global_handle


async def _followed(session: AsyncSession, person: str) -> list[str]:
    return list((await session.execute(select(town_follows.c.node).where(town_follows.c.person == person)
                                       .order_by(town_follows.c.node))).scalars())


def _view(members: dict[str, str] | None, followed: list[str]) -> c.Towns:
    listed = members or {}
    out = [c.Town(node=n, public_url=url, following=n in followed) for n, url in sorted(listed.items())]
    out += [c.Town(node=n, following=True, listed=members is None) for n in followed if n not in listed]
    return c.Towns(towns=out, available=members is not None)


async def list_(*, uow: UnitOfWork, data: c.TownsQuery, node: str, towns: Towns) -> c.Towns:
    person = _home(data.actor, node)
    followed = await uow.read(lambda s: _followed(s, person))
    try:
        members: dict[str, str] | None = await towns.members()
    except errors.ServiceError:
        members = None  # the page still shows what the person follows
    return _view(members, followed)


async def follow(*, uow: UnitOfWork, data: c.TownFollow, node: str, towns: Towns, peer_sources: Any) -> c.Towns:
    person = _home(data.actor, node)
    members = await towns.members()
    if data.node not in members:
        raise c.TOWN_UNKNOWN(f"{data.node!r} is not another member town of the federation")

    async def write(session: AsyncSession, at: datetime) -> list[str]:
        followed = await _followed(session, person)
        if data.node not in followed:
            if len(followed) >= c.FOLLOWS_MAX:
                raise c.TOWNS_TOO_MANY(f"at most {c.FOLLOWS_MAX} towns may be followed")
            await session.execute(insert_on_conflict(session, town_follows).values(
                person=person, node=data.node, followed_at=at).on_conflict_do_nothing())
        return await _followed(session, person)

    followed = await uow.write(write)
    peer_sources.wake()  # source the town's public notices now, not at the next round
    return _view(members, followed)


async def unfollow(*, uow: UnitOfWork, data: c.TownFollow, node: str, towns: Towns) -> c.Towns:
    person = _home(data.actor, node)

    async def write(session: AsyncSession, at: datetime) -> list[str]:
        await session.execute(delete(town_follows).where(town_follows.c.person == person,
                                                         town_follows.c.node == data.node))
        return await _followed(session, person)

    followed = await uow.write(write)
    try:
        members: dict[str, str] | None = await towns.members()
    except errors.ServiceError:
        members = None
    return _view(members, followed)


async def forget(session: AsyncSession, handle: str) -> None:
    """A deleted account's follows (its inbox rows go with the rest of its inbox)."""
    await session.execute(delete(town_follows).where(town_follows.c.person == handle))


async def followed_towns(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(town_follows.c.node).distinct())).scalars())


# ---- sourcing the followed towns' public notices -----------------------------------------------------------------


class PeerSources:
    """Keeps FED_<NODE>_PUBLICNOTICES sourcing every town someone here follows: at start, after a follow (woken),
    and every `every` seconds (a failed update, a hub not reachable: the next round tries again)."""

    def __init__(self, js: JetStreamContext, sessions: async_sessionmaker[AsyncSession], node: str, *,
                 every: float) -> None:
        self.js, self.sessions, self.node, self.every = js, sessions, node, every
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def once(self) -> list[str]:
        async with self.sessions() as session:
            peers = await followed_towns(session)
        added = await ensure_peer_sources(self.js, self.node, peers - {self.node}, c.PUBLIC, own=True)
        if added:
            log.info("now sourcing the public notices of %s", ", ".join(added))
        return added

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.once()
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("sourcing the followed towns' notices failed: %r", exc)
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waits, timeout=self.every, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()


def consumer_spec(node: str) -> ConsumerSpec:
    return ConsumerSpec(stream=subjects.fed_service_stream(node, c.PUBLIC), durable=DURABLE,
                        filter_subject=f"evt.*.{c.PUBLIC}.>", service=nc.SERVICE, node=node, batch=64)


# ---- applying a peer's public notices ------------------------------------------------------------------------------

APPLIED: dict[str, type[BaseModel]] = {
    "PublicNoticePublished": c.PublicNoticePublished,
    "PublicNoticeCorrected": c.PublicNoticeCorrected,
    "PublicNoticeWithdrawn": c.PublicNoticeWithdrawn,
}


def dedup_key(peer: str, notice_id: str) -> str:
    return f"town:{peer}:{notice_id}"


class PeerNoticesHandler:
    """Applies other towns' public notice events (sourced into FED_<NODE>_PUBLICNOTICES) to the inboxes here."""

    def __init__(self, node: str) -> None:
        self.node = node

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        key, peer, type_, data = peer_event(msg, self.node, c.PUBLIC)
        if not isinstance(type_, str) or msg.subject.split(".")[3] != event_token(type_):
            raise Rejected(f"event type {type_!r} does not match its subject {msg.subject!r}")
        model = APPLIED.get(type_)
        if model is None:  # a newer peer's event this version does not know: acknowledged, nothing changes
            return f"{peer}:{key}", {"peer": peer, "type": type_, "data": None}
        if not isinstance(data, dict):
            raise Rejected("the event carries no data")
        if data.get("origin_node") != peer:
            raise Rejected(f"{peer!r} may speak only for its own notices, not for {data.get('origin_node')!r}'s",
                           code=403)
        if not _NOTICE_ID.match(str(data.get("notice_id", ""))):
            raise Rejected("the notice id is not one")
        try:
            event = model.model_validate(data)
        except ValidationError as exc:
            raise Rejected(f"{type_}: {exc.errors()[0]['msg']}") from None
        return f"{peer}:{key}", {"peer": peer, "type": type_, "data": event}

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        for d in deliveries:
            if not d.duplicate and d.item["data"] is not None:
                await self._apply_one(session, d.item["peer"], d.item["type"], d.item["data"])
        return [None for _ in deliveries]

    async def _apply_one(self, session: AsyncSession, peer: str, type_: str, e: Any) -> None:
        now = utcnow()
        key = dedup_key(peer, e.notice_id)
        if type_ == "PublicNoticeWithdrawn":
            await session.execute(update(items).where(items.c.dedup_key == key, items.c.withdrawn_at.is_(None))
                                  .values(withdrawn_at=now, updated_at=now))
            return
        row = (await session.execute(select(items.c.id, items.c.version).where(items.c.dedup_key == key))).first()
        if row is None:
            if type_ != "PublicNoticePublished":
                return  # a correction of a notice that never arrived here delivers nothing
            item_id = str(uuid.uuid4())
            await session.execute(insert_on_conflict(session, items).values(
                id=item_id, kind=c.KIND_TOWN_NOTICE, dedup_key=key, origin_node=peer, ref=e.notice_id,
                created_at=now, updated_at=now, **_content(e)).on_conflict_do_nothing())
            got = await session.scalar(select(items.c.id).where(items.c.dedup_key == key))
            item_id = got or item_id
        else:
            item_id = row.id
            if e.version > row.version:
                await session.execute(update(items).where(items.c.id == item_id).values(
                    updated_at=now, **_content(e)))
        if type_ == "PublicNoticePublished":
            followers = select(town_follows.c.person, literal(item_id), literal(c.KIND_TOWN_NOTICE),
                               literal(now, TS)).where(town_follows.c.node == peer)
            await session.execute(insert_on_conflict(session, inbox_entries).from_select(
                ["person", "item_id", "kind", "delivered_at"], followers).on_conflict_do_nothing())


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None and at.tzinfo is not None else at


def _content(e: c.PublicNoticePublished) -> dict[str, Any]:
    """What is kept of a peer's notice, bounded as this node's own notices are. A link that is a path belongs to the
    peer's site, not this one: only absolute links are kept."""
    return {"title": e.title[:nc.TITLE_MAX] or "(無題)", "body": e.body[:nc.BODY_MAX],
            "links": [ln.model_dump() for ln in e.links[:nc.LINKS_MAX] if ln.url.startswith(("http://", "https://"))],
            "category": e.category if e.category in categories.codes() else None,
            "sender": (e.sender or e.origin_node)[:100], "valid_from": _utc(e.valid_from),
            "valid_until": _utc(e.valid_until), "version": e.version}



# ---- what this node announces of its own public notices ----------------------------------------------------------


def public_event(item: Any, *, node: str, at: datetime, corrected: bool = False) -> c.PublicNoticePublished:
    """This node's notice to everyone (its `items` row, current version) as peers may take it."""
    model = c.PublicNoticeCorrected if corrected else c.PublicNoticePublished
    return model(notice_id=item.id, origin_node=node, version=item.version, title=item.title, body=item.body,
                 links=[nc.Link.model_validate(ln) for ln in item.links or []], category=item.category,
                 sender=item.sender, valid_from=aware(item.valid_from), valid_until=aware(item.valid_until), at=at)
