"""The sns service (communities, posts and comments, friendships, My Page's summary, deleted accounts) over a real
nats-server, on SQLite and PostgreSQL. The service runs in this process (SnsService); every call goes through NATS
as the gateway's would (svc.<node>.sns.*), with the person inside the request as an Actor. Every refusal is checked
to change nothing (a snapshot of every table before and after)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from sqlalchemy import select

from services.sns import communities as cm
from services.sns.app import SnsService
from services.sns.models import (
    bus,
    comments,
    communities,
    community_categories,
    friend_requests,
    friendships,
    likes,
    memberships,
    people,
    posts,
    request_log,
)
from tests.support.bus import wait_for
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import Envelope
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import mypage as mp
from towntip.kernel.contracts import privacy as pv
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

NODE = "testnode"
HANAKO = Actor(user_id="user-hanako-01", global_handle=f"hanako@{NODE}", display_name="山田 花子")
TARO = Actor(user_id="user-taro-0001", global_handle=f"taro@{NODE}", display_name="鈴木 太郎")
JIRO = Actor(user_id="user-jiro-0001", global_handle=f"jiro@{NODE}", display_name="佐藤 次郎")
# A person of another node, logged in here by cross-node SSO: a local user id, a handle of their home node.
AKI = Actor(user_id="user-aki-00001", global_handle="aki@suginami", display_name="杉並 亜希")
TABLES = (people, communities, community_categories, memberships, posts, comments, friend_requests, friendships,
          request_log)


def a(who: Actor) -> dict[str, Any]:
    return who.model_dump(mode="json")


class Node:
    def __init__(self, nc: nats.NATS, svc: SnsService) -> None:
        self.nc, self.svc = nc, svc

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=15)

    async def refused(self, kind: type[errors.ServiceError], endpoint: str, payload: Any,
                      match: str | None = None) -> str:
        """The call is refused with this kind of error (and `match` in its reason), and nothing changed."""
        before = await self.snapshot()
        with pytest.raises(kind, match=match) as info:
            await self.call(endpoint, payload)
        assert await self.snapshot() == before, f"{endpoint} was refused but changed something"
        return info.value.reason

    async def snapshot(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async with self.svc.sessions() as s:
            for table in TABLES:
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
            out["outbox"] = sorted(r[0] for r in await s.execute(select(bus.outbox.c.event_id)))
        return out

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        async with self.svc.sessions() as s:
            rows = (await s.execute(select(bus.outbox.c.subject, bus.outbox.c.payload)
                                    .order_by(bus.outbox.c.seq))).all()
        return [(r.subject, json.loads(r.payload)) for r in rows]

    async def open(self, who: Actor, name: str, cats: list[str] | None = None) -> dict[str, Any]:
        return await self.call(c.EP_COMMUNITY_OPEN, {"actor": a(who), "name": name, "description": "説明",
                                                     "categories": cats or ["npo-3"]})

    async def join(self, who: Actor, cid: str) -> dict[str, Any]:
        return await self.call(c.EP_COMMUNITY_JOIN, {"actor": a(who), "community_id": cid})

    async def post(self, who: Actor, cid: str, title: str = "はじめまして", body: str = "よろしく") -> dict[str, Any]:
        return await self.call(c.EP_POST_CREATE, {"actor": a(who), "community_id": cid, "title": title, "body": body})


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    url, schema = database
    settings = ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "")
    svc = SnsService(settings)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_communities_open_list_join_leave_hand_over_and_close(node: Node) -> None:
    garden = await node.open(HANAKO, "まちなか菜園", ["npo-3", "pib-19", "npo-3"])
    assert garden["categories"] == ["npo-3", "pib-19"] and garden["members"] == 1 and garden["my_role"] == "leader"
    assert garden["leader"] == {"global_handle": HANAKO.global_handle, "display_name": HANAKO.display_name}
    # A person of another node logged in here opens one too.
    walk = await node.open(AKI, "Town Walk", ["npo-2"])
    assert walk["leader"]["global_handle"] == "aki@suginami"

    # Names are unique per node whatever the case or width.
    for same in ("town walk", "ＴＯＷＮ　ＷＡＬＫ", "  Town   Walk "):
        await node.refused(errors.Conflict, c.EP_COMMUNITY_OPEN, {
            "actor": a(TARO), "name": same, "categories": ["npo-1"]}, match="exists already")
    for bad in ({"name": "x", "categories": ["npo-1"]}, {"name": "ok name", "categories": []},
                {"name": "ok name", "categories": ["npo-99"]}, {"name": "n" * 81, "categories": ["npo-1"]},
                {"name": "ok name", "categories": ["npo-1"], "description": "d" * 2001},
                {"name": "ok name", "categories": [f"npo-{i}" for i in range(1, 7)]}):
        await node.refused(errors.BadRequest, c.EP_COMMUNITY_OPEN, {"actor": a(TARO), **bad})
    await node.refused(errors.BadRequest, c.EP_COMMUNITY_OPEN, {"name": "no actor", "categories": ["npo-1"]})

    listed = await node.call(c.EP_COMMUNITY_LIST, {})
    assert {x["name"] for x in listed["communities"]} == {"まちなか菜園", "Town Walk"}
    assert [x["name"] for x in (await node.call(c.EP_COMMUNITY_LIST, {"category": "pib-19"}))["communities"]] \
        == ["まちなか菜園"]
    assert [x["name"] for x in (await node.call(c.EP_COMMUNITY_LIST, {"search": "WALK"}))["communities"]] \
        == ["Town Walk"]
    assert (await node.call(c.EP_COMMUNITY_LIST, {"search": "%"}))["communities"] == []
    await node.refused(errors.BadRequest, c.EP_COMMUNITY_LIST, {"category": "npo-99"})

    cid = garden["id"]
    joined = await node.join(TARO, cid)
    assert joined["members"] == 2 and joined["my_role"] == "member"
    await node.refused(errors.Conflict, c.EP_COMMUNITY_JOIN, {"actor": a(TARO), "community_id": cid},
                       match="already")
    await node.join(AKI, cid)
    mine = await node.call(c.EP_COMMUNITY_LIST, {"member": a(AKI)})
    assert {(x["name"], x["my_role"]) for x in mine["communities"]} == {("まちなか菜園", "member"),
                                                                        ("Town Walk", "leader")}
    members = (await node.call(c.EP_COMMUNITY_MEMBERS, {"community_id": cid}))["members"]
    assert [(m["global_handle"], m["role"]) for m in members] == [
        (HANAKO.global_handle, "leader"), (TARO.global_handle, "member"), (AKI.global_handle, "member")]

    # Only the leader manages; the leader cannot leave without handing over.
    act = {"actor": a(TARO), "community_id": cid}
    await node.refused(errors.Forbidden, c.EP_COMMUNITY_REMOVE, {**act, "member": AKI.global_handle})
    await node.refused(errors.Forbidden, c.EP_COMMUNITY_HAND_OVER, {**act, "member": TARO.global_handle})
    await node.refused(errors.Forbidden, c.EP_COMMUNITY_CLOSE, act)
    lead = {"actor": a(HANAKO), "community_id": cid}
    await node.refused(errors.Conflict, c.EP_COMMUNITY_LEAVE, lead, match="hands the community")
    await node.refused(errors.NotFound, c.EP_COMMUNITY_HAND_OVER, {**lead, "member": JIRO.global_handle})
    await node.refused(errors.NotFound, c.EP_COMMUNITY_REMOVE, {**lead, "member": JIRO.global_handle})
    await node.refused(errors.Conflict, c.EP_COMMUNITY_REMOVE, {**lead, "member": HANAKO.global_handle})
    await node.refused(errors.Conflict, c.EP_COMMUNITY_LEAVE, {"actor": a(JIRO), "community_id": cid},
                       match="not a member")
    await node.refused(errors.NotFound, c.EP_COMMUNITY_JOIN,
                       {"actor": a(JIRO), "community_id": "00000000-0000-4000-8000-000000000000"})

    assert (await node.call(c.EP_COMMUNITY_REMOVE, {**lead, "member": AKI.global_handle}))["members"] == 2
    handed = await node.call(c.EP_COMMUNITY_HAND_OVER, {**lead, "member": TARO.global_handle})
    assert handed["leader"]["global_handle"] == TARO.global_handle and handed["my_role"] == "member"
    left = await node.call(c.EP_COMMUNITY_LEAVE, lead)
    assert left["members"] == 1 and left["my_role"] is None
    closed = await node.call(c.EP_COMMUNITY_CLOSE, {"actor": a(TARO), "community_id": cid})
    assert closed["status"] == "closed" and closed["closed_at"]

    # Closed: read-only, kept.
    await node.refused(errors.Conflict, c.EP_COMMUNITY_JOIN, {"actor": a(JIRO), "community_id": cid},
                       match="closed")
    await node.refused(errors.Conflict, c.EP_POST_CREATE, {"actor": a(TARO), "community_id": cid, "title": "t",
                                                           "body": "b"}, match="closed")
    await node.refused(errors.Conflict, c.EP_COMMUNITY_CLOSE, {"actor": a(TARO), "community_id": cid})
    assert (await node.call(c.EP_COMMUNITY_GET, {"community_id": cid}))["status"] == "closed"
    assert [x["name"] for x in (await node.call(c.EP_COMMUNITY_LIST, {"include_closed": False}))["communities"]] \
        == ["Town Walk"]

    kinds = [(s, e["type"], e["data"].get("why")) for s, e in await node.events() if ".sns." in s]
    assert kinds == [(f"evt.{NODE}.sns.community_opened", "CommunityOpened", None),
                     (f"evt.{NODE}.sns.community_opened", "CommunityOpened", None),
                     (f"evt.{NODE}.sns.community_closed", "CommunityClosed", "leader")]
    # The directory of other towns (services/sns/directory.py) hears of both, then of the close; the joins and
    # leaves change nothing it shows (the member count is rounded down to ten).
    assert [e["type"] for s, e in await node.events() if ".snsfed." in s] == [
        "CommunityListed", "CommunityListed", "CommunityUnlisted"]


async def test_posts_and_comments_members_write_authors_edit_leader_hides(node: Node) -> None:
    cid = (await node.open(HANAKO, "子ども食堂ネット", ["npo-2"]))["id"]
    await node.join(TARO, cid)
    # A non-member cannot post; bad input is refused.
    await node.refused(errors.Forbidden, c.EP_POST_CREATE, {"actor": a(JIRO), "community_id": cid, "title": "t",
                                                            "body": "b"}, match="members")
    for bad in ({"title": "", "body": "b"}, {"title": "t" * 121, "body": "b"}, {"title": "t", "body": "b" * 10001},
                {"title": "t", "body": "   "}):
        await node.refused(errors.BadRequest, c.EP_POST_CREATE, {"actor": a(TARO), "community_id": cid, **bad})

    first = await node.post(TARO, cid, "<script>alert(1)</script>", "本文")
    assert first["author"]["global_handle"] == TARO.global_handle and first["mine"]
    ids = [first["id"]] + [(await node.post(HANAKO, cid, f"お知らせ {i}"))["id"] for i in range(4)]

    # Newest first, a keyset cursor.
    page = await node.call(c.EP_POST_LIST, {"community_id": cid, "limit": 2})
    assert [p["id"] for p in page["posts"]] == ids[::-1][:2] and page["next"] == ids[3]
    page2 = await node.call(c.EP_POST_LIST, {"community_id": cid, "limit": 2, "before": page["next"]})
    page3 = await node.call(c.EP_POST_LIST, {"community_id": cid, "limit": 2, "before": page2["next"]})
    assert [p["id"] for p in page2["posts"] + page3["posts"]] == ids[::-1][2:] and page3["next"] is None
    await node.refused(errors.BadRequest, c.EP_POST_LIST, {"community_id": cid, "limit": 51})

    pid = first["id"]
    await node.refused(errors.Forbidden, c.EP_COMMENT_CREATE, {"actor": a(JIRO), "post_id": pid, "body": "やあ"})
    com = await node.call(c.EP_COMMENT_CREATE, {"actor": a(HANAKO), "post_id": pid, "body": "ようこそ"})
    await node.refused(errors.NotFound, c.EP_COMMENT_CREATE, {"actor": a(HANAKO), "post_id": 999999, "body": "x"})
    # Authors edit and delete their own, nobody else's.
    await node.refused(errors.Forbidden, c.EP_POST_UPDATE, {"actor": a(HANAKO), "post_id": pid, "title": "x",
                                                            "body": "y"}, match="author")
    await node.refused(errors.Forbidden, c.EP_POST_DELETE, {"actor": a(HANAKO), "id": pid})
    await node.refused(errors.Forbidden, c.EP_COMMENT_UPDATE, {"actor": a(TARO), "comment_id": com["id"],
                                                               "body": "x"})
    edited = await node.call(c.EP_POST_UPDATE, {"actor": a(TARO), "post_id": pid, "title": "自己紹介",
                                                "body": "よろしくお願いします"})
    assert edited["title"] == "自己紹介" and edited["edited_at"]
    assert (await node.call(c.EP_COMMENT_UPDATE, {"actor": a(HANAKO), "comment_id": com["id"],
                                                  "body": "ようこそ！"}))["body"] == "ようこそ！"
    extra = await node.call(c.EP_COMMENT_CREATE, {"actor": a(HANAKO), "post_id": pid, "body": "消します"})
    await node.refused(errors.Forbidden, c.EP_COMMENT_DELETE, {"actor": a(TARO), "id": extra["id"]})
    assert (await node.call(c.EP_COMMENT_DELETE, {"actor": a(HANAKO), "id": extra["id"]}))["ok"]

    # A member cannot hide others' posts; the leader hides with a reason kept.
    mod = {"actor": a(TARO), "id": ids[1], "reason": "広告"}
    await node.refused(errors.Forbidden, c.EP_POST_HIDE, mod, match="leader")
    await node.refused(errors.BadRequest, c.EP_POST_HIDE, {**mod, "actor": a(HANAKO), "reason": ""})
    taro_comment = await node.call(c.EP_COMMENT_CREATE, {"actor": a(TARO), "post_id": pid, "body": "宣伝です"})
    hidden = await node.call(c.EP_COMMENT_HIDE, {"actor": a(HANAKO), "id": taro_comment["id"], "reason": "宣伝"})
    assert hidden["hidden"]["reason"] == "宣伝" and hidden["body"] == "宣伝です"  # the leader still reads it
    await node.refused(errors.Conflict, c.EP_COMMENT_HIDE, {"actor": a(HANAKO), "id": taro_comment["id"],
                                                            "reason": "again"})
    await node.call(c.EP_POST_HIDE, {"actor": a(HANAKO), "id": pid, "reason": "個人情報を含むため"})
    await node.refused(errors.Conflict, c.EP_POST_UPDATE, {"actor": a(TARO), "post_id": pid, "title": "x",
                                                           "body": "y"}, match="hid")
    await node.refused(errors.Conflict, c.EP_COMMENT_CREATE, {"actor": a(HANAKO), "post_id": pid, "body": "x"})
    public = await node.call(c.EP_POST_GET, {"post_id": pid})
    assert public["post"]["body"] == "" and public["post"]["hidden"]["reason"] == ""
    assert [x["body"] for x in public["comments"]] == ["", "ようこそ！"]  # newest first
    paged = await node.call(c.EP_POST_GET, {"post_id": pid, "comments_limit": 1})
    assert [x["body"] for x in paged["comments"]] == [""] and paged["next_comments"] == taro_comment["id"]
    older = await node.call(c.EP_POST_GET, {"post_id": pid, "comments_limit": 1,
                                            "comments_before": paged["next_comments"]})
    assert [x["body"] for x in older["comments"]] == ["ようこそ！"] and older["next_comments"] is None
    as_author = await node.call(c.EP_POST_GET, {"post_id": pid, "actor": a(TARO)})
    assert as_author["post"]["hidden"]["reason"] == "個人情報を含むため" and as_author["post"]["body"]
    async with node.svc.sessions() as s:
        row = (await s.execute(select(posts).where(posts.c.id == pid))).one()
    assert (row.hidden_reason, row.hidden_by) == ("個人情報を含むため", HANAKO.global_handle)

    # The author deletes their post (its comments go with it).
    assert (await node.call(c.EP_POST_DELETE, {"actor": a(TARO), "id": pid}))["ok"]
    await node.refused(errors.NotFound, c.EP_POST_GET, {"post_id": pid})
    await node.refused(errors.NotFound, c.EP_COMMENT_DELETE, {"actor": a(HANAKO), "id": com["id"]})
    published = [e for s, e in await node.events() if e["type"] == "PostPublished"]
    assert len(published) == 5 and published[0]["data"]["categories"] == ["npo-2"]
    assert "body" not in published[0]["data"]


async def test_the_community_list_is_paged_newest_first(node: Node) -> None:
    made = [(await node.open(HANAKO if i % 2 else TARO, f"会 {i:02d}", ["npo-1" if i % 3 else "npo-2"]))["id"]
            for i in range(7)]
    seen, before = [], None
    while True:
        page = await node.call(c.EP_COMMUNITY_LIST, {"limit": 3, **({"before": before} if before else {})})
        seen += [x["id"] for x in page["communities"]]
        before = page["next"]
        if before is None:
            break
    assert seen == made[::-1]
    first = await node.call(c.EP_COMMUNITY_LIST, {"limit": 2, "category": "npo-1"})
    rest = await node.call(c.EP_COMMUNITY_LIST, {"limit": 50, "category": "npo-1", "before": first["next"]})
    assert [x["id"] for x in first["communities"] + rest["communities"]] == [m for i, m in enumerate(made)
                                                                             if i % 3][::-1]
    await node.refused(errors.BadRequest, c.EP_COMMUNITY_LIST, {"before": "not-an-id"})
    await node.refused(errors.BadRequest, c.EP_COMMUNITY_LIST, {"limit": 0})


async def test_writes_per_minute_and_communities_per_hour_are_limited(node: Node) -> None:
    cid = (await node.open(HANAKO, "投稿テスト"))["id"]
    for i in range(c.WRITES_PER_MINUTE):
        await node.post(HANAKO, cid, f"#{i}")
    await node.refused(errors.TooManyRequests, c.EP_POST_CREATE, {"actor": a(HANAKO), "community_id": cid,
                                                                  "title": "one more", "body": "b"})
    for i in range(1, c.OPENED_PER_HOUR):
        await node.open(HANAKO, f"もうひとつ {i}")
    await node.refused(errors.TooManyRequests, c.EP_COMMUNITY_OPEN, {"actor": a(HANAKO), "name": "多すぎる会",
                                                                     "categories": ["npo-1"]})
    await node.open(TARO, "多すぎる会")  # someone else still may


async def test_concurrent_joins_are_counted_exactly(node: Node) -> None:
    cid = (await node.open(HANAKO, "大きなコミュニティ"))["id"]
    crowd = [Actor(user_id=f"user-crowd-{i:03d}", global_handle=f"crowd{i:03d}@{NODE}", display_name=f"人 {i}")
             for i in range(40)]
    results = await asyncio.gather(*(node.join(p, cid) for p in crowd),
                                   *(node.join(p, cid) for p in crowd[:10]), return_exceptions=True)
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 10 and all(isinstance(r, errors.Conflict) for r in refused)
    got = await node.call(c.EP_COMMUNITY_GET, {"community_id": cid})
    async with node.svc.sessions() as s:
        assert got["members"] == await cm.count(s, cid) == 41


async def test_friends_request_accept_decline_cancel_remove(node: Node) -> None:
    req = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": AKI.global_handle, "to_name": "杉並 亜希"})
    assert req["addressee"] == {"global_handle": AKI.global_handle, "display_name": "杉並 亜希"}
    await node.refused(errors.BadRequest, c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": HANAKO.global_handle,
                                                                "to_name": "me"}, match="yourself")
    await node.refused(errors.Conflict, c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": AKI.global_handle,
                                                              "to_name": "x"}, match="already")
    await node.refused(errors.BadRequest, c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": "not a handle",
                                                                "to_name": "x"})
    # Nobody but the addressee accepts or declines; nobody but the sender cancels; strangers do not see it.
    await node.refused(errors.Forbidden, c.EP_FRIEND_ACCEPT, {"actor": a(HANAKO), "request_id": req["id"]})
    await node.refused(errors.NotFound, c.EP_FRIEND_ACCEPT, {"actor": a(TARO), "request_id": req["id"]})
    await node.refused(errors.NotFound, c.EP_FRIEND_DECLINE, {"actor": a(TARO), "request_id": req["id"]})
    await node.refused(errors.Forbidden, c.EP_FRIEND_CANCEL, {"actor": a(AKI), "request_id": req["id"]})
    lists = await node.call(c.EP_FRIEND_LIST, {"actor": a(AKI)})
    assert [r["sender"]["global_handle"] for r in lists["incoming"]] == [HANAKO.global_handle]
    assert (await node.call(c.EP_FRIEND_LIST, {"actor": a(HANAKO)}))["outgoing"][0]["id"] == req["id"]

    friend = await node.call(c.EP_FRIEND_ACCEPT, {"actor": a(AKI), "request_id": req["id"]})
    assert friend["global_handle"] == HANAKO.global_handle
    await node.refused(errors.NotFound, c.EP_FRIEND_ACCEPT, {"actor": a(AKI), "request_id": req["id"]})
    await node.refused(errors.Conflict, c.EP_FRIEND_REQUEST, {"actor": a(AKI), "to": HANAKO.global_handle,
                                                              "to_name": "花子"}, match="friends already")
    both = [(await node.call(c.EP_FRIEND_LIST, {"actor": a(x)}))["friends"] for x in (HANAKO, AKI)]
    assert [f["global_handle"] for f in both[0]] == [AKI.global_handle]
    assert [f["global_handle"] for f in both[1]] == [HANAKO.global_handle]

    declined = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(TARO), "to": HANAKO.global_handle, "to_name": "花子"})
    await node.call(c.EP_FRIEND_DECLINE, {"actor": a(HANAKO), "request_id": declined["id"]})
    cancelled = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(TARO), "to": HANAKO.global_handle, "to_name": "花子"})
    await node.call(c.EP_FRIEND_CANCEL, {"actor": a(TARO), "request_id": cancelled["id"]})
    assert (await node.call(c.EP_FRIEND_LIST, {"actor": a(HANAKO)}))["incoming"] == []

    # A request crossing one already sent the other way answers it.
    mine = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(TARO), "to": JIRO.global_handle, "to_name": "次郎"})
    crossed = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(JIRO), "to": TARO.global_handle, "to_name": "太郎"})
    assert crossed["became_friends"] and crossed["id"] == mine["id"]
    assert [f["global_handle"] for f in (await node.call(c.EP_FRIEND_LIST, {"actor": a(TARO)}))["friends"]] \
        == [JIRO.global_handle]

    await node.refused(errors.NotFound, c.EP_FRIEND_REMOVE, {"actor": a(TARO), "friend": HANAKO.global_handle})
    await node.call(c.EP_FRIEND_REMOVE, {"actor": a(AKI), "friend": HANAKO.global_handle})
    assert (await node.call(c.EP_FRIEND_LIST, {"actor": a(HANAKO)}))["friends"] == []


async def test_concurrent_crossed_requests_end_as_one_friendship_or_a_clean_refusal(node: Node) -> None:
    pairs = [(Actor(user_id=f"user-left-{i:03d}", global_handle=f"left{i:03d}@{NODE}", display_name=f"左 {i}"),
              Actor(user_id=f"user-right-{i:02d}", global_handle=f"right{i:03d}@{NODE}", display_name=f"右 {i}"))
             for i in range(8)]

    def ask(x: Actor, y: Actor) -> Any:
        return node.call(c.EP_FRIEND_REQUEST, {"actor": a(x), "to": y.global_handle, "to_name": y.display_name})

    results = await asyncio.gather(*(f for x, y in pairs for f in (ask(x, y), ask(y, x))), return_exceptions=True)
    assert all(not isinstance(r, Exception) or isinstance(r, errors.Conflict) for r in results), results
    async with node.svc.sessions() as s:
        for x, y in pairs:
            key = tuple(sorted((x.global_handle, y.global_handle)))
            friends = (await s.execute(select(friendships).where(friendships.c.a == key[0],
                                                                 friendships.c.b == key[1]))).all()
            pending = (await s.execute(select(friend_requests).where(
                friend_requests.c.pair == " ".join(key)))).all()
            # exactly one of: friends now, or one request waiting (the other refused cleanly)
            assert len(friends) + len(pending) == 1


async def test_friend_requests_per_minute_are_limited(node: Node) -> None:
    for i in range(c.REQUESTS_PER_MINUTE):
        await node.call(c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": f"p{i:03d}@{NODE}", "to_name": f"p{i}"})
    await node.refused(errors.TooManyRequests, c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": f"q000@{NODE}",
                                                                     "to_name": "q"})


async def test_person_summary_for_my_page(node: Node) -> None:
    empty = mp.SnsSummary.model_validate(await node.call(mp.EP_PERSON_SUMMARY, {"person": "user-nobody-01"}))
    assert empty == mp.SnsSummary(communities=[], friends=[], friend_requests=0)
    g = await node.open(HANAKO, "防災ネット", ["pib-5", "npo-10"])
    await node.join(AKI, g["id"])
    await node.call(c.EP_FRIEND_REQUEST, {"actor": a(TARO), "to": AKI.global_handle, "to_name": AKI.display_name})
    r = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(AKI), "to": HANAKO.global_handle, "to_name": "花子"})
    await node.call(c.EP_FRIEND_ACCEPT, {"actor": a(HANAKO), "request_id": r["id"]})
    got = mp.SnsSummary.model_validate(await node.call(mp.EP_PERSON_SUMMARY, {"person": AKI.user_id}))
    assert [(x.name, x.role, x.members, x.category) for x in got.communities] == [("防災ネット", "member", 2,
                                                                                   "npo-10")]
    assert [(f.global_handle, f.display_name) for f in got.friends] == [(HANAKO.global_handle, HANAKO.display_name)]
    assert got.friend_requests == 1
    lead = mp.SnsSummary.model_validate(await node.call(mp.EP_PERSON_SUMMARY, {"person": HANAKO.user_id}))
    assert lead.communities[0].role == "leader" and lead.friend_requests == 0
    with pytest.raises(errors.BadRequest):
        await node.call(mp.EP_PERSON_SUMMARY, {"person": "x"})


async def announce_deleted(node: Node, handle: str, *, times: int = 1) -> Envelope:
    """identity's UserDeleted, published `times` (a redelivery: same event id, new Nats-Msg-Id so JetStream keeps
    each copy and the consumer's inbox is what must stop the second)."""
    js = node.nc.jetstream()
    env = Envelope(type="UserDeleted", node=NODE, service="identity", data={"global_handle": handle,
                                                                            "home_node": NODE})
    for i in range(times):
        await js.publish(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: f"{env.id}-{i}"})
    return env


async def test_a_deleted_account_leaves_posts_by_nobody_and_its_communities_pass_on(node: Node) -> None:
    led = (await node.open(HANAKO, "読書会"))["id"]
    alone = (await node.open(HANAKO, "ひとりの会"))["id"]
    await node.join(TARO, led)
    await node.join(JIRO, led)
    pid = (await node.post(HANAKO, led, "課題図書"))["id"]
    await node.call(c.EP_COMMENT_CREATE, {"actor": a(HANAKO), "post_id": pid, "body": "楽しみ"})
    r = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": TARO.global_handle, "to_name": "太郎"})
    await node.call(c.EP_FRIEND_ACCEPT, {"actor": a(TARO), "request_id": r["id"]})
    await node.call(c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": JIRO.global_handle, "to_name": "次郎"})

    env = await announce_deleted(node, HANAKO.global_handle, times=2)

    async def gone() -> bool:
        async with node.svc.sessions() as s:
            return (await s.execute(select(people).where(people.c.global_handle == HANAKO.global_handle))
                    ).first() is None
    await wait_for(gone, "the deleted person to be forgotten")
    book = await node.call(c.EP_COMMUNITY_GET, {"community_id": led})
    assert book["leader"]["global_handle"] == TARO.global_handle and book["members"] == 2  # longest-standing
    solo = await node.call(c.EP_COMMUNITY_GET, {"community_id": alone})
    assert solo["status"] == "closed" and solo["leader"] is None and solo["members"] == 0
    detail = await node.call(c.EP_POST_GET, {"post_id": pid})
    assert detail["post"]["author"] is None and detail["post"]["title"] == "課題図書"
    assert [x["author"] for x in detail["comments"]] == [None]
    assert (await node.call(c.EP_FRIEND_LIST, {"actor": a(TARO)}))["friends"] == []
    assert (await node.call(c.EP_FRIEND_LIST, {"actor": a(JIRO)}))["incoming"] == []
    async with node.svc.sessions() as s:
        for table, column in ((memberships, memberships.c.global_handle), (request_log, request_log.c.sender),
                              (posts, posts.c.author), (comments, comments.c.author)):
            assert (await s.execute(select(table).where(column == HANAKO.global_handle))).first() is None, table

    # Applied once: both copies were consumed, one inbox row holds the event.
    async def both_seen() -> bool:
        info = await node.nc.jetstream().consumer_info(subjects.evt_stream(NODE, "identity"), "sns-people")
        return info.num_pending == 0 and info.num_ack_pending == 0
    await wait_for(both_seen, "both copies to be acknowledged")
    async with node.svc.sessions() as s:
        inbox = (await s.execute(select(bus.inbox.c.message_id).where(bus.inbox.c.consumer == "sns-people"))).all()
    assert [r[0] for r in inbox] == [f"identity:{env.id}"]
    closed = [e for _, e in await node.events() if e["type"] == "CommunityClosed"]
    assert [(e["data"]["community_id"], e["data"]["why"]) for e in closed] == [(alone, "leader_deleted")]


async def test_a_person_who_chose_remove_takes_their_posts_and_comments_along(node: Node) -> None:
    """Issue 20 point 7: UserDeleted with content "remove": Hanako's post goes with everyone's comments and 共感 on
    it, and her comment on Taro's post goes; Taro's post and his own comment stay. Before, her export lists both."""
    cid = (await node.open(HANAKO, "園芸"))["id"]
    await node.join(TARO, cid)
    mine = (await node.post(HANAKO, cid, "球根"))["id"]
    his = (await node.post(TARO, cid, "肥料"))["id"]
    await node.call(c.EP_COMMENT_CREATE, {"actor": a(TARO), "post_id": mine, "body": "いいですね"})
    await node.call(c.EP_COMMENT_CREATE, {"actor": a(HANAKO), "post_id": his, "body": "油かす"})
    await node.call(c.EP_COMMENT_CREATE, {"actor": a(TARO), "post_id": his, "body": "なるほど"})
    await node.call(lk.EP_LIKE_GIVE, {"actor": a(TARO), "kind": "post", "id": str(mine)})
    part = await node.call(pv.EP_PERSON_EXPORT, {"user_id": HANAKO.user_id, "global_handle": HANAKO.global_handle})
    assert (len(part["tables"]["posts"]), len(part["tables"]["comments"])) == (1, 1) and part["service"] == "sns"

    js = node.nc.jetstream()
    env = Envelope(type="UserDeleted", node=NODE, service="identity", data={
        "global_handle": HANAKO.global_handle, "home_node": NODE, "user_id": HANAKO.user_id, "content": "remove"})
    await js.publish(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: env.id})

    async def gone() -> bool:
        async with node.svc.sessions() as s:
            return (await s.execute(select(posts).where(posts.c.id == mine))).first() is None
    await wait_for(gone, "her post to be removed")
    async with node.svc.sessions() as s:
        assert [r.body for r in await s.execute(select(comments).order_by(comments.c.id))] == ["なるほど"]
        assert [r.id for r in await s.execute(select(posts))] == [his]
        assert (await s.execute(select(likes))).all() == []
    part = await node.call(pv.EP_PERSON_EXPORT, {"user_id": HANAKO.user_id, "global_handle": HANAKO.global_handle})
    assert not any(part["tables"].values())


async def test_another_nodes_deletion_event_changes_nothing(node: Node) -> None:
    cid = (await node.open(HANAKO, "ガード"))["id"]
    before = await node.snapshot()
    js = node.nc.jetstream()
    forged = Envelope(type="UserDeleted", node="elsewhere", service="identity",
                      data={"global_handle": HANAKO.global_handle, "home_node": "elsewhere"})
    await js.publish(subjects.evt(NODE, "identity", "user_deleted"), forged.to_bytes())
    wrong = Envelope(type="UserDeleted", node=NODE, service="identity", data={"global_handle": "x_y@elsewhere"},
                     time=datetime.now(UTC) - timedelta(seconds=1))
    await js.publish(wrong.subject, wrong.to_bytes())

    async def settled() -> bool:
        info = await js.consumer_info(subjects.evt_stream(NODE, "identity"), "sns-people")
        return info.delivered.stream_seq >= 2 and info.num_ack_pending == 0
    await wait_for(settled, "both forged events to be dead-lettered")
    assert await node.snapshot() == before
    assert (await node.call(c.EP_COMMUNITY_GET, {"community_id": cid}))["leader"]["global_handle"] \
        == HANAKO.global_handle


async def test_a_person_of_another_node_deleted_at_home_leaves_too(node: Node) -> None:
    """suginami's identity events reach FED_<NODE> as the identity service sources them (here from a stream on the
    same server); the sns service starts reading FED_<NODE> once it exists."""
    from nats.js.api import StreamSource

    from towntip.kernel.bus.streams import ensure_stream, evt_stream_config, fed_stream_config

    cid = (await node.open(HANAKO, "越境の会"))["id"]
    await node.join(AKI, cid)
    r = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(AKI), "to": HANAKO.global_handle, "to_name": "花子"})
    await node.call(c.EP_FRIEND_ACCEPT, {"actor": a(HANAKO), "request_id": r["id"]})
    js = node.nc.jetstream()
    await ensure_stream(js, evt_stream_config("suginami", "identity"))
    await ensure_stream(js, fed_stream_config(NODE, [StreamSource(
        name=subjects.evt_stream("suginami", "identity"), filter_subject=subjects.evt_all("suginami", "identity"))]))
    # suginami may not speak for this node's people: dead-lettered, nothing changes.
    forged = Envelope(type="UserDeleted", node="suginami", service="identity",
                      data={"global_handle": HANAKO.global_handle, "home_node": "suginami"})
    await js.publish(forged.subject, forged.to_bytes())
    gone = Envelope(type="UserDeleted", node="suginami", service="identity",
                    data={"global_handle": AKI.global_handle, "home_node": "suginami"})
    await js.publish(gone.subject, gone.to_bytes())

    async def aki_gone() -> bool:
        got = await node.call(c.EP_COMMUNITY_GET, {"community_id": cid})
        return got["members"] == 1
    await wait_for(aki_gone, "aki@suginami to leave the community")
    assert (await node.call(c.EP_FRIEND_LIST, {"actor": a(HANAKO)}))["friends"] == []
    assert (await node.call(c.EP_COMMUNITY_GET, {"community_id": cid}))["leader"]["global_handle"] \
        == HANAKO.global_handle
    async with node.svc.sessions() as s:
        inbox = (await s.execute(select(bus.inbox.c.message_id).where(bus.inbox.c.consumer == "sns-peer-people"))
                 ).all()
    assert [r[0] for r in inbox] == [f"suginami:{gone.id}"]
