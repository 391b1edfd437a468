"""The directory of communities across towns at one node, on SQLite and PostgreSQL (services/sns/directory.py): what
this node announces of its communities and when (in the change's own transaction; the whole comparison idempotent),
and what it keeps and shows of other towns' listings. The sns service runs on a real nats-server; peers' listings
are applied as its consumer applies them (`keep`, after `PeerDirectoryHandler.decode` checked them)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from sqlalchemy import select, update

from services.sns import directory
from services.sns.app import SnsService
from services.sns.directory_models import dir_announced, dir_entries, dir_entry_categories, dir_towns
from services.sns.models import bus
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.consumer import Rejected
from towntip.kernel.bus.envelope import Envelope, new_id
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts import sns_directory as d
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

NODE = "tsurugashima"
PUBLIC = "https://tsurugashima.example.jp"
HANAKO = Actor(user_id="user-hanako-01", global_handle=f"hanako@{NODE}", display_name="山田 花子")
TABLES = (dir_towns, dir_announced, dir_entries, dir_entry_categories)


def person(i: int) -> Actor:
    return Actor(user_id=f"user-p{i:02d}", global_handle=f"p{i:02d}@{NODE}", display_name=f"住民 {i}")


@dataclass
class Node:
    nc: nats.NATS
    svc: SnsService

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=15)

    async def announced(self) -> list[dict[str, Any]]:
        async with self.svc.sessions() as s:
            rows = (await s.execute(select(bus.outbox.c.subject, bus.outbox.c.payload)
                                    .order_by(bus.outbox.c.seq))).all()
        return [json.loads(r.payload) for r in rows if r.subject.startswith(f"evt.{NODE}.{d.EVENTS}.")]

    async def snapshot(self) -> dict[str, list[str]]:
        async with self.svc.sessions() as s:
            return {t.name: sorted(repr(tuple(r)) for r in await s.execute(select(t))) for t in TABLES}

    async def sync(self, now: datetime) -> int:
        async with self.svc.sessions() as s, s.begin():
            return await directory.sync(s, node=NODE, public_url=PUBLIC, now=now)


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    url, schema = database
    svc = SnsService(ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                                     database_url=url, database_schema=schema or "", public_url=PUBLIC))
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_a_community_is_listed_updated_when_its_rounded_count_changes_and_unlisted(node: Node) -> None:
    garden = await node.call(c.EP_COMMUNITY_OPEN, c.CommunityOpen(
        actor=HANAKO, name="まちなか菜園", description="空き地で野菜を", categories=["npo-3"]))
    [listed] = await node.announced()
    assert listed["type"] == "CommunityListed" and listed["node"] == NODE
    assert listed["data"] == {"community_id": garden["id"], "origin_node": NODE, "name": "まちなか菜園",
                              "description": "空き地で野菜を", "categories": ["npo-3"], "members": 0,
                              "url": f"{PUBLIC}/communities/{garden['id']}", "at": listed["data"]["at"]}
    assert "hanako" not in json.dumps(listed)  # no person is named
    now = datetime.now(UTC)
    assert await node.sync(now) == 0  # the start's comparison: nothing new

    for i in range(1, 9):  # 9 members: still "fewer than ten", nothing to tell
        await node.call(c.EP_COMMUNITY_JOIN, c.CommunityAction(actor=person(i), community_id=garden["id"]))
    assert len(await node.announced()) == 1
    await node.call(c.EP_COMMUNITY_JOIN, c.CommunityAction(actor=person(9), community_id=garden["id"]))
    updated = (await node.announced())[-1]
    assert (updated["type"], updated["data"]["members"]) == ("CommunityUpdated", 10)
    await node.call(c.EP_COMMUNITY_LEAVE, c.CommunityAction(actor=person(9), community_id=garden["id"]))
    assert (await node.announced())[-1]["data"]["members"] == 0
    assert await node.sync(now) == 0

    # Unchanged for REFRESH_DAYS: listed again (the streams keep 30 days; a town joining later hears of it).
    assert await node.sync(now + timedelta(days=d.REFRESH_DAYS, hours=1)) == 1
    assert (await node.announced())[-1]["type"] == "CommunityListed"

    await node.call(c.EP_COMMUNITY_CLOSE, c.CommunityAction(actor=HANAKO, community_id=garden["id"]))
    closed = (await node.announced())[-1]
    assert closed["type"] == "CommunityUnlisted" and closed["data"]["community_id"] == garden["id"]
    assert await node.sync(now + timedelta(days=40)) == 0  # a closed community is not listed again
    # A refused change announces nothing (the outbox row goes with the transaction).
    before = len(await node.announced())
    with pytest.raises(errors.Conflict):
        await node.call(c.EP_COMMUNITY_JOIN, c.CommunityAction(actor=person(20), community_id=garden["id"]))
    assert len(await node.announced()) == before


async def test_existing_communities_are_listed_once_by_the_first_comparison(node: Node) -> None:
    one = await node.call(c.EP_COMMUNITY_OPEN, c.CommunityOpen(actor=HANAKO, name="囲碁クラブ", categories=["npo-4"]))
    two = await node.call(c.EP_COMMUNITY_OPEN, c.CommunityOpen(actor=person(1), name="将棋の会", categories=["npo-4"]))
    await node.call(c.EP_COMMUNITY_CLOSE, c.CommunityAction(actor=person(1), community_id=two["id"]))
    async with node.svc.sessions() as s, s.begin():  # as before the directory existed
        await s.execute(dir_announced.delete())
    count = len(await node.announced())
    assert await node.sync(datetime.now(UTC)) == 1  # the open one; a closed one is never listed
    assert await node.sync(datetime.now(UTC)) == 0
    new = (await node.announced())[count:]
    assert [(e["type"], e["data"]["community_id"]) for e in new] == [("CommunityListed", one["id"])]


def listing(town: str, name: str, cats: list[str], **more: Any) -> d.CommunityListed:
    cid = more.pop("community_id", new_id())
    return d.CommunityListed(community_id=cid, origin_node=town, name=name, description=more.pop("description", ""),
                             categories=cats, members=more.pop("members", 3), url=f"https://x.example/{cid}",
                             at=datetime.now(UTC), **more)


async def test_other_towns_listings_by_town_and_category_linked_to_the_anchors_url(node: Node) -> None:
    now = datetime.now(UTC)
    walk = listing("suginami", "さんぽの会", ["npo-2", "npo-99"], members=27)
    food = listing("suginami", "こども食堂", ["npo-2"])
    garden = listing("shibuya", "屋上菜園", ["npo-7"])
    lost = listing("nerima", "練馬の会", ["npo-2"])  # a town the anchor no longer lists
    async with node.svc.sessions() as s, s.begin():
        await directory.record_towns(s, {"suginami": "https://suginami.example.jp/", "shibuya":
                                         "https://shibuya.example.jp", "evil": "javascript:alert(1)"}, now)
        for e in (walk, food, garden, lost):
            await directory.keep(s, e.origin_node, e, now)
    got = await node.call(d.EP_DIRECTORY_LIST, d.DirectoryQuery())
    assert got["towns"] == ["shibuya", "suginami"]  # not nerima (not a member now), nor "evil" (no web address)
    by_name = {e["name"]: e for e in got["entries"]}
    assert set(by_name) == {"さんぽの会", "こども食堂", "屋上菜園"}
    # the link is the member's URL as the anchor vouches for it, never the URL the listing carried
    assert by_name["さんぽの会"]["url"] == f"https://suginami.example.jp/communities/{walk.community_id}"
    assert by_name["さんぽの会"]["categories"] == ["npo-2"]  # an unknown category is dropped
    assert by_name["さんぽの会"]["members"] == 20  # rounded down again, whatever the peer said
    names = {e["name"] for e in (await node.call(d.EP_DIRECTORY_LIST, d.DirectoryQuery(town="suginami")))["entries"]}
    assert names == {"さんぽの会", "こども食堂"}
    only = await node.call(d.EP_DIRECTORY_LIST, d.DirectoryQuery(category="npo-7"))
    assert [e["name"] for e in only["entries"]] == ["屋上菜園"]

    # An update replaces what is shown; an unlisting removes it.
    async with node.svc.sessions() as s, s.begin():
        await directory.keep(s, "suginami", d.CommunityUpdated(**{**walk.model_dump(), "name": "さんぽ倶楽部",
                                                                  "categories": ["npo-7"]}), now)
        await directory.keep(s, "suginami", d.CommunityUnlisted(community_id=food.community_id,
                                                                origin_node="suginami", at=now), now)
    only = await node.call(d.EP_DIRECTORY_LIST, d.DirectoryQuery(category="npo-7"))
    assert sorted(e["name"] for e in only["entries"]) == ["さんぽ倶楽部", "屋上菜園"]
    assert [e["name"] for e in (await node.call(d.EP_DIRECTORY_LIST, d.DirectoryQuery(town="suginami")))[
        "entries"]] == ["さんぽ倶楽部"]

    # A listing not heard of for STALE_DAYS is no longer shown.
    async with node.svc.sessions() as s, s.begin():
        await s.execute(update(dir_entries).where(dir_entries.c.community_id == garden.community_id)
                        .values(seen_at=now - timedelta(days=d.STALE_DAYS + 1)))
    assert (await node.call(d.EP_DIRECTORY_LIST, d.DirectoryQuery(town="shibuya")))["entries"] == []

    # Refusals change nothing.
    before = await node.snapshot()
    with pytest.raises(errors.BadRequest):
        await node.call(d.EP_DIRECTORY_LIST, {"category": "npo-99"})
    with pytest.raises(errors.BadRequest):
        await node.call(d.EP_DIRECTORY_LIST, {"town": "Not A Node!"})
    with pytest.raises(errors.BadRequest):
        await node.call(d.EP_DIRECTORY_LIST, {"limit": d.LIST_MAX + 1})
    assert await node.snapshot() == before


@dataclass
class FakeMsg:
    subject: str
    data: bytes


def sourced(peer: str, token: str, type_: str, data: dict[str, Any]) -> FakeMsg:
    env = Envelope(id=new_id(), type=type_, node=peer, service=d.EVENTS, data=data)
    return FakeMsg(subjects.evt(peer, d.EVENTS, token), env.to_bytes())


def test_a_town_speaks_only_for_its_own_communities() -> None:
    handler = directory.PeerDirectoryHandler(NODE)
    own = listing("suginami", "さんぽの会", ["npo-2"]).model_dump(mode="json")
    key, item = handler.decode(sourced("suginami", "community_listed", "CommunityListed", own))  # type: ignore[arg-type]
    assert key.startswith("suginami:") and item["event"].name == "さんぽの会"
    forged = listing(NODE, "偽物", ["npo-2"]).model_dump(mode="json")  # suginami speaking for this node
    with pytest.raises(Rejected) as refused:
        handler.decode(sourced("suginami", "community_listed", "CommunityListed", forged))  # type: ignore[arg-type]
    assert refused.value.code == 403
    other = listing("shibuya", "他人の", ["npo-2"]).model_dump(mode="json")  # ... or for a third town
    with pytest.raises(Rejected) as refused:
        handler.decode(sourced("suginami", "community_listed", "CommunityListed", other))  # type: ignore[arg-type]
    assert refused.value.code == 403
    with pytest.raises(Rejected):  # a type on another type's subject
        handler.decode(sourced("suginami", "community_unlisted", "CommunityListed", own))  # type: ignore[arg-type]
    with pytest.raises(Rejected):  # too long a name: refused like a local one
        handler.decode(sourced("suginami", "community_listed", "CommunityListed",  # type: ignore[arg-type]
                               {**own, "name": "x" * 81}))
    _, item = handler.decode(sourced("suginami", "community_renamed", "CommunityRenamed", own))  # type: ignore[arg-type]
    assert item["event"] is None  # a newer peer's event: acknowledged, nothing applied


def test_a_town_is_shown_by_its_name_and_an_unknown_one_by_its_id() -> None:
    from gateway.portal.sns_directory import town_name

    assert (town_name("suginami", "ja"), town_name("suginami", "en")) == ("杉並区", "Suginami City")
    assert town_name("newtown", "ja") == "newtown"  # a member town the table does not know: its node id
