"""The directory of communities across towns between three real nodes joined by the accounts hub: a community
opened at tsurugashima appears in suginami's directory (and shibuya's), by town and category, linking to its page at
tsurugashima's public URL; a community that existed before the directory is listed at the next start, once; a
listing suginami forges for tsurugashima is dead-lettered there (403) and changes nothing; a person of suginami
joins tsurugashima's community with their home ID (an Actor `name@suginami`, as federated login yields at
tsurugashima); closed at tsurugashima, it leaves the others' directories.

Each node: its own nats-server (JetStream domain = node id, a leafnode of the hub with the node's deny lists), its
source guard, and only the sns service (SQLite). The member list the trust anchor would give is handed to each
service directly (DirectoryLink.set_towns, what its anchor loop calls)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from sqlalchemy import select

from services.sns.app import SnsService
from services.sns.directory_models import dir_announced, dir_entries
from tests.support.bus import wait_for
from tests.support.federation_hub import leaf_config, start_guard, start_hub
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import Envelope, new_id
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts import sns_directory as d
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import NatsServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow,
              pytest.mark.xdist_group("federation")]  # one federation at a time, one for the module

A, B, C = "tsurugashima", "suginami", "shibuya"
URLS = {A: "https://tsurugashima.example.jp", B: "https://suginami.example.jp", C: "https://shibuya.example.jp"}


def resident(node: str, who: str) -> Actor:
    return Actor(user_id=f"user-{who}-{node}"[:32], global_handle=f"{who}@{node}", display_name=f"{node} {who}")


@dataclass
class Node:
    name: str
    nats: NatsServer
    svc: SnsService
    nc: NATS
    tmp: Path

    async def call(self, endpoint: str, payload: Any, timeout: float = 15) -> Any:
        return await rpc.call(self.nc, subjects.svc(self.name, c.SERVICE, endpoint), payload, timeout=timeout)

    async def directory(self, **query: Any) -> dict[str, Any]:
        return await self.call(d.EP_DIRECTORY_LIST, d.DirectoryQuery(**query))

    async def names(self, **query: Any) -> list[str]:
        return [e["name"] for e in (await self.directory(**query))["entries"]]

    async def rows(self, table: Any) -> list[tuple[Any, ...]]:
        async with self.svc.sessions() as s:
            return sorted(tuple(r) for r in await s.execute(select(table)))


def settings(town: str, tmp: Path, url: str) -> ServiceSettings:
    return ServiceSettings(service="sns", node_id=town, nats_url=url, data_dir=str(tmp / town),
                           public_url=URLS[town])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def towns(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Node]]:
    tmp: Path = tmp_path_factory.mktemp("sns_directory")
    hub = start_hub(tmp, (A, B, C))
    guards: list[Any] = []
    nodes: dict[str, Node] = {}
    try:
        for town in (A, B, C):
            ns = NatsServer(node_id=town, data_dir=tmp / town / "nats", extra_config=leaf_config(town, hub)).start()
            guards.append(await start_guard(town, ns.url))
            svc = SnsService(settings(town, tmp, ns.url))
            await svc.start()
            nodes[town] = Node(town, ns, svc, await nats.connect(ns.url, max_reconnect_attempts=-1,
                                                                 reconnect_time_wait=0.3), tmp)
        for town, node in nodes.items():
            await node.svc.directory.set_towns({t: u for t, u in URLS.items() if t != town})
        yield nodes
    finally:
        for node in nodes.values():
            await node.nc.close()
            with contextlib.suppress(Exception):
                await node.svc.stop()
        for guard in guards:
            with contextlib.suppress(Exception):
                await guard.stop()
        for node in nodes.values():
            node.nats.stop()
        hub.stop()


async def settled(node: Node) -> bool:
    """The node's directory consumer has acknowledged everything sourced so far (it dead-letters, then acks)."""
    info = await node.nc.jetstream().consumer_info(subjects.fed_service_stream(node.name, d.EVENTS), "sns-directory")
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_listed_at_a_found_at_b_by_town_and_category_then_closed(towns: dict[str, Node]) -> None:
    a, b, other = towns[A], towns[B], towns[C]
    leader = resident(A, "hanako")
    garden = await a.call(c.EP_COMMUNITY_OPEN, c.CommunityOpen(
        actor=leader, name="鶴ヶ島まちなか菜園", description="駅前の空き地で野菜を育てます", categories=["npo-3"]))
    walk = await b.call(c.EP_COMMUNITY_OPEN, c.CommunityOpen(
        actor=resident(B, "taro"), name="杉並さんぽの会", description="週末に歩きます", categories=["npo-2"]))

    async def b_sees_garden() -> bool:
        return "鶴ヶ島まちなか菜園" in await b.names()

    assert await wait_for(b_sees_garden, "B's directory lists A's community", timeout=30)
    [entry] = (await b.directory())["entries"]
    assert entry == {"town": A, "community_id": garden["id"], "name": "鶴ヶ島まちなか菜園",
                     "description": "駅前の空き地で野菜を育てます", "categories": ["npo-3"], "members": 0,
                     "url": f"{URLS[A]}/communities/{garden['id']}", "listed_at": entry["listed_at"]}
    assert (await b.directory())["towns"] == [A]  # its own community is not in its directory of other towns
    assert await wait_for(lambda: _has(other, "杉並さんぽの会"), "C lists B's community", timeout=30)
    assert set(await other.names()) == {"鶴ヶ島まちなか菜園", "杉並さんぽの会"}
    assert await other.names(town=A) == ["鶴ヶ島まちなか菜園"]
    assert await other.names(category="npo-2") == ["杉並さんぽの会"]
    assert await other.names(town=B, category="npo-3") == []
    before = await b.rows(dir_entries)
    with pytest.raises(errors.BadRequest):
        await b.directory(category="npo-99")
    assert await b.rows(dir_entries) == before

    # A person of B joins A's community with B's home ID: at A they are an Actor `name@suginami` (federated login).
    visitor = Actor(user_id="user-local-at-tsuru-01", global_handle=f"jiro@{B}", display_name="杉並 次郎")
    joined = await a.call(c.EP_COMMUNITY_JOIN, c.CommunityAction(actor=visitor, community_id=garden["id"]))
    assert (joined["members"], joined["my_role"]) == (2, "member")
    members = (await a.call(c.EP_COMMUNITY_MEMBERS, c.CommunityQuery(community_id=garden["id"])))["members"]
    assert [m["global_handle"] for m in members] == [leader.global_handle, f"jiro@{B}"]

    # Closed at A: it leaves B's and C's directories.
    await a.call(c.EP_COMMUNITY_CLOSE, c.CommunityAction(actor=leader, community_id=garden["id"]))

    async def gone_everywhere() -> bool:
        return "鶴ヶ島まちなか菜園" not in await b.names() + await other.names()

    assert await wait_for(gone_everywhere, "the closed community leaves the directories", timeout=30)
    assert await other.names() == ["杉並さんぽの会"]
    assert walk["id"] in {r[1] for r in await other.rows(dir_entries)}


async def _has(node: Node, name: str) -> bool:
    return name in await node.names()


async def test_a_listing_b_forges_for_a_is_dead_lettered_and_changes_nothing(towns: dict[str, Node]) -> None:
    a, b = towns[A], towns[B]
    await b.call(c.EP_COMMUNITY_OPEN, c.CommunityOpen(
        actor=resident(B, "yuki"), name="杉並子ども食堂", description="", categories=["npo-2"]))
    assert await wait_for(lambda: _has(a, "杉並子ども食堂"), "A lists B's community", timeout=30)
    assert await wait_for(lambda: settled(a), "A's directory consumer has acked", timeout=30)
    entries = await a.rows(dir_entries)
    js_a, js_b = a.nc.jetstream(), b.nc.jetstream()
    dlq = subjects.dlq_stream(A)
    dead_before = (await js_a.stream_info(dlq)).state.messages
    # B publishes, on its own stream, a listing that claims to be tsurugashima's (a fake community of A's).
    forged = Envelope(id=new_id(), type="CommunityListed", node=B, service=d.EVENTS, data=d.CommunityListed(
        community_id=new_id(), origin_node=A, name="偽の鶴ヶ島コミュニティ", description="ここから登録",
        categories=["npo-1"], members=90, url="https://phish.example/", at=datetime.now(UTC),
    ).model_dump(mode="json"))
    await js_b.publish(subjects.evt(B, d.EVENTS, "community_listed"), forged.to_bytes(),
                       headers={subjects.HDR_MSG_ID: forged.id})

    async def dead() -> int:
        return (await js_a.stream_info(dlq)).state.messages - dead_before

    assert await wait_for(dead, "the forged listing is dead-lettered at A", timeout=30)
    got = await js_a.get_msg(dlq, (await js_a.stream_info(dlq)).state.last_seq)
    assert (got.headers or {}).get(subjects.HDR_ERROR_CODE) == "403"
    assert await wait_for(lambda: settled(a), "A's directory consumer has acked the forgery", timeout=30)
    assert await dead() == 1
    assert await a.rows(dir_entries) == entries  # nothing changed
    assert "偽の鶴ヶ島コミュニティ" not in await a.names() + await towns[C].names()


async def test_communities_that_existed_before_are_listed_at_the_next_start_once(towns: dict[str, Node]) -> None:
    """A node upgraded to the directory lists its existing communities at its first start; a restart lists
    nothing again. (Simulated: A forgets what it announced of one community, as before the upgrade.)"""
    a, b = towns[A], towns[B]
    old = await a.call(c.EP_COMMUNITY_OPEN, c.CommunityOpen(
        actor=resident(A, "ken"), name="鶴ヶ島囲碁クラブ", description="", categories=["npo-4"]))
    assert await wait_for(lambda: _has(b, "鶴ヶ島囲碁クラブ"), "B lists it", timeout=30)
    async with a.svc.sessions() as s, s.begin():
        await s.execute(dir_announced.delete().where(dir_announced.c.community_id == old["id"]))
    async with b.svc.sessions() as s, s.begin():
        await s.execute(dir_entries.delete().where(dir_entries.c.community_id == old["id"]))
    assert await a.svc.directory.sync() == 1  # what the start does (DirectoryLink.prepare)
    assert await a.svc.directory.sync() == 0  # and again: nothing
    assert await wait_for(lambda: _has(b, "鶴ヶ島囲碁クラブ"), "B lists it again", timeout=30)
