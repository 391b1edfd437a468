"""Signage content shared between towns (issue 19, point 7). No NATS and no commits here (the adoption's own
transactions aside, which its `own` row runs around the fetch from the peer).

- Offer: staff mark an approved image or video this town made "offered"; ContentOffered (and ContentOfferWithdrawn)
  go out on EVT_<NODE>_SIGFED, which member towns source. The offering node's gateway then serves the item's bytes
  at MEDIA_PATH, and only while it is offered and approved.
- Adopt: a peer's offer becomes a local item: the bytes are fetched from the peer's public URL as the trust anchor
  vouches for it (never a URL a peer's event carries), must have the sha256 and size the offer announced, and then
  pass the same checks as a local upload (judged by their bytes, images decoded and re-encoded by Pillow). The item
  is pending: a staff member other than the one who adopted it approves it before it plays.
- Report: the plays of adopted items are summed per local day (Asia/Tokyo) and announced to the maker as totals
  (PlaysReported): no screen is named, and a total replaces the one before, so a report applied twice counts once.
- A peer speaks only for itself: an offer must be the sender's own, a report must come from the town it reports;
  anything else is dead-lettered (Rejected) and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage import blobs, content
from services.signage.models import bus, fed_offers, fed_peers, fed_plays, fed_reported, items, plays
from services.signage.screens import require_staff
from towntip.kernel.bus.consumer import Delivery, Outcome, Rejected, peer_event
from towntip.kernel.bus.envelope import event_token, utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import signage_federation as f
from towntip.kernel.db import aware
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)

# fetch(url, limit) -> the bytes (at most `limit`), raising f.PEER_UNREACHABLE (services/signage/peer_media.py)
Fetch = Callable[[str, int], Awaitable[bytes]]


# ---- the member towns ---------------------------------------------------------------------------------------------


async def record_peers(session: AsyncSession, found: dict[str, str], now: datetime) -> None:
    """The member towns as the trust anchor lists them now ({node: public URL}); a town no longer listed is dropped
    (its offers are hidden; its reports are still taken, for items it adopted while a member)."""
    await session.execute(delete(fed_peers).where(fed_peers.c.node.not_in(list(found) or [""])))
    for node, url in found.items():
        values = {"public_url": url.rstrip("/")[:300], "checked_at": now}
        if (await session.execute(select(fed_peers.c.node).where(fed_peers.c.node == node))).first():
            await session.execute(update(fed_peers).where(fed_peers.c.node == node).values(**values))
        else:
            await session.execute(insert(fed_peers).values(node=node, **values))


async def peers(session: AsyncSession) -> dict[str, str]:
    return {r.node: r.public_url for r in await session.execute(select(fed_peers))}


# ---- offering -----------------------------------------------------------------------------------------------------


def offered_event(row: Any, node: str) -> f.ContentOffered:
    return f.ContentOffered(
        item_id=row.id, origin_node=node, kind=row.kind, title=row.title, mime=row.mime, sha256=row.sha256,
        bytes=row.bytes, duration_s=row.duration_s, width=row.width, height=row.height,
        valid_from=aware(row.valid_from), valid_until=aware(row.valid_until),
    )


async def offer(session: AsyncSession, *, node: str, data: f.OfferSet, now: datetime) -> c.ContentItem:
    """Offer an approved item of this town to the federation, or withdraw the offer (the same twice: no change)."""
    require_staff(data.actor)
    row = (await session.execute(select(items).where(items.c.id == data.item_id))).first()
    if row is None:
        raise c.ITEM_NOT_FOUND(f"no item {data.item_id}")
    if row.offered == data.offered:
        return content.view(row)
    if data.offered and (row.status != "approved" or row.source != "upload" or row.kind not in ("image", "video")):
        raise f.OFFER_NOT_ALLOWED(f"the item is a {row.status} {row.kind} ({row.source}): only an approved image or "
                                  "video this town uploaded is offered")
    await session.execute(update(items).where(items.c.id == row.id).values(offered=data.offered, updated_at=now))
    event = offered_event(row, node) if data.offered else f.ContentOfferWithdrawn(item_id=row.id, origin_node=node)
    await announce(session, bus, event, node=node, at=now)
    return content.view((await session.execute(select(items).where(items.c.id == row.id))).one())


async def media(session: AsyncSession, *, data: f.MediaPart) -> f.MediaChunk:
    """One CHUNK_MAX part of an offered item's bytes, for the gateway's public MEDIA_PATH (what the other towns
    fetch). Only an item offered and approved now: a withdrawn offer is served no more."""
    row = (await session.execute(select(items).where(
        items.c.id == data.item_id, items.c.offered.is_(True), items.c.status == "approved"))).first()
    if row is None:
        raise f.NOT_OFFERED(f"item {data.item_id} is not offered")
    parts = max(1, -(-row.bytes // c.CHUNK_MAX))
    if data.seq >= parts:
        raise c.CHUNK_OUT_OF_RANGE(f"the item has {parts} parts")
    chunk = await blobs.read(session, sha256=row.sha256, offset=data.seq * c.CHUNK_MAX, length=c.CHUNK_MAX)
    return f.MediaChunk(mime=row.mime, bytes=row.bytes, sha256=row.sha256, parts=parts,
                        data_b64=base64.b64encode(chunk).decode())


# ---- what the peers offer -----------------------------------------------------------------------------------------


async def offers(session: AsyncSession, *, data: f.OffersQuery, node: str) -> f.OfferList:
    """The offers of the member towns (withdrawn ones left out), newest first, with the local item adopted from each."""
    require_staff(data.actor)
    rows = await session.execute(
        select(fed_offers, items.c.id.label("adopted_as"))
        .join(fed_peers, fed_peers.c.node == fed_offers.c.origin_node)
        .outerjoin(items, and_(items.c.origin_node == fed_offers.c.origin_node,
                               items.c.origin_id == fed_offers.c.item_id))
        .where(fed_offers.c.withdrawn_at.is_(None), fed_offers.c.origin_node != node)
        .order_by(fed_offers.c.offered_at.desc(), fed_offers.c.item_id)
    )
    return f.OfferList(offers=tuple(
        f.Offer(origin_node=r.origin_node, item_id=r.item_id, kind=r.kind, title=r.title, mime=r.mime, bytes=r.bytes,
                duration_s=r.duration_s, width=r.width, height=r.height, valid_from=aware(r.valid_from),
                valid_until=aware(r.valid_until), offered_at=aware(r.offered_at), adopted_as=r.adopted_as)
        for r in rows))


def check_media(raw: bytes, offer: Any, box: tuple[int, int]) -> tuple[bytes, str, int | None, int | None]:
    """A peer's bytes checked as a local upload is: the announced sha256 and size, then by their own bytes (a kind
    other than the one announced is refused), images decoded and re-encoded. (bytes, MIME, width, height)."""
    if len(raw) != offer.bytes or hashlib.sha256(raw).hexdigest() != offer.sha256:
        raise f.PEER_MEDIA_MISMATCH(f"{len(raw)} bytes with another sha256 than the {offer.bytes} announced")
    sniffed = content.sniff(raw[:64])
    if sniffed is None or sniffed[0] != offer.kind:
        raise c.UPLOAD_TYPE(f"the bytes are not those of the {offer.kind} announced")
    kind, mime = sniffed
    if kind == "image":
        if len(raw) > c.IMAGE_MAX_BYTES:
            raise c.UPLOAD_TOO_LARGE(f"an image is at most {c.IMAGE_MAX_BYTES} bytes")
        return content.clean_image(raw, box)
    if len(raw) > c.VIDEO_MAX_BYTES:
        raise c.UPLOAD_TOO_LARGE(f"a video is at most {c.VIDEO_MAX_BYTES} bytes")
    return raw, mime, None, None


async def adopt(*, uow: UnitOfWork, data: f.AdoptRequest, node: str, fetch: Fetch) -> c.ContentItem:
    """A peer's offer as a local pending item (approved here by a staff member other than the one adopting)."""
    require_staff(data.actor)

    async def look(session: AsyncSession) -> tuple[Any, str]:
        row = (await session.execute(
            select(fed_offers, fed_peers.c.public_url).join(fed_peers, fed_peers.c.node == fed_offers.c.origin_node)
            .where(fed_offers.c.origin_node == data.origin_node, fed_offers.c.item_id == data.item_id,
                   fed_offers.c.withdrawn_at.is_(None), fed_offers.c.origin_node != node))).first()
        if row is None:
            raise f.OFFER_NOT_FOUND(f"no offer {data.item_id} of {data.origin_node}")
        await _not_adopted(session, data.origin_node, data.item_id)
        return row, f"{row.public_url}{f.MEDIA_PATH.format(item_id=row.item_id)}"

    offer_row, url = await uow.read(look)
    limit = c.IMAGE_MAX_BYTES if offer_row.kind == "image" else c.VIDEO_MAX_BYTES
    raw = await fetch(url, min(offer_row.bytes, limit))

    async def keep(session: AsyncSession, now: datetime) -> c.ContentItem:
        await _not_adopted(session, data.origin_node, data.item_id)
        cleaned, mime, width, height = check_media(raw, offer_row, await content._screen_box(session))
        digest = await blobs.put(session, cleaned)
        item_id = str(uuid.uuid4())
        await session.execute(items.insert().values(
            id=item_id, kind=offer_row.kind, title=offer_row.title, mime=mime, sha256=digest, bytes=len(cleaned),
            duration_s=offer_row.duration_s, valid_from=offer_row.valid_from, valid_until=offer_row.valid_until,
            status="pending", source="peer", width=width, height=height,
            created_by=data.actor.global_handle if data.actor else None, created_at=now, updated_at=now,
            origin_node=offer_row.origin_node, origin_id=offer_row.item_id, offered=False))
        await announce(session, bus, c.ContentAdded(item_id=item_id, kind=offer_row.kind, title=offer_row.title),
                       node=node, at=now)
        return content.view((await session.execute(select(items).where(items.c.id == item_id))).one())

    try:
        return await uow.write(keep)
    except IntegrityError:  # adopted at the same moment by a colleague (ix_items_origin)
        raise f.ALREADY_ADOPTED(f"{data.origin_node}'s item {data.item_id} is adopted here already") from None


async def _not_adopted(session: AsyncSession, origin_node: str, item_id: str) -> None:
    if (await session.execute(select(items.c.id).where(
            items.c.origin_node == origin_node, items.c.origin_id == item_id))).first():
        raise f.ALREADY_ADOPTED(f"{origin_node}'s item {item_id} is adopted here already")


# ---- plays reported back ------------------------------------------------------------------------------------------


def local_day(at: datetime) -> str:
    return aware(at).astimezone(JST).date().isoformat()


async def report(session: AsyncSession, *, node: str, now: datetime) -> f.ReportDone:
    """Announce, for each adopted item and local day of the last REPORT_DAYS whose totals changed since the last
    report, the new totals to the maker."""
    since = now - timedelta(days=f.REPORT_DAYS)
    rows = await session.execute(
        select(plays.c.item_id, plays.c.started_at, plays.c.ended_at, items.c.origin_node, items.c.origin_id)
        .join(items, items.c.id == plays.c.item_id)
        .where(items.c.source == "peer", items.c.origin_node.is_not(None), plays.c.started_at >= since))
    totals: dict[tuple[str, str], list[int]] = {}
    origin: dict[str, tuple[str, str]] = {}
    for r in rows:
        key = (r.item_id, local_day(r.started_at))
        t = totals.setdefault(key, [0, 0])
        t[0] += 1
        t[1] += max(0, round((aware(r.ended_at) - aware(r.started_at)).total_seconds()))
        origin[r.item_id] = (r.origin_node, r.origin_id)
    if not totals:
        return f.ReportDone(reports=0)
    have = {(r.item_id, r.day): (r.plays, r.seconds) for r in await session.execute(
        select(fed_reported).where(fed_reported.c.item_id.in_(list(origin))))}
    sent = 0
    for (item_id, day), (n, secs) in sorted(totals.items()):
        before = have.get((item_id, day))
        if before == (n, secs):
            continue
        if before is None:
            await session.execute(insert(fed_reported).values(item_id=item_id, day=day, plays=n, seconds=secs,
                                                              reported_at=now))
        else:
            await session.execute(update(fed_reported).where(
                fed_reported.c.item_id == item_id, fed_reported.c.day == day).values(
                plays=n, seconds=secs, reported_at=now))
        maker, maker_id = origin[item_id]
        await announce(session, bus, f.PlaysReported(town=node, item_origin_node=maker, item_id=maker_id, day=day,
                                                     plays=n, seconds=secs), node=node, at=now)
        sent += 1
    return f.ReportDone(reports=sent)


async def report_now(session: AsyncSession, *, node: str, data: f.ReportNow, now: datetime) -> f.ReportDone:
    require_staff(data.actor)
    return await report(session, node=node, now=now)


async def abroad(session: AsyncSession, *, data: f.AbroadQuery) -> f.AbroadPlays:
    """Plays of this town's items in other towns, per town and day, as the towns reported them."""
    require_staff(data.actor)
    q = (select(fed_plays, items.c.title).join(items, items.c.id == fed_plays.c.item_id)
         .order_by(fed_plays.c.day.desc(), items.c.title, fed_plays.c.town))
    if data.item_id:
        q = q.where(fed_plays.c.item_id == data.item_id)
    return f.AbroadPlays(rows=tuple(
        f.AbroadRow(item_id=r.item_id, title=r.title, town=r.town, day=r.day, plays=r.plays, seconds=r.seconds)
        for r in await session.execute(q)))


# ---- what the peers say, checked like input -----------------------------------------------------------------------

APPLIED: dict[str, type[f.SigfedEvent]] = {
    "ContentOffered": f.ContentOffered,
    "ContentOfferWithdrawn": f.ContentOfferWithdrawn,
    "PlaysReported": f.PlaysReported,
}


class PeerSignageHandler:
    """Applies the member towns' offers and the plays they report of this town's items, once (the kernel's inbox)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.ignored: deque[str] = deque(maxlen=100)  # why events were ignored (also logged), newest last

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        key, peer, type_, data = peer_event(msg, self.node, f.EVENTS)
        if not isinstance(type_, str) or msg.subject.split(".")[3] != event_token(type_):
            raise Rejected(f"event type {type_!r} does not match its subject {msg.subject!r}")
        model = APPLIED.get(type_)
        if model is None:
            return f"{peer}:{key}", {"peer": peer, "event": None}
        try:
            event = model.model_validate(data)
        except ValidationError as exc:
            raise Rejected(f"{type_}: {exc.errors()[0]['msg']}") from None
        speaker = event.town if isinstance(event, f.PlaysReported) else event.origin_node  # type: ignore[attr-defined]
        if speaker != peer:
            raise Rejected(f"{peer!r} may speak only for its own offers and plays, not for {speaker!r}'s", code=403)
        return f"{peer}:{key}", {"peer": peer, "event": event}

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        for d in deliveries:
            if not d.duplicate and d.item["event"] is not None:
                await self._apply_one(session, d.item["peer"], d.item["event"])
        return [None] * len(deliveries)

    def _ignore(self, reason: str) -> None:
        log.warning(reason)
        self.ignored.append(reason)

    async def _apply_one(self, session: AsyncSession, peer: str, e: Any) -> None:
        now = utcnow()
        if isinstance(e, f.ContentOffered):
            values = {"kind": e.kind, "title": e.title[:120], "mime": e.mime[:40], "sha256": e.sha256[:64],
                      "bytes": e.bytes, "duration_s": min(max(e.duration_s, 1), c.DURATION_MAX), "width": e.width,
                      "height": e.height, "valid_from": e.valid_from, "valid_until": e.valid_until,
                      "offered_at": now, "withdrawn_at": None}
            where = (fed_offers.c.origin_node == peer, fed_offers.c.item_id == e.item_id[:36])
            if (await session.execute(select(fed_offers.c.item_id).where(*where))).first():
                await session.execute(update(fed_offers).where(*where).values(**values))
            else:
                await session.execute(insert(fed_offers).values(origin_node=peer, item_id=e.item_id[:36], **values))
        elif isinstance(e, f.ContentOfferWithdrawn):
            await session.execute(update(fed_offers).where(
                fed_offers.c.origin_node == peer, fed_offers.c.item_id == e.item_id[:36]).values(withdrawn_at=now))
        elif isinstance(e, f.PlaysReported):
            await self._plays(session, peer, e, now)

    async def _plays(self, session: AsyncSession, peer: str, e: f.PlaysReported, now: datetime) -> None:
        if e.item_origin_node != self.node:
            return  # another town's item: that town takes it
        mine = (await session.execute(select(items.c.id).where(
            items.c.id == e.item_id, items.c.source != "peer"))).first()
        if mine is None:
            self._ignore(f"{peer} reported plays of {e.item_id}, which is no item of {self.node}: ignored")
            return
        where = (fed_plays.c.item_id == e.item_id, fed_plays.c.town == peer, fed_plays.c.day == e.day)
        row = (await session.execute(select(fed_plays.c.plays).where(*where))).first()
        if row is None:
            await session.execute(insert(fed_plays).values(item_id=e.item_id, town=peer, day=e.day, plays=e.plays,
                                                           seconds=e.seconds, updated_at=now))
        elif e.plays >= row.plays:  # totals only grow: an older report arriving late changes nothing
            await session.execute(update(fed_plays).where(*where).values(plays=e.plays, seconds=e.seconds,
                                                                         updated_at=now))
