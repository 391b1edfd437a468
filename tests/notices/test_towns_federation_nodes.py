"""Other towns' public notices across two real nodes (issue 18 point 3): each node its own nats-server (JetStream
domain = node id) joined as a leafnode to a hub with one account per node, its source guard, and its notices
service alone (SQLite). A person at B follows A; A's notices to everyone arrive in their inbox at B once, with
their corrections and withdrawal; a person at B who does not follow A gets nothing; a targeted notice of A never
leaves A; an event of A speaking for another town's notice, or as another town, is dead-lettered at B."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from sqlalchemy import select

from services.notices.app import NoticesService
from services.notices.models import inbox_entries, items
from services.notices.towns import DURABLE, dedup_key
from tests.notices.helpers import MemberTowns
from tests.support.bus import wait_for
from tests.support.federation_hub import leaf_config, start_guard, start_hub
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import Envelope, utcnow
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts import notices_towns as tc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import NatsServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow,
              pytest.mark.xdist_group("federation")]  # one federation at a time, one for the module
A, B = "tsurugashima", "suginami"
CLERK_A = Actor(user_id="user-clerk-a01", global_handle=f"clerk@{A}", display_name="広報 職員", roles=("staff",))
CHIEF_A = Actor(user_id="user-chief-a01", global_handle=f"chief@{A}", display_name="広報 課長", roles=("staff",))
HANAKO_B = Actor(user_id="user-hanako-b1", global_handle=f"hanako@{B}", display_name="杉並 花子")
TARO_B = Actor(user_id="user-taro-b001", global_handle=f"taro@{B}", display_name="杉並 太郎")


def act(who: Actor) -> dict[str, Any]:
    return who.model_dump(mode="json")


@dataclass
class Town:
    name: str
    nats: NatsServer
    svc: NoticesService
    nc: NATS

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(self.name, c.SERVICE, endpoint), payload, timeout=15)

    async def inbox(self, who: Actor) -> list[dict[str, Any]]:
        return list((await self.call(c.EP_INBOX_LIST, {"actor": act(who)}))["items"])

    def consumer(self) -> Any:
        return next(k for k in self.svc.consumers if k.spec.durable == DURABLE)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def towns(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Town]]:
    tmp: Path = tmp_path_factory.mktemp("towns")
    hub = start_hub(tmp, (A, B))
    started: dict[str, Town] = {}
    guards: list[Any] = []
    try:
        for town in (A, B):
            ns = NatsServer(node_id=town, data_dir=tmp / town / "nats", extra_config=leaf_config(town, hub)).start()
            guards.append(await start_guard(town, ns.url))
            peers = MemberTowns({p: f"https://{p}.example.jp" for p in (A, B) if p != town})
            svc = NoticesService(ServiceSettings(service="notices", node_id=town, nats_url=ns.url,
                                                 data_dir=str(tmp / town), federation_refresh_seconds=0.5),
                                 poll_every=None, send_every=0.2, member_towns=peers)
            await svc.start()
            started[town] = Town(town, ns, svc, await nats.connect(ns.url, max_reconnect_attempts=-1,
                                                                 reconnect_time_wait=0.3))
        yield started
    finally:
        for t in started.values():
            with contextlib.suppress(Exception):
                await t.nc.close()
            with contextlib.suppress(Exception):
                await t.svc.stop()
        for g in guards:
            await g.stop()
        for t in started.values():
            t.nats.stop()
        hub.stop()


async def sent(town: Town, notice: dict[str, Any]) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        got = await town.call(c.EP_NOTICE_GET, {"actor": act(CLERK_A), "notice_id": notice["id"]})
        return got if got["state"] == "sent" else None
    return await wait_for(done, f"notice {notice['title']} sent at {town.name}", timeout=20)


async def test_a_followers_inbox_gets_the_peers_public_notice_once_with_its_changes(towns: dict[str, Town]) -> None:
    a, b = towns[A], towns[B]
    await b.call(tc.EP_TOWNS_FOLLOW, {"actor": act(HANAKO_B), "node": A})

    async def sourced() -> bool:
        info = await b.nc.jetstream().stream_info(subjects.fed_service_stream(B, tc.PUBLIC))
        return any(s.name == subjects.evt_stream(A, tc.PUBLIC) for s in info.config.sources or [])
    await wait_for(sourced, "B sources A's public notices once someone at B follows A")

    # A targeted notice first, then one to everyone: the stream keeps its order, so once the second has arrived
    # at B, the first would have too had it left A.
    targeted = await a.call(c.EP_NOTICE_CREATE, {"actor": act(CLERK_A), "target": {"kind": "stage", "value": "senior"},
                                                 "title": "高齢者のみなさまへ", "body": "敬老会のご案内"})
    await sent(a, targeted)
    start = utcnow() + timedelta(days=10)
    public = await a.call(c.EP_NOTICE_CREATE, {
        "actor": act(CLERK_A), "target": {"kind": "everyone"}, "title": "防災訓練のお知らせ",
        "body": "市内全域で実施します",
        "links": [{"title": "詳細", "url": "https://tsurugashima.example.jp/bousai"},
                  {"title": "受付", "url": "/inbox"}],
        "valid_from": start.isoformat(), "valid_until": (start + timedelta(hours=3)).isoformat()})
    await sent(a, public)

    async def arrived() -> list[dict[str, Any]]:
        return await b.inbox(HANAKO_B)
    [got] = await wait_for(arrived, "A's public notice in the follower's inbox at B")
    assert (got["title"], got["kind"], got["origin_node"]) == ("防災訓練のお知らせ", tc.KIND_TOWN_NOTICE, A)
    detail = await b.call(c.EP_INBOX_GET, {"actor": act(HANAKO_B), "item_id": got["id"]})
    assert detail["body"] == "市内全域で実施します" and detail["valid_from"] is not None
    assert [ln["url"] for ln in detail["links"]] == ["https://tsurugashima.example.jp/bousai"]  # A's paths are A's
    assert await b.inbox(TARO_B) == []  # not a follower of A

    # The same event again (A's relay publishing once more after the stream's duplicate window): applied once.
    js_a = a.nc.jetstream()
    last = await js_a.get_last_msg(subjects.evt_stream(A, tc.PUBLIC),
                                   subjects.evt(A, tc.PUBLIC, "public_notice_published"))
    duplicates = b.consumer().stats.duplicates
    await js_a.publish(last.subject, last.data, headers={subjects.HDR_MSG_ID: f"again-{uuid.uuid4()}"})

    async def seen_again() -> bool:
        return bool(b.consumer().stats.duplicates > duplicates)
    await wait_for(seen_again, "the redelivered event found in B's consumer inbox")
    async with b.svc.sessions() as s:
        rows = (await s.execute(select(items.c.id).where(items.c.dedup_key == dedup_key(A, public["id"])))).all()
        entries = (await s.execute(select(inbox_entries.c.person).where(inbox_entries.c.item_id == got["id"]))).all()
        carried = {r.ref for r in await s.execute(select(items.c.ref))}
    assert len(rows) == 1 and [e.person for e in entries] == [HANAKO_B.global_handle]
    assert targeted["id"] not in carried  # the targeted notice never reached B ...
    events_a = await js_a.stream_info(subjects.evt_stream(A, tc.PUBLIC))
    assert events_a.state.messages == 2  # ... nor the stream B sources: A's public notice and its repeat

    # A corrects, then withdraws: the follower's copy follows.
    await a.call(c.EP_NOTICE_CORRECT, {"actor": act(CHIEF_A), "notice_id": public["id"],
                                       "title": "防災訓練のお知らせ（日時訂正）", "body": "雨天順延です"})

    async def corrected() -> bool:
        d = await b.call(c.EP_INBOX_GET, {"actor": act(HANAKO_B), "item_id": got["id"]})
        return bool(d["version"] == 2 and d["title"] == "防災訓練のお知らせ（日時訂正）"
                    and d["body"] == "雨天順延です")
    await wait_for(corrected, "A's correction reached B")
    await a.call(c.EP_NOTICE_WITHDRAW, {"actor": act(CHIEF_A), "notice_id": public["id"]})

    async def withdrawn() -> bool:
        return bool((await b.inbox(HANAKO_B))[0]["withdrawn"])
    await wait_for(withdrawn, "A's withdrawal reached B")
    assert len(await b.inbox(HANAKO_B)) == 1 and await b.inbox(TARO_B) == []


async def test_a_peer_speaking_for_another_towns_notice_is_dead_lettered(towns: dict[str, Town]) -> None:
    a, b = towns[A], towns[B]
    await b.call(tc.EP_TOWNS_FOLLOW, {"actor": act(TARO_B), "node": A})
    async with b.svc.sessions() as s:
        before = sorted(tuple(r) for r in await s.execute(select(items.c.id, items.c.version, items.c.withdrawn_at)))
    dead = b.consumer().stats.dead_lettered
    js_a = a.nc.jetstream()
    forged = tc.PublicNoticePublished(notice_id=str(uuid.uuid4()), origin_node="shibuya", version=1,
                                      title="偽のお知らせ", body="A が渋谷区の名で", at=utcnow())
    # A (its operator, on its own server) announces a notice of shibuya's on A's own subject ...
    env = forged.envelope(node=A)
    await js_a.publish(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: env.id})
    # ... and as shibuya itself, on A's subject.
    other = Envelope(type=env.type, version=env.version, node="shibuya", service=env.service,
                     data={**env.data, "notice_id": str(uuid.uuid4())})
    await js_a.publish(env.subject, other.to_bytes(), headers={subjects.HDR_MSG_ID: other.id})

    async def both_dead() -> bool:
        return bool(b.consumer().stats.dead_lettered >= dead + 2)
    await wait_for(both_dead, "both forged events dead-lettered at B")
    letter = await b.nc.jetstream().get_last_msg(subjects.dlq_stream(B), subjects.dlq(B, c.SERVICE, DURABLE))
    assert letter.headers is not None and "arrived on" in letter.headers[subjects.HDR_ERROR]  # the second: as shibuya
    async with b.svc.sessions() as s:
        after = sorted(tuple(r) for r in await s.execute(select(items.c.id, items.c.version, items.c.withdrawn_at)))
    assert after == before  # nothing changed at B
    assert all(i["title"] != "偽のお知らせ" for i in await b.inbox(TARO_B))
