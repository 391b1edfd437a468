"""Blogs in the sns service over a real nats-server, on SQLite and PostgreSQL: entries for everyone, friends or one
community, seen by exactly those on every read (the list, one entry, its pictures, its comments, 共感); pictures
prepared by towntip.kernel.images and checked again; comments, 共感 and reports reusing likes and moderation; and
each refusal (not a picture, too big, too many pixels, too many pictures, a comment on an entry one cannot see, a
delete by someone else, a suspended writer) changing nothing."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from PIL import Image
from sqlalchemy import select

from identity.app import IdentityService
from services.sns.app import SnsService
from services.sns.models import blog_comments, blog_entries, blog_pictures, likes, moderation_actions, reports
from tests.sns.test_sns_moderation import STAFF
from tests.sns.test_sns_service import AKI, HANAKO, JIRO, NODE, TARO, Node, a
from tests.support.api_node import BASE, ApiNode, api_node, problem
from towntip.kernel import errors, images
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import sns as c
from towntip.kernel.settings import ServiceSettings


def photo_with_gps(size: tuple[int, int] = (2000, 1500)) -> bytes:
    """A phone's photo: a JPEG whose EXIF says the camera and where it was taken."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def prepared(raw: bytes) -> tuple[str, str]:
    """What the portal sends: the picture and its thumbnail as towntip.kernel.images.prepare makes them."""
    return (b64(images.prepare(raw, max_side=c.BLOG_FULL_SIDE).data),
            b64(images.prepare(raw, max_side=c.BLOG_THUMB_SIDE).data))


class BlogNode(Node):
    async def snapshot(self) -> dict[str, list[str]]:
        out = await super().snapshot()
        async with self.svc.sessions() as s:
            for table in (blog_entries, blog_pictures, blog_comments, likes, reports, moderation_actions):
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
        return out

    async def blog(self, who: Any, title: str, audience: str = "public", community_id: str | None = None
                   ) -> dict[str, Any]:
        return await self.call(c.EP_BLOG_CREATE, {"actor": a(who), "title": title, "body": f"{title}の本文",
                                                  "audience": audience, "community_id": community_id})

    def picture_in(self, who: Any, entry_id: int, raw: bytes | None = None, alt: str = "公園の花壇") -> dict[str, Any]:
        image, thumb = prepared(raw or photo_with_gps())
        return {"actor": a(who), "entry_id": entry_id, "image": image, "thumb": thumb, "alt": alt}

    async def titles(self, who: Any | None, **q: Any) -> list[str]:
        got = await self.call(c.EP_BLOG_LIST, {"actor": a(who) if who else None, **q})
        return [e["title"] for e in got["entries"]]


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[BlogNode]:
    url, schema = database
    settings = ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "")
    svc = SnsService(settings)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield BlogNode(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_each_audience_sees_exactly_its_entries_on_every_read(node: BlogNode) -> None:
    # Hanako and Taro are friends; Aki (another node, logged in here) is a member of Hanako's community; Jiro is
    # neither.
    req = await node.call(c.EP_FRIEND_REQUEST, {"actor": a(HANAKO), "to": TARO.global_handle, "to_name": "鈴木 太郎"})
    await node.call(c.EP_FRIEND_ACCEPT, {"actor": a(TARO), "request_id": req["id"]})
    cid = (await node.open(HANAKO, "まちなか菜園", ["npo-3"]))["id"]
    await node.join(AKI, cid)

    public = await node.blog(HANAKO, "清掃活動の報告")
    friends = await node.blog(HANAKO, "友だちへ", "friends")
    members = await node.blog(HANAKO, "菜園の仲間へ", "community", cid)
    assert (members["audience"], members["community"], members["community_name"]) == ("community", cid,
                                                                                      "まちなか菜園")
    pics = {e["id"]: (await node.call(c.EP_BLOG_PICTURE_ADD, node.picture_in(HANAKO, e["id"])))["id"]
            for e in (public, friends, members)}
    for e in (public, friends, members):  # a comment each, by Hanako herself
        await node.call(c.EP_BLOG_COMMENT_CREATE, {"actor": a(HANAKO), "entry_id": e["id"], "body": "追記です"})

    everyone = ["清掃活動の報告"]
    seen = {None: everyone, JIRO: everyone, TARO: ["友だちへ", "清掃活動の報告"],
            AKI: ["菜園の仲間へ", "清掃活動の報告"], HANAKO: ["菜園の仲間へ", "友だちへ", "清掃活動の報告"]}
    for who, titles in seen.items():
        assert await node.titles(who) == titles, who
        assert await node.titles(who, author=HANAKO.global_handle) == titles, who
        shown = {e["id"] for e in (public, friends, members) if e["title"] in titles}
        for e in (public, friends, members):
            q = {"entry_id": e["id"], "actor": a(who) if who else None}
            pq = {"picture_id": pics[e["id"]], "size": "thumb", "actor": a(who) if who else None}
            if e["id"] in shown:
                got = await node.call(c.EP_BLOG_GET, q)
                assert [cm["body"] for cm in got["comments"]] == ["追記です"]
                assert got["entry"]["pictures"][0]["alt"] == "公園の花壇"
                data = await node.call(c.EP_BLOG_PICTURE_GET, pq)
                assert data["public"] == (e["audience"] == "public")
            else:  # not found, as if there were none: the entry, its picture, its comments, 共感, a report
                await node.refused(errors.NotFound, c.EP_BLOG_GET, q)
                await node.refused(errors.NotFound, c.EP_BLOG_PICTURE_GET, pq)
                if who is not None:
                    await node.refused(errors.NotFound, c.EP_BLOG_COMMENT_CREATE, {
                        "actor": a(who), "entry_id": e["id"], "body": "見えないはず"})
                    await node.refused(errors.NotFound, lk.EP_LIKE_GIVE, {
                        "actor": a(who), "kind": "blog", "id": str(e["id"])})
                    await node.refused(errors.NotFound, c.EP_REPORT_CREATE, {
                        "actor": a(who), "kind": "blog", "target": str(e["id"]), "reason": "spam"})

    # Ending the friendship or leaving the community ends the sight of those entries.
    await node.call(c.EP_FRIEND_REMOVE, {"actor": a(TARO), "friend": HANAKO.global_handle})
    await node.call(c.EP_COMMUNITY_LEAVE, {"actor": a(AKI), "community_id": cid})
    assert await node.titles(TARO) == everyone and await node.titles(AKI) == everyone


async def test_pictures_comments_likes_reports_and_delete(node: BlogNode) -> None:
    entry = await node.blog(TARO, "夏祭りの感想")
    eid = entry["id"]
    pic = await node.call(c.EP_BLOG_PICTURE_ADD, node.picture_in(TARO, eid, alt="やぐらと提灯"))
    assert (pic["content_type"], pic["width"], pic["height"], pic["position"]) == ("image/jpeg", 1280, 960, 1)
    served = await node.call(c.EP_BLOG_PICTURE_GET, {"picture_id": pic["id"]})
    kept = Image.open(io.BytesIO(base64.b64decode(served["data"])))
    assert kept.size == (1280, 960) and not kept.getexif() and "exif" not in kept.info  # no GPS, no camera

    comment = await node.call(c.EP_BLOG_COMMENT_CREATE, {"actor": a(JIRO), "entry_id": eid, "body": "楽しそう！"})
    assert (await node.call(lk.EP_LIKE_GIVE, {"actor": a(JIRO), "kind": "blog", "id": str(eid)}))["likes"] == 1
    await node.call(lk.EP_LIKE_GIVE, {"actor": a(TARO), "kind": "bcomment", "id": str(comment["id"])})
    await node.refused(errors.Conflict, lk.EP_LIKE_GIVE, {"actor": a(TARO), "kind": "blog", "id": str(eid)})
    got = await node.call(c.EP_BLOG_GET, {"entry_id": eid, "actor": a(JIRO)})
    assert (got["entry"]["likes"], got["entry"]["liked"], got["entry"]["comments"]) == (1, True, 1)
    assert got["comments"][0]["likes"] == 1

    # Refusals, each changing nothing: someone else's delete, someone else's picture, a comment's delete by a third.
    await node.refused(errors.Forbidden, c.EP_BLOG_DELETE, {"actor": a(JIRO), "id": eid})
    await node.refused(errors.Forbidden, c.EP_BLOG_PICTURE_ADD, node.picture_in(JIRO, eid))
    await node.refused(errors.Forbidden, c.EP_BLOG_COMMENT_DELETE, {"actor": a(HANAKO), "id": comment["id"]})
    await node.refused(errors.BadRequest, c.EP_BLOG_CREATE, {"actor": a(TARO), "title": "t", "body": "b",
                                                             "audience": "community"})
    await node.refused(errors.BadRequest, c.EP_BLOG_CREATE, {"actor": a(TARO), "title": "", "body": "b"})
    cid = (await node.open(HANAKO, "子育てひろば", ["npo-1"]))["id"]
    await node.refused(errors.Forbidden, c.EP_BLOG_CREATE, {"actor": a(TARO), "title": "t", "body": "b",
                                                            "audience": "community", "community_id": cid})

    # Staff hide the entry on a report: nobody but Taro sees it; no more comments.
    report = await node.call(c.EP_REPORT_CREATE, {"actor": a(JIRO), "kind": "blog", "target": str(eid),
                                                  "reason": "personal_info"})
    assert report["link"] == f"/blogs/{eid}" and report["author"] == TARO.global_handle
    await node.call(c.EP_MODERATION_DECIDE, {"actor": a(STAFF), "report_id": report["id"], "action": "hide",
                                             "reason": "個人の住所が写っているため"})
    assert await node.titles(JIRO) == [] and await node.titles(None) == []
    mine = await node.call(c.EP_BLOG_GET, {"entry_id": eid, "actor": a(TARO)})
    assert mine["entry"]["hidden"]["by_staff"] and mine["entry"]["hidden"]["reason"] == "個人の住所が写っているため"
    await node.refused(errors.NotFound, c.EP_BLOG_GET, {"entry_id": eid, "actor": a(JIRO)})
    await node.refused(errors.Conflict, c.EP_BLOG_COMMENT_CREATE, {"actor": a(TARO), "entry_id": eid, "body": "x"})

    # The author deletes it: pictures, comments and 共感 go with it.
    await node.call(c.EP_BLOG_DELETE, {"actor": a(TARO), "id": eid})
    snap = await node.snapshot()
    assert snap["blog_entries"] == snap["blog_pictures"] == snap["blog_comments"] == snap["likes"] == []
    await node.refused(errors.NotFound, c.EP_BLOG_PICTURE_GET, {"picture_id": pic["id"]})


async def test_pictures_that_are_refused_change_nothing(node: BlogNode) -> None:
    eid = (await node.blog(HANAKO, "写真のテスト"))["id"]
    good_image, good_thumb = prepared(photo_with_gps())
    base = {"actor": a(HANAKO), "entry_id": eid, "alt": "説明"}
    bomb = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(bomb, "PNG")  # 50 million pixels in 6 KB
    noise = io.BytesIO()
    Image.frombytes("RGB", (400, 400), os.urandom(480_000)).save(noise, "PNG")  # 470 KB: too big for a thumbnail
    for image, thumb, match in (
        (b64(b"this is no picture at all"), good_thumb, "not a picture|cannot be read"),  # not a picture
        (good_image, b64(noise.getvalue()), "bytes"),  # too big
        (b64(bomb.getvalue()), good_thumb, "pixels"),  # too many pixels
        (b64(photo_with_gps((800, 600))), good_thumb, "metadata"),  # not prepared: its EXIF is still there
    ):
        reason = await node.refused(errors.Unprocessable, c.EP_BLOG_PICTURE_ADD,
                                    {**base, "image": image, "thumb": thumb}, match=match)
        assert reason
    await node.refused(errors.BadRequest, c.EP_BLOG_PICTURE_ADD, {**base, "image": "%%%", "thumb": good_thumb})
    await node.refused(errors.BadRequest, c.EP_BLOG_PICTURE_ADD, {**base, "image": good_image, "thumb": good_thumb,
                                                                  "alt": ""})  # a picture needs its description
    for _ in range(c.BLOG_PICTURES_MAX):
        await node.call(c.EP_BLOG_PICTURE_ADD, {**base, "image": good_image, "thumb": good_thumb})
    await node.refused(errors.Conflict, c.EP_BLOG_PICTURE_ADD, {**base, "image": good_image, "thumb": good_thumb})
    got = await node.call(c.EP_BLOG_GET, {"entry_id": eid})
    assert [p["position"] for p in got["entry"]["pictures"]] == [1, 2, 3, 4]


async def test_suspended_people_and_blocked_nodes_cannot_write(node: BlogNode) -> None:
    eid = (await node.blog(HANAKO, "はじめてのブログ"))["id"]
    # Jiro writes a comment (and so is known here); reported, staff suspend him for a week.
    await node.call(c.EP_BLOG_COMMENT_CREATE, {"actor": a(JIRO), "entry_id": eid, "body": "宣伝です"})
    report = await node.call(c.EP_REPORT_CREATE, {"actor": a(HANAKO), "kind": "person",
                                                  "target": JIRO.global_handle, "reason": "spam"})
    await node.call(c.EP_MODERATION_DECIDE, {"actor": a(STAFF), "report_id": report["id"], "action": "suspend",
                                             "days": 7, "reason": "宣伝の繰り返し"})
    await node.refused(errors.Forbidden, c.EP_BLOG_CREATE, {"actor": a(JIRO), "title": "t", "body": "b"},
                       match="suspended")
    await node.refused(errors.Forbidden, c.EP_BLOG_COMMENT_CREATE, {"actor": a(JIRO), "entry_id": eid, "body": "b"},
                       match="suspended")
    await node.call(c.EP_BLOCK_PUT, {"actor": a(STAFF), "node": "suginami", "reason": "迷惑投稿"})
    await node.refused(errors.Forbidden, c.EP_BLOG_CREATE, {"actor": a(AKI), "title": "t", "body": "b"},
                       match="suginami")


@pytest.fixture
async def api(nats_server, database, tmp_path) -> AsyncIterator[ApiNode]:
    """The gateway's HTTP API before identity and sns (the sns service on SQLite or PostgreSQL)."""
    url, schema = database

    def settings(service: str) -> ServiceSettings:
        db = {"database_url": url, "database_schema": schema or ""} if service == "sns" else {}
        return ServiceSettings(service=service, node_id="tsuru", nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE, **db)
    async with api_node(nats_server.url, tmp_path, [IdentityService(settings("identity")), SnsService(settings("sns"))],
                        node="tsuru", people={"hanako": "山田 花子", "taro": "鈴木 太郎"}) as node:
        yield node


async def test_the_http_api_writes_and_reads_blogs_for_whoever_holds_the_token(api: ApiNode) -> None:
    """/api/v1/blogs: a resident's token writes and comments; a read without a token sees public entries only."""
    node = api
    async with node.client() as anyone, node.client("hanako") as hanako, node.client("taro") as taro:
        r = await hanako.post("/api/v1/blogs", json={"title": "公開の報告", "body": "みなさんへ"})
        assert r.status_code == 200 and r.json()["author"]["global_handle"] == "hanako@tsuru", r.text
        public = r.json()["id"]
        r = await hanako.post("/api/v1/blogs", json={"title": "友だちへ", "body": "内緒", "audience": "friends"})
        secret = r.json()["id"]
        problem(await anyone.post("/api/v1/blogs", json={"title": "t", "body": "b"}), 401, "request.unauthenticated")
        assert [e["title"] for e in (await anyone.get("/api/v1/blogs")).json()["entries"]] == ["公開の報告"]
        assert [e["title"] for e in (await hanako.get("/api/v1/blogs")).json()["entries"]] == ["友だちへ", "公開の報告"]
        problem(await taro.get(f"/api/v1/blogs/{secret}"), 404, "blog.not_found")
        r = await taro.post(f"/api/v1/blogs/{public}/comments", json={"body": "いいですね"})
        assert r.status_code == 200 and r.json()["author"]["global_handle"] == "taro@tsuru", r.text
        problem(await taro.post(f"/api/v1/blogs/{secret}/comments", json={"body": "見えないはず"}), 404,
                "blog.not_found")
        got = (await anyone.get(f"/api/v1/blogs/{public}")).json()
        assert [cm["body"] for cm in got["comments"]] == ["いいですね"]
