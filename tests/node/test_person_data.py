"""A person's data everywhere (issue 20 point 7), on a whole node in-process: a real nats-server, every service
(identity, points, projects, sns, bookings, notices, signage, each on its own SQLite file) and the gateway.

Hanako is active in every service (a bound card and a tap credited, currency and a coupon, a community with a post,
a comment and a 共感, a direct message, an organisation, a booking, life-stage answers and a private calendar).
Her archive has every service's part; after she deletes her account, every table of every service's database is
read whole and none of her handle, global handle, e-mail, display name, card hash or user id is anywhere, except
what is named explicitly: the ledger's postings, now under anonymous accounts and still summing to zero, and the
outbox rows of the events that announced her deletion.

Point 11: a UserDeleted on this node's identity stream naming a person of another home node is dead-lettered by the
services (points and bookings shown here, beside sns's own test) and changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from PIL import Image
from sqlalchemy import inspect, text

from identity.app import IdentityService
from services.bookings.app import BookingsService
from services.notices.app import NoticesService
from services.points.app import PointsService
from services.projects.app import ProjectsService
from services.signage.app import SignageService
from services.sns.app import SnsService
from tests.conftest import PG_URL, postgres_available
from tests.support.bus import wait_for
from tests.support.nodes import CARD_KEY, PW, add_people, gateway_app, started
from towntip.kernel import images
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import Envelope, utcnow
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import bookings_waitlist as bw
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import event_signups as es
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import notices as nc_
from towntip.kernel.contracts import notices_feeds as nf
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts import sns_openings as so
from towntip.kernel.contracts.points import Tap
from towntip.kernel.settings import ServiceSettings

pytestmark = pytest.mark.xdist_group("whole-node")

NODE = "tsuru"
BASE = "https://tsuru.example.jp"
CARD = "0123456789ABCDEF"
SERVICES = ("identity", "points", "projects", "sns", "bookings", "notices", "signage")
KINDS = {"identity": IdentityService, "points": PointsService, "projects": ProjectsService, "sns": SnsService,
         "bookings": BookingsService, "notices": NoticesService, "signage": SignageService}
ROOM = {"id": "city-hall-6f", "name_ja": "市庁舎6F会議室", "name_en": "City Hall 6F meeting room",
        "hours": {d: {"open": "09:00", "close": "17:00"} for d in bc.WEEKDAYS}, "layout": {"kind": "grid",
        "step_minutes": 30}}


@dataclass
class Node:
    nc: nats.NATS
    app: Any
    tmp: Path
    services: dict[str, Any]
    users: dict[str, ic.User]

    async def call(self, service: str, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, service, endpoint), payload, timeout=30)

    def actor(self, handle: str) -> dict[str, Any]:
        u = self.users[handle]
        return {"user_id": u.id, "global_handle": u.global_handle, "display_name": u.display_name,
                "roles": list(u.roles)}

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE, follow_redirects=False)

    async def rows(self, service: str) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table of the service's database (its SQLite file, or its PostgreSQL schema), whole."""
        async with self.services[service].sessions() as s:
            conn = await s.connection()
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
            return {t: [tuple(r) for r in await s.execute(text(f'SELECT * FROM "{t}"'))] for t in names}

    async def scalar(self, service: str, sql: str) -> Any:
        async with self.services[service].sessions() as s:
            return (await s.execute(text(sql))).all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: each service on its SQLite file; else the prefix of one fresh PostgreSQL schema per service, dropped
    afterwards."""
    if request.param == "sqlite":
        yield None
        return
    if reason := postgres_available():
        pytest.skip(reason)
    prefix = f"pd_{uuid.uuid4().hex[:10]}"
    yield prefix

    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"))
        for service in SERVICES:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}_{service}" CASCADE')
        await conn.close()

    asyncio.run(drop())


@pytest.fixture
async def node(nats_server, tmp_path: Path, databases: str | None) -> AsyncIterator[Node]:
    def settings(service: str) -> ServiceSettings:
        more: dict[str, Any] = {"card_key": CARD_KEY} if service == "points" else {}
        if databases:
            more |= {"database_url": PG_URL, "database_schema": f"{databases}_{service}"}
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE, **more)

    services = {s: KINDS[s](settings(s)) for s in SERVICES}
    async with started(*services.values()):
        client = await nats.connect(nats_server.url)
        try:
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services=",".join(SERVICES), public_url=BASE)
            async with app.router.lifespan_context(app):
                users = await add_people(client, NODE, [("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None),
                                                        ("clerk", "窓口 職員", "staff")])
                yield Node(client, app, tmp_path, services, users)
        finally:
            await client.drain()


async def touch(n: Node, number: int, mode: str = "checkin", event: str | None = "kominkan-fes") -> dict[str, Any]:
    """The card touches terminal term-1; answers the outcome the terminal would show."""
    inbox = n.nc.new_inbox()
    sub = await n.nc.subscribe(inbox)
    t = Tap(tap_id=f"pd-touch-{number:03d}", terminal_id="term-1", card_idm=CARD, mode=mode,  # type: ignore[arg-type]
            event=event if mode == "checkin" else None, tapped_at=utcnow() - timedelta(seconds=1))
    await n.nc.jetstream().publish(subjects.edge(NODE, "term-1", "tap"), t.model_dump_json().encode(),
                                   headers={subjects.HDR_MSG_ID: t.key, subjects.HDR_RESULT_TO: inbox})
    msg = await sub.next_msg(timeout=20)
    await sub.unsubscribe()
    return dict(json.loads(msg.data))


async def make_active(n: Node) -> None:
    """Hanako in every service."""
    me, taro, clerk = n.actor("hanako"), n.actor("taro"), n.actor("clerk")
    uid = me["user_id"]
    # points: an event, her card registered at a terminal and credited, currency and a coupon
    await n.call("points", pc.EP_EVENT_PUT, {"code": "kominkan-fes", "name": "公民館まつり"})
    code = (await touch(n, 1, mode="register"))["display"]
    await n.call("points", pc.EP_CARD_REGISTER_CODE, {"person": uid, "code": code})
    assert (await touch(n, 2))["status"] == "credited"
    await n.call("points", cc.EP_COUPON_TYPE_PUT, {"actor": clerk, "code": "city-bus", "title_ja": "市営バス 1乗車",
                                                   "title_en": "City bus", "issuer": "市営バス", "price": 150,
                                                   "valid_days": 90})
    await n.call("points", cc.EP_CURRENCY_AWARD, {"actor": clerk, "person": uid, "amount": 300, "memo": "清掃",
                                                  "key": "award-000000000000pd1"})
    await n.call("points", cc.EP_COUPON_BUY, {"person": uid, "type_code": "city-bus", "key": "form-00000000000pd01"})
    # points: the one seat of a course to come is hers, Taro waits for it
    starts = (utcnow() + timedelta(days=7)).isoformat()
    await n.call("points", pc.EP_EVENT_PUT, {"code": "engei-koza", "name": "園芸講座", "starts_at": starts,
                                             "capacity": 1})
    assert (await n.call("points", es.EP_SIGNUP, {"actor": me, "code": "engei-koza"}))["state"] == "signed_up"
    assert (await n.call("points", es.EP_SIGNUP, {"actor": taro, "code": "engei-koza"}))["state"] == "waitlisted"
    # sns: her community and post, Taro's post she comments on and likes, a message to Taro
    community = await n.call("sns", sc.EP_COMMUNITY_OPEN, {"actor": me, "name": "花子の園芸クラブ",
                                                           "categories": ["npo-3"]})
    await n.call("sns", sc.EP_POST_CREATE, {"actor": me, "community_id": community["id"], "title": "はじめまして",
                                            "body": "球根を植えました"})
    await n.call("sns", sc.EP_COMMUNITY_JOIN, {"actor": taro, "community_id": community["id"]})
    post = await n.call("sns", sc.EP_POST_CREATE, {"actor": taro, "community_id": community["id"],
                                                   "title": "質問", "body": "肥料は何を?"})
    await n.call("sns", sc.EP_COMMENT_CREATE, {"actor": me, "post_id": post["id"], "body": "油かすです"})
    await n.call("sns", lk.EP_LIKE_GIVE, {"actor": me, "kind": "post", "id": str(post["id"])})
    await n.call("sns", sc.EP_MESSAGE_SEND, {"actor": me, "to": taro["global_handle"], "to_name": "鈴木 太郎",
                                             "body": "こんにちは"})
    # sns: her blog entry with a picture, which Taro comments on and likes; her own comment on his entry
    entry = await n.call("sns", sc.EP_BLOG_CREATE, {"actor": me, "title": "公民館まつりの感想",
                                                    "body": "花壇づくりに参加しました", "audience": "public"})
    shot = io.BytesIO()
    Image.new("RGB", (900, 600), (90, 160, 70)).save(shot, "JPEG")
    full, thumb = (images.prepare(shot.getvalue(), max_side=side) for side in (sc.BLOG_FULL_SIDE, sc.BLOG_THUMB_SIDE))
    await n.call("sns", sc.EP_BLOG_PICTURE_ADD, {
        "actor": me, "entry_id": entry["id"], "image": base64.b64encode(full.data).decode(),
        "thumb": base64.b64encode(thumb.data).decode(), "alt": "花壇に球根を植える参加者"})
    await n.call("sns", sc.EP_BLOG_COMMENT_CREATE, {"actor": taro, "entry_id": entry["id"], "body": "きれいですね"})
    await n.call("sns", lk.EP_LIKE_GIVE, {"actor": taro, "kind": "blog", "id": str(entry["id"])})
    his = await n.call("sns", sc.EP_BLOG_CREATE, {"actor": taro, "title": "清掃活動", "body": "川沿いを清掃"})
    await n.call("sns", sc.EP_BLOG_COMMENT_CREATE, {"actor": me, "entry_id": his["id"], "body": "お疲れさまです"})
    # sns matching: her skills, Taro's community's opening, her application he accepts (a volunteer roster in points)
    await n.call("sns", so.EP_SKILLS_PUT, {"actor": me, "skills": "写真 園芸"})
    club = await n.call("sns", sc.EP_COMMUNITY_OPEN, {"actor": taro, "name": "川をきれいにする会",
                                                      "categories": ["npo-3"]})
    opening = await n.call("sns", so.EP_OPENING_CREATE, {
        "actor": taro, "host_kind": "community", "host_id": club["id"], "title": "清掃ボランティア",
        "task": "ごみ拾い", "skills": "写真", "starts_at": (utcnow() + timedelta(days=5)).isoformat(),
        "capacity": 3, "event_code": "kominkan-fes"})
    applied = await n.call("sns", so.EP_OPENING_APPLY, {"actor": me, "opening_id": opening["id"],
                                                        "message": "写真を撮れます"})
    await n.call("sns", so.EP_OPENING_DECIDE, {"actor": taro, "application_id": applied["id"], "decision": "accept"})
    # projects: an organisation she registered (its member)
    await n.call("projects", prc.EP_ORG_CREATE, {"actor": me, "kind": "company", "name": "花子商店",
                                                 "fields": ["npo-3"], "expertise": "園芸"})
    # bookings: a room on a day to come
    await n.call("bookings", bc.EP_FACILITY_PUT, {**ROOM, "actor": clerk})
    day = (utcnow().astimezone(JST) + timedelta(days=3)).date().isoformat()
    slot = {"facility_id": ROOM["id"], "start": f"{day}T10:00:00+09:00", "end": f"{day}T11:00:00+09:00"}
    await n.call("bookings", bc.EP_BOOKING_CREATE, {"actor": me, **slot, "purpose": "園芸クラブの集まり"})
    await n.call("bookings", bw.EP_WAITLIST_JOIN, {"actor": taro, **slot, "purpose": "将棋の会"})  # Taro waits
    # notices: life-stage answers, a private calendar
    await n.call("notices", nc_.EP_LIFE_PUT, {"actor": me, "age_band": "30s", "children_ages": [4]})
    await n.call("notices", nf.EP_CALENDAR_TOKEN, {"actor": me})
    assert len((await n.call("points", pc.EP_PERSON_POINTS, {"person": uid}))["cards"]) == 1


def needles(n: Node, card: str) -> dict[str, str]:
    u = n.users["hanako"]
    return {"handle": u.handle, "global handle": u.global_handle, "e-mail": u.email, "display name": u.display_name,
            "user id": u.id, "card hash": card.removeprefix("card:")}


def mentions(value: Any, words: dict[str, str]) -> list[str]:
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode("utf-8", "replace")
    s = str(value)
    # the handle alone ("hanako") is matched as a word, so that e.g. a random pseudonym never trips it by chance
    return [what for what, w in words.items()
            if (re.search(rf"(?<![a-z0-9_]){re.escape(w)}(?![a-z0-9_])", s) if what == "handle" else w in s)]


async def test_a_persons_data_is_exported_from_every_service_and_nothing_remains_after_deletion(node: Node) -> None:
    await make_active(node)
    async with node.browser() as browser:
        r = await browser.get("/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', r.text).group(1)  # type: ignore[union-attr]
        r = await browser.post("/login", data={"csrf": csrf, "login": "hanako", "password": PW, "next": "/me"})
        assert r.status_code == 303, r.text
        page = await browser.get("/settings/mydata")
        assert page.status_code == 200 and "わたしのデータ" in page.text and "/settings/export" in page.text

        # the archive: one part per service, each with what it keeps of her, and the summary
        r = await browser.get("/settings/export")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text[:300]
        assert r.headers["cache-control"] == "no-store"
        z = zipfile.ZipFile(io.BytesIO(r.content))
        assert sorted(z.namelist()) == sorted(["summary.txt", *(f"{s}.json" for s in SERVICES)])
        parts = {s: json.loads(z.read(f"{s}.json")) for s in SERVICES}
        assert parts["identity"]["account"]["email"] == "hanako@example.jp"
        for service in ("points", "projects", "sns", "bookings", "notices"):
            tables = parts[service]["tables"]
            assert sum(len(rows) for rows in tables.values()) > 0, service
        assert parts["points"]["tables"]["card_bindings"] and parts["points"]["tables"]["coupons"]
        assert parts["points"]["tables"]["postings"]
        assert parts["sns"]["tables"]["posts"] and parts["sns"]["tables"]["comments"]
        assert parts["sns"]["tables"]["likes"] and parts["sns"]["tables"]["messages"]
        assert parts["sns"]["tables"]["blog_entries"] and parts["sns"]["tables"]["blog_pictures"]
        assert parts["sns"]["tables"]["blog_comments"] and parts["sns"]["tables"]["applications"]
        assert parts["sns"]["tables"]["person_skills"] and parts["points"]["tables"]["volunteer_roster"]
        assert parts["projects"]["tables"]["memberships"] and parts["bookings"]["tables"]["bookings"]
        assert parts["notices"]["tables"]["life_profiles"] and parts["notices"]["tables"]["calendar_tokens"]
        assert parts["signage"]["tables"] == {t: [] for t in parts["signage"]["tables"]}  # she made no content
        summary = z.read("summary.txt").decode()
        assert "作成日時" in summary and "含まれていないもの" not in summary
        assert "投稿 / your posts: 1件" in summary, summary
        card = parts["points"]["tables"]["card_bindings"][0]["card_account"]
        assert card.startswith("card:") and len(card) > 20

        # what the ledger held before, to compare: every sum by asset stays
        before = await node.rows("points")
        words = needles(node, card)
        assert any(mentions(row, words) for rows in before.values() for row in rows)  # the scan does see her

        # she deletes her account and keeps her posts, by nobody
        r = await browser.get("/settings/delete")
        assert "退会したユーザー" in r.text and 'value="remove"' in r.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', r.text).group(1)  # type: ignore[union-attr]
        r = await browser.post("/settings/delete", data={"csrf": csrf, "password": PW, "content": "anonymise"})
        assert r.status_code == 200, r.text

    async def left(service: str) -> list[tuple[str, tuple[Any, ...], list[str]]]:
        return [(table, row, found) for table, rows in (await node.rows(service)).items() for row in rows
                if (found := mentions(row, words))]

    async def still() -> dict[str, list[tuple[str, tuple[Any, ...], list[str]]]]:
        return {s: found for s in SERVICES if (found := [x for x in await left(s) if x[0] != "outbox"])}

    async def erased() -> bool:
        return not await still()

    try:
        await wait_for(erased, "her data erased everywhere", timeout=30)
    except AssertionError:
        raise AssertionError(f"left after her deletion: {await still()}") from None

    # the ledger: every posting kept, under anonymous accounts; sums per asset unchanged (zero overall)
    after = await node.rows("points")
    assert len(after["postings"]) == len(before["postings"]) and len(after["journal"]) == len(before["journal"])
    assert await node.scalar("points", "SELECT SUM(amount) FROM postings") == [(0,)]
    anon = await node.scalar("points", "SELECT account_id, asset, SUM(amount) FROM postings "
                                       "WHERE account_id LIKE 'anon:%' GROUP BY account_id, asset")
    assert anon and all(re.fullmatch(r"anon:anon-[0-9a-f]{16}(-card0)?", a) for a, _, _ in anon), anon
    assert ("machi-point", 1) in {(asset, total) for _, asset, total in anon}  # the tap's point, anonymous
    assert not after["card_bindings"]  # the card unbound
    # what she held passed on: the course's seat to Taro, the room offered to Taro
    taro = node.actor("taro")
    mine = (await node.call("points", es.EP_SIGNUPS_MINE, {"actor": taro}))["signups"]
    assert [x["state"] for x in mine] == ["signed_up"], mine
    waits = (await node.call("bookings", bw.EP_WAITLIST_MINE, {"actor": taro}))
    assert "offered" in json.dumps(waits), waits
    sns = await node.rows("sns")
    assert len(sns["posts"]) == 2 and len(sns["comments"]) == 1  # kept, by nobody
    # her blog entry, its picture and her comment kept by nobody; her application and her skills gone
    assert len(sns["blog_entries"]) == 2 and len(sns["blog_pictures"]) == 1 and len(sns["blog_comments"]) == 2
    assert not sns["applications"] and not sns["person_skills"]
    assert not (await node.rows("points"))["volunteer_roster"]  # off the event's roster
    assert [r for r in (await node.rows("bookings"))["bookings"] if "cancelled" in r]  # her booking to come, cancelled

    # What remains naming her: only the outbox rows of events announced while she was erased (not yet published
    # when the erasure ran; the relay's prune takes them). Named here, one by one.
    remaining = {s: [(t, row) for t, row, _ in await left(s)] for s in SERVICES}
    for service, found in remaining.items():
        for table, row in found:
            assert table == "outbox", (service, table, row)
            event = Envelope.model_validate_json(bytes(row[3]))
            assert event.type in {"UserDeleted", "BookingCancelled", "MemberLeft", "CommunityLeaderChanged",
                                  "CommunityClosed"}, (service, event.type, event.data)


async def test_a_deletion_naming_a_person_of_another_home_changes_nothing(node: Node) -> None:
    """Point 11: on this node's identity stream, a UserDeleted for hanako@elsewhere (not a person of this node):
    points and bookings dead-letter it (403) and her namesake's data here stays."""
    me = node.actor("hanako")
    await node.call("points", cc.EP_COUPON_TYPE_PUT, {"actor": node.actor("clerk"), "code": "city-bus",
                                                      "title_ja": "市営バス", "title_en": "Bus", "issuer": "市営バス",
                                                      "valid_days": 90,
                                                      "price": 150})
    await node.call("points", cc.EP_CURRENCY_AWARD, {"actor": node.actor("clerk"), "person": me["user_id"],
                                                     "amount": 300, "memo": "清掃", "key": "award-000000000000pd2"})
    await node.call("bookings", bc.EP_FACILITY_PUT, {**ROOM, "actor": node.actor("clerk")})
    day = (utcnow().astimezone(JST) + timedelta(days=3)).date().isoformat()
    await node.call("bookings", bc.EP_BOOKING_CREATE, {"actor": me, "facility_id": ROOM["id"],
                                                       "start": f"{day}T10:00:00+09:00",
                                                       "end": f"{day}T11:00:00+09:00", "purpose": "集まり"})
    async def state() -> dict[str, dict[str, list[tuple[Any, ...]]]]:  # the outbox's relay marks rows on its own time
        return {s: {t: rows for t, rows in (await node.rows(s)).items() if t != "outbox"}
                for s in ("points", "bookings")}

    before = await state()
    dlq = await node.nc.jetstream().subscribe(f"dlq.{NODE}.>", stream=subjects.dlq_stream(NODE))
    for n, handle in enumerate(("hanako@elsewhere", "hanako@elsewhere")):  # as a peer's person; sent twice
        event = ic.UserDeleted(global_handle=handle, home_node="elsewhere", user_id=me["user_id"])
        env = Envelope(type="UserDeleted", node=NODE, service="identity", data=event.model_dump(mode="json"))
        await node.nc.jetstream().publish(subjects.evt(NODE, "identity", "user_deleted"), env.to_bytes(),
                                          headers={subjects.HDR_MSG_ID: f"{env.id}-{n}"})
    dead = set()
    for _ in range(4 * len(SERVICES)):  # every service's privacy consumer refuses it, each send: in any order
        msg = await dlq.next_msg(timeout=30)
        dead.add(msg.subject.split(".")[2])
        if {"points", "bookings"} <= dead:
            break
    assert {"points", "bookings"} <= dead
    after = await state()
    assert {(s, t) for s in after for t in after[s] if after[s][t] != before[s].get(t)} == set()
