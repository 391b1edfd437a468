"""Signage content between towns, at one node on SQLite and PostgreSQL: offering an approved item (its event and its
bytes for the other towns), a peer's offers and their adoption (bytes fetched over HTTP and checked again, approval
by a second staff member), the plays of an adopted item reported back as day totals once, and the reports of this
town's items taken from the towns that played them, a forged one dead-lettered.

The peer (tsurugashima) is played by the test: its event stream lives on this node's server and is sourced as the
hub would deliver it; its public site is a small ASGI app served by uvicorn with the bytes it offers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.js.api import StreamSource
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from services.signage import federation
from services.signage.models import fed_plays, items
from tests.signage.helpers import CHIEF, CLERK, NODE, NOW, Node, photo, upload
from tests.support.http_server import serve
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.envelope import Envelope, event_token, new_id
from towntip.kernel.bus.streams import ensure_stream, evt_stream_config, fed_stream_config
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import signage_federation as f
from towntip.node.natsd import free_port

PEER, OTHER = "tsurugashima", "shibuya"
PEER_ITEM = "11111111-1111-4111-8111-111111111111"
BAD_ITEM = "22222222-2222-4222-8222-222222222222"


class Peer:
    """The peer town: what it publishes on its stream, and the bytes its public site serves."""

    def __init__(self, node: Node, base: str) -> None:
        self.node, self.base = node, base
        self.js = node.nc.jetstream()
        self.media: dict[str, bytes] = {}

    async def publish(self, type_: str, data: dict[str, Any], *, as_node: str = PEER) -> None:
        env = Envelope(id=new_id(), type=type_, node=as_node, service=f.EVENTS, data=data)
        await self.js.publish(subjects.evt(PEER, f.EVENTS, event_token(type_)), env.to_bytes(),
                              headers={subjects.HDR_MSG_ID: new_id()})

    async def settle(self) -> None:
        stream = subjects.fed_service_stream(NODE, f.EVENTS)
        for _ in range(300):
            sent = (await self.js.stream_info(subjects.evt_stream(PEER, f.EVENTS))).state.messages
            have = (await self.js.stream_info(stream)).state.messages
            info = await self.js.consumer_info(stream, "signage-peer-facts")
            if have >= sent and info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the peer consumer did not settle")


@pytest.fixture
async def peer(node: Node) -> AsyncIterator[Peer]:
    port = free_port()
    p = Peer(node, f"http://127.0.0.1:{port}")

    async def media(request: Any) -> Response:
        data = p.media.get(request.path_params["item_id"])
        return Response(data, media_type="image/jpeg") if data is not None else Response(status_code=404)

    server, task = await serve(Starlette(routes=[Route(f.MEDIA_PATH, media)]), "127.0.0.1", port)
    await ensure_stream(p.js, evt_stream_config(PEER, f.EVENTS))
    await ensure_stream(p.js, fed_stream_config(NODE, [StreamSource(
        name=subjects.evt_stream(PEER, f.EVENTS), filter_subject=subjects.evt_all(PEER, f.EVENTS))], own=f.EVENTS))
    async with node.svc.sessions() as s, s.begin():
        await federation.record_peers(s, {PEER: p.base}, NOW)
    try:
        yield p
    finally:
        server.should_exit = True
        await task


def offer_of(item_id: str, data: bytes, **kw: Any) -> dict[str, Any]:
    return {"item_id": item_id, "origin_node": PEER, "kind": "image", "title": "鶴ヶ島の秋祭り", "mime": "image/jpeg",
            "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "duration_s": 12,
            "valid_from": NOW.isoformat(), **kw}


async def refused(code: str, call: Any) -> None:
    with pytest.raises(errors.ServiceError) as exc:
        await call
    assert exc.value.error_code == code, exc.value.reason


async def own_events(node: Node, type_: str) -> list[dict[str, Any]]:
    js = node.nc.jetstream()
    stream = subjects.evt_stream(NODE, f.EVENTS)
    out = []
    for seq in range(1, (await js.stream_info(stream)).state.last_seq + 1):
        env = json.loads((await js.get_msg(stream, seq)).data)
        if env["type"] == type_:
            out.append(env["data"])
    return out


async def test_an_offered_item_is_announced_served_while_offered_and_withdrawn(node: Node) -> None:
    item = await upload(node, photo(640, 480), title="市報 12月号")
    await refused(f.OFFER_NOT_ALLOWED.code, node.call(f.EP_OFFER, f.OfferSet(actor=CLERK, item_id=item["id"])))
    await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item["id"]))
    await refused(c.STAFF_ONLY.code, node.call(f.EP_OFFER, f.OfferSet(item_id=item["id"], actor=CLERK.model_copy(
        update={"roles": ()}))))
    offered = await node.call(f.EP_OFFER, f.OfferSet(actor=CLERK, item_id=item["id"]))
    assert offered["offered"] is True
    await node.call(f.EP_OFFER, f.OfferSet(actor=CLERK, item_id=item["id"]))  # again: no second event

    data = b""
    first = await node.call(f.EP_MEDIA, f.MediaPart(item_id=item["id"], seq=0))
    data = base64.b64decode(first["data_b64"])
    assert hashlib.sha256(data).hexdigest() == item["sha256"] == first["sha256"] and first["parts"] == 1
    await refused(c.CHUNK_OUT_OF_RANGE.code, node.call(f.EP_MEDIA, f.MediaPart(item_id=item["id"], seq=1)))

    async def announced() -> bool:
        return len(await own_events(node, "ContentOffered")) == 1
    for _ in range(100):
        if await announced():
            break
        await asyncio.sleep(0.05)
    [event] = await own_events(node, "ContentOffered")
    assert event["origin_node"] == NODE and event["sha256"] == item["sha256"] and event["title"] == "市報 12月号"
    assert "created_by" not in event and "approved_by" not in event  # no staff handle leaves the town

    # Withdrawing the item ends the offer: not served any more, and the towns are told.
    await node.call(c.EP_CONTENT_WITHDRAW, c.ItemAction(actor=CHIEF, item_id=item["id"]))
    await refused(f.NOT_OFFERED.code, node.call(f.EP_MEDIA, f.MediaPart(item_id=item["id"], seq=0)))
    for _ in range(100):
        if await own_events(node, "ContentOfferWithdrawn"):
            break
        await asyncio.sleep(0.05)
    assert [e["item_id"] for e in await own_events(node, "ContentOfferWithdrawn")] == [item["id"]]


async def test_a_peer_offer_is_adopted_checked_approved_by_another_and_its_plays_reported_once(
        node: Node, peer: Peer) -> None:
    good = photo(800, 600)
    peer.media[PEER_ITEM] = good
    peer.media[BAD_ITEM] = b"<html>not the photo announced</html>"
    await peer.publish("ContentOffered", offer_of(PEER_ITEM, good))
    await peer.publish("ContentOffered", offer_of(BAD_ITEM, good, title="中身が違う"))
    await peer.settle()
    listed = (await node.call(f.EP_OFFERS, f.OffersQuery(actor=CLERK)))["offers"]
    assert {o["item_id"]: o["title"] for o in listed} == {PEER_ITEM: "鶴ヶ島の秋祭り", BAD_ITEM: "中身が違う"}
    assert all(o["origin_node"] == PEER and o["adopted_as"] is None for o in listed)

    # Bytes that are not what was announced: refused, nothing kept.
    await refused(f.PEER_MEDIA_MISMATCH.code, node.call(
        f.EP_ADOPT, f.AdoptRequest(actor=CLERK, origin_node=PEER, item_id=BAD_ITEM), timeout=20))
    await refused(f.OFFER_NOT_FOUND.code, node.call(
        f.EP_ADOPT, f.AdoptRequest(actor=CLERK, origin_node=OTHER, item_id=PEER_ITEM)))
    async with node.svc.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(items))).scalar_one() == 0

    local = await node.call(f.EP_ADOPT, f.AdoptRequest(actor=CLERK, origin_node=PEER, item_id=PEER_ITEM), timeout=20)
    assert (local["status"], local["source"], local["origin_node"]) == ("pending", "peer", PEER)
    assert local["duration_s"] == 12 and local["mime"] == "image/jpeg"  # decoded and re-encoded here
    await refused(f.ALREADY_ADOPTED.code, node.call(
        f.EP_ADOPT, f.AdoptRequest(actor=CHIEF, origin_node=PEER, item_id=PEER_ITEM), timeout=20))
    await refused(c.SAME_APPROVER.code, node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CLERK,
                                                                                     item_id=local["id"])))
    await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=local["id"]))
    listed = (await node.call(f.EP_OFFERS, f.OffersQuery(actor=CLERK)))["offers"]
    assert {o["item_id"]: o["adopted_as"] for o in listed}[PEER_ITEM] == local["id"]

    # Two plays on one screen: one report of the day's totals, none again while nothing changes.
    tv = await node.screen("hall-1f")
    try:
        await tv.play(local["id"])
        await tv.play(local["id"])
    finally:
        await tv.nc.close()
    for _ in range(200):
        if await own_events(node, "PlaysReported"):
            break
        await asyncio.sleep(0.05)
    assert (await node.call(f.EP_REPORT, f.ReportNow()))["reports"] == 0
    [report] = await own_events(node, "PlaysReported")
    assert report == {"town": NODE, "item_origin_node": PEER, "item_id": PEER_ITEM, "day": "2026-12-07",
                      "plays": 2, "seconds": 20, "kind": "totals"}  # no screen named

    # The peer withdraws its offer: gone from the list (the adopted copy stays, the town decides about it).
    await peer.publish("ContentOfferWithdrawn", {"item_id": PEER_ITEM, "origin_node": PEER})
    await peer.settle()
    assert [o["item_id"] for o in (await node.call(f.EP_OFFERS, f.OffersQuery(actor=CLERK)))["offers"]] == [BAD_ITEM]


async def test_reports_of_this_towns_items_count_once_and_a_forged_one_is_dead_lettered(
        node: Node, peer: Peer) -> None:
    item = await upload(node, photo(320, 240), title="防災訓練のお知らせ")
    await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item["id"]))
    await node.call(f.EP_OFFER, f.OfferSet(actor=CLERK, item_id=item["id"]))
    day = {"item_origin_node": NODE, "item_id": item["id"], "day": "2026-12-07", "kind": "totals"}
    await peer.publish("PlaysReported", {"town": PEER, "plays": 3, "seconds": 36, **day})
    await peer.publish("PlaysReported", {"town": PEER, "plays": 3, "seconds": 36, **day})  # the same totals again
    await peer.publish("PlaysReported", {"town": PEER, "plays": 5, "seconds": 60, **day})
    await peer.publish("PlaysReported", {"town": PEER, "plays": 4, "seconds": 48, **day})  # older, arrived late
    await peer.publish("PlaysReported", {"town": PEER, "plays": 9, "seconds": 9, **day,
                                         "item_origin_node": OTHER})  # another town's item: not ours to count
    await peer.settle()
    got = (await node.call(f.EP_ABROAD, f.AbroadQuery(actor=CLERK)))["rows"]
    assert got == [{"item_id": item["id"], "title": "防災訓練のお知らせ", "town": PEER, "day": "2026-12-07",
                    "plays": 5, "seconds": 60}]

    js = node.nc.jetstream()
    dlq = subjects.dlq_stream(NODE)
    before = (await js.stream_info(dlq)).state.messages
    # The peer speaks for another town's plays, and for another town's offer: refused, dead-lettered.
    await peer.publish("PlaysReported", {"town": OTHER, "plays": 99, "seconds": 990, **day})
    await peer.publish("ContentOffered", offer_of(PEER_ITEM, b"x", origin_node=OTHER))
    await peer.settle()
    for _ in range(100):
        if (await js.stream_info(dlq)).state.messages - before == 2:
            break
        await asyncio.sleep(0.05)
    assert (await js.stream_info(dlq)).state.messages - before == 2
    codes = [((await js.get_msg(dlq, seq)).headers or {}).get(subjects.HDR_ERROR_CODE)
             for seq in range(before + 1, before + 3)]
    assert codes == ["403", "403"]
    assert (await node.call(f.EP_ABROAD, f.AbroadQuery(actor=CLERK)))["rows"] == got
    assert (await node.call(f.EP_OFFERS, f.OffersQuery(actor=CLERK)))["offers"] == []
    async with node.svc.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(fed_plays))).scalar_one() == 1


def test_a_local_day_is_japans() -> None:
    assert federation.local_day(NOW.replace(hour=14, minute=59)) == "2026-12-07"
    assert federation.local_day(NOW.replace(hour=15, minute=0)) == "2026-12-08"
