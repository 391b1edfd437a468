"""Signage content between two real nodes joined by the accounts hub: tsurugashima offers an item, suginami's
staff adopt it (its bytes fetched from tsurugashima's gateway and checked again), approve it with a second staff
member, play it, and the plays go back to tsurugashima once, even when a play and the report are delivered again; a
report suginami forges for another town is dead-lettered at tsurugashima and changes nothing.

Each node: its own nats-server (JetStream domain = node id, a leafnode of the hub with the node's deny lists), its
source guard, and only the signage service (SQLite); tsurugashima also serves its gateway (the public media route).
The member list the trust anchor would give is handed to each service directly (FederationLink.set_peers, what
its anchor loop calls)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS

from gateway.app import create_app
from services.signage.app import SignageService
from tests.signage.helpers import photo
from tests.support.bus import wait_for
from tests.support.federation_hub import leaf_config, start_guard, start_hub
from tests.support.http_server import serve
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import Envelope, new_id
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import signage_federation as f
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import GatewaySettings, ServiceSettings
from towntip.node.natsd import NatsServer, free_port

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow,
              pytest.mark.xdist_group("federation")]  # one federation at a time, one for the module

A, B, OTHER = "tsurugashima", "suginami", "shibuya"


def staff(node: str, who: str) -> Actor:
    return Actor(user_id=f"user-{who}-{node}"[:32], global_handle=f"{who}@{node}", display_name=f"{node} {who}",
                 roles=("staff",))


@dataclass
class Node:
    name: str
    nats: NatsServer
    svc: SignageService
    nc: NATS

    async def call(self, endpoint: str, payload: Any, timeout: float = 15) -> Any:
        return await rpc.call(self.nc, subjects.svc(self.name, c.SERVICE, endpoint), payload, timeout=timeout)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def towns(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Node]]:
    tmp: Path = tmp_path_factory.mktemp("signage_federation")
    hub = start_hub(tmp, (A, B))
    stoppable: list[Any] = []
    servers: list[Any] = []
    nodes: dict[str, Node] = {}
    bases = {A: f"http://127.0.0.2:{free_port()}", B: f"http://127.0.0.3:{free_port()}"}
    try:
        for town in (A, B):
            ns = NatsServer(node_id=town, data_dir=tmp / town / "nats", extra_config=leaf_config(town, hub)).start()
            stoppable.append(await start_guard(town, ns.url))
            svc = SignageService(ServiceSettings(service="signage", node_id=town, nats_url=ns.url,
                                                 data_dir=str(tmp / town), public_url=bases[town]))
            await svc.start()
            stoppable.append(svc)
            nodes[town] = Node(town, ns, svc, await nats.connect(ns.url, max_reconnect_attempts=-1,
                                                                 reconnect_time_wait=0.3))
        host, port = bases[A].removeprefix("http://").split(":")
        servers.append(await serve(create_app(GatewaySettings(
            node_id=A, nats_url=nodes[A].nats.url, services="signage", data_dir=str(tmp / A / "gw"),
            public_url=bases[A], request_timeout=15)), host, int(port)))
        for town, node in nodes.items():
            await node.svc.federation.set_peers({t: u for t, u in bases.items() if t != town})
        yield nodes
    finally:
        for node in nodes.values():
            await node.nc.close()
        for server, _task in servers:
            server.should_exit = True
        await asyncio.gather(*(t for _s, t in servers), return_exceptions=True)
        for svc in reversed(stoppable):
            with contextlib.suppress(Exception):
                await svc.stop()
        for node in nodes.values():
            node.nats.stop()
        hub.stop()


async def offered_item(a: Node) -> dict[str, Any]:
    """An approved photo of A, uploaded by one staff member, approved by another, offered."""
    upload_id = str(uuid.uuid4())
    clerk, chief = staff(A, "clerk"), staff(A, "chief")
    await a.call(c.EP_UPLOAD_PART, c.UploadPart(actor=clerk, upload_id=upload_id, seq=0,
                                                data_b64=base64.b64encode(photo(640, 360)).decode()))
    item = await a.call(c.EP_CONTENT_CREATE, c.ContentCreate(
        actor=clerk, upload_id=upload_id, parts=1, title="鶴ヶ島まつり", duration_s=15, valid_from=datetime.now(UTC)))
    await a.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=chief, item_id=item["id"]))
    return await a.call(f.EP_OFFER, f.OfferSet(actor=clerk, item_id=item["id"]))


async def play(node: Node, screen: str, item_id: str, play_id: str, at: datetime) -> None:
    """A play as the screen's player sends it (no Nats-Msg-Id: a re-send after days is past the stream's window)."""
    body = c.Play(play_id=play_id, item_id=item_id, screen=screen, started_at=at, ended_at=at + timedelta(seconds=15))
    ack = await node.nc.request(c.plays_subject(node.name, screen), body.model_dump_json().encode(), timeout=5)
    assert b"stream" in ack.data, ack.data


async def test_offer_adopt_approve_and_plays_reported_back_once_a_forged_report_refused(
        towns: dict[str, Node]) -> None:
    a, b = towns[A], towns[B]
    mine = await offered_item(a)
    assert mine["offered"] is True

    async def offers() -> list[dict[str, Any]]:
        return (await b.call(f.EP_OFFERS, f.OffersQuery(actor=staff(B, "clerk"))))["offers"]

    assert await wait_for(offers, "B sees A's offer", timeout=30)
    [offer] = await offers()
    assert (offer["origin_node"], offer["item_id"], offer["title"]) == (A, mine["id"], "鶴ヶ島まつり")

    # B adopts: the bytes come from A's gateway; the copy waits for a second staff member of B.
    local = await b.call(f.EP_ADOPT, f.AdoptRequest(actor=staff(B, "clerk"), origin_node=A, item_id=mine["id"]),
                         timeout=60)
    assert (local["status"], local["source"], local["origin_node"]) == ("pending", "peer", A)
    with pytest.raises(errors.ServiceError) as refused:
        await b.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=staff(B, "clerk"), item_id=local["id"]))
    assert refused.value.error_code == c.SAME_APPROVER.code
    await b.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=staff(B, "chief"), item_id=local["id"]))

    # Two plays on B's screen, the second sent twice (the player's spool after a lost ack): two plays counted.
    at = datetime.now(UTC).replace(microsecond=0)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await play(b, "ekimae-1", local["id"], first, at)
    await play(b, "ekimae-1", local["id"], second, at + timedelta(minutes=1))
    await play(b, "ekimae-1", local["id"], second, at + timedelta(minutes=1))

    async def abroad() -> list[dict[str, Any]]:
        return (await a.call(f.EP_ABROAD, f.AbroadQuery(actor=staff(A, "clerk"))))["rows"]

    assert await wait_for(lambda: _plays(abroad, 2), "A hears of B's two plays", timeout=30)
    day = (await abroad())[0]["day"]
    assert await abroad() == [{"item_id": mine["id"], "title": "鶴ヶ島まつり", "town": B, "day": day, "plays": 2,
                               "seconds": 30}]  # per town and day; no screen of B named

    # B's report delivered again (its relay re-publishing after a crash, past the stream's window): applied once.
    js_b = b.nc.jetstream()
    evt = subjects.evt_stream(B, f.EVENTS)
    reports = [m for m in [await js_b.get_msg(evt, seq) for seq in
                           range(1, (await js_b.stream_info(evt)).state.last_seq + 1)]
               if m.subject.endswith(".plays_reported")]
    # One report per change of the day's totals: one, or two when B's consumer committed the plays apart (1, then 2).
    assert 1 <= len(reports) <= 2
    await js_b.publish(reports[-1].subject, reports[-1].data, headers={subjects.HDR_MSG_ID: new_id()})
    # And a report B forges for another town: dead-lettered at A, nothing changes.
    dlq = subjects.dlq_stream(A)
    js_a = a.nc.jetstream()
    before = (await js_a.stream_info(dlq)).state.messages
    forged = Envelope(id=new_id(), type="PlaysReported", node=B, service=f.EVENTS, data=f.PlaysReported(
        town=OTHER, item_origin_node=A, item_id=mine["id"], day=day, plays=500, seconds=7500).model_dump(mode="json"))
    await js_b.publish(subjects.evt(B, f.EVENTS, "plays_reported"), forged.to_bytes(),
                       headers={subjects.HDR_MSG_ID: forged.id})

    async def dead() -> int:
        return (await js_a.stream_info(dlq)).state.messages - before

    assert await wait_for(dead, "the forged report is dead-lettered at A", timeout=30)
    got = await js_a.get_msg(dlq, (await js_a.stream_info(dlq)).state.last_seq)
    assert (got.headers or {}).get(subjects.HDR_ERROR_CODE) == "403"
    fed = subjects.fed_service_stream(A, f.EVENTS)

    async def settled() -> bool:
        # The consumer dead-letters first and acks after: wait for the ack rather than race it.
        info = await js_a.consumer_info(fed, "signage-peer-facts")
        return info.num_pending == 0 and info.num_ack_pending == 0

    assert await wait_for(settled, "A's signage consumer has acked every report", timeout=30)
    assert await dead() == 1
    reported = [await js_a.get_msg(fed, seq) for seq in range(1, (await js_a.stream_info(fed)).state.last_seq + 1)]
    # all arrived: B's reports, the one delivered again, the forged one
    assert [m.subject for m in reported].count(subjects.evt(B, f.EVENTS, "plays_reported")) == len(reports) + 2
    assert await abroad() == [{"item_id": mine["id"], "title": "鶴ヶ島まつり", "town": B, "day": day, "plays": 2,
                               "seconds": 30}]


async def _plays(abroad: Any, n: int) -> bool:
    rows = await abroad()
    return bool(rows) and rows[0]["plays"] == n
