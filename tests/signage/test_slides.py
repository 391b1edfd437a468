"""Slides the node makes from its own data (issue 19 point 2), on SQLite and PostgreSQL with the real services
running in this process over a real nats-server: staff add a slide with a source, a second staff member approves
it, the signage service asks points, sns and bookings over the bus, and a screen syncs the slide and fetches its
JSON; no person's name reaches a screen; new data makes new bytes; a source that stops answering leaves the last
good data with its time, one that never answered a short note. Refusals change nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import func, select

from services.bookings.app import BookingsService
from services.points.app import PointsService
from services.signage import slides
from services.signage.app import SignageService
from services.signage.models import items
from services.signage.models import slides as slide_rows
from services.sns.app import SnsService
from tests.bookings.helpers import ROOM
from tests.signage.helpers import CHIEF, CLERK, HANAKO, NODE, NOW, Node, Screen
from tests.support.bus import wait_for
from tests.support.nodes import started
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import notebook as nb
from towntip.kernel.contracts import notices_feeds as nf
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

TARO = Actor(user_id="user-taro-0001", global_handle=f"taro@{NODE}", display_name="鈴木 太郎")
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
SCREEN = "hall-1f"


def _settings(service: str, nats_url: str, tmp_path: Path, database: tuple[str, str | None] | None = None
              ) -> ServiceSettings:
    url, schema = database or (f"sqlite+aiosqlite:///{tmp_path}/{service}.sqlite3", None)
    return ServiceSettings(service=service, node_id=NODE, nats_url=nats_url, data_dir=str(tmp_path / service),
                           database_url=url, database_schema=schema or "", card_key="00" * 32)


@pytest.fixture
async def town(nats_server: Any, database: tuple[str, str | None], tmp_path: Path
               ) -> AsyncIterator[tuple[Node, SnsService]]:
    """Signage on `database` (its clock at helpers.NOW); points, sns and bookings on SQLite files of their own.
    Notices and projects are not running: their slides must say so, not break."""
    points = PointsService(_settings("points", nats_server.url, tmp_path))
    sns = SnsService(_settings("sns", nats_server.url, tmp_path), clock=lambda: NOW - timedelta(hours=1))
    bookings = BookingsService(_settings("bookings", nats_server.url, tmp_path), clock=lambda: NOW, sweep_every=None)
    signage = SignageService(_settings("signage", nats_server.url, tmp_path, database), clock=lambda: NOW)
    nc = await nats.connect(nats_server.url)
    try:
        async with started(points, sns, bookings, signage):
            yield Node(nc, signage, nats_server.url), sns
    finally:
        await nc.close()


async def ask(node: Node, service: str, endpoint: str, payload: Any) -> Any:
    return await rpc.call(node.nc, subjects.svc(NODE, service, endpoint), payload, timeout=10)


async def shown(screen: Screen, item: c.Item) -> dict[str, Any]:
    """The slide's JSON as the screen fetches it (its own content subject and inbox), checked against its sha256."""
    req = c.ContentRequest(id=item.id, sha256=item.sha256)
    msg = await screen.nc.request(c.content_subject(NODE, screen.name), req.model_dump_json().encode(), timeout=5)
    assert hashlib.sha256(msg.data).hexdigest() == item.sha256
    return dict(json.loads(msg.data))


async def changed(screen: Screen, version: str) -> c.SyncReply | None:
    reply = await screen.sync(have=version)
    return None if reply.unchanged else reply


async def failing(node: Node, source: str) -> c.DataSlide | None:
    slide = (await listed(node))[source]
    return slide if slide.failing else None


async def rounds_after(node: Node, rounds: int) -> bool:
    return node.svc.slides.rounds > rounds


async def listed(node: Node) -> dict[str, c.DataSlide]:
    got = c.SlideList.model_validate(await node.call(c.EP_SLIDE_LIST, c.SlideListQuery(actor=CLERK)))
    return {s.source: s for s in got.slides}


async def test_slides_from_data_reach_a_screen_current_and_without_names(town: tuple[Node, SnsService]) -> None:
    node, sns = town
    # The node's own data, as staff and residents made it.
    await ask(node, "points", pc.EP_EVENT_PUT, {
        "code": "bosai-1209", "name": "防災講座", "starts_at": "2026-12-09T14:00:00+09:00",
        "ends_at": "2026-12-09T16:00:00+09:00", "venue_name": "中央公民館", "capacity": 30})
    await ask(node, "points", pc.EP_EVENT_PUT, {
        "code": "old-1101", "name": "終わった催し", "starts_at": "2026-11-01T10:00:00+09:00"})
    com = await ask(node, sc.SERVICE, sc.EP_COMMUNITY_OPEN, sc.CommunityOpen(
        actor=TARO, name="川をきれいにする会", description="清掃活動", categories=["npo-7"]))
    await ask(node, sc.SERVICE, sc.EP_POST_CREATE, sc.PostCreate(
        actor=TARO, community_id=com["id"], title="12月の清掃活動", body="13日 9時 河川敷に集合（鈴木）"))
    await ask(node, "bookings", bc.EP_FACILITY_PUT, {**ROOM, "actor": CLERK.model_dump(mode="json")})
    await ask(node, "bookings", bc.EP_BOOKING_CREATE, {
        "actor": HANAKO.model_dump(mode="json"), "facility_id": ROOM["id"], "start": "2026-12-07T14:00:00+09:00",
        "end": "2026-12-07T15:00:00+09:00", "purpose": "自治会の会合"})

    made = {}
    for source in ("events", "news", "points", "bookings", "notices"):
        req = c.SlideCreate(actor=CLERK, source=source, valid_from=LONG_AGO,
                            facility_id=ROOM["id"] if source == "bookings" else None)
        slide = c.DataSlide.model_validate(await node.call(c.EP_SLIDE_CREATE, req))
        assert slide.item.status == "pending" and slide.item.kind == "slide" and slide.item.mime == c.SLIDE_MIME
        made[source] = slide.item.id

    # The service asks the sources at once (a commit wakes it): staff see each slide current before approving.
    async def refreshed() -> dict[str, c.DataSlide] | None:
        now = await listed(node)
        return now if all(s.refreshed_at is not None for s in now.values()) else None

    first = await wait_for(refreshed, "every slide asked its source", 20)
    assert first["events"].body.lines == ("12/9(水) 14:00 防災講座 — 中央公民館 — 残り30席",)
    assert not first["events"].failing and first["events"].data_at == NOW
    assert first["news"].body.lines == ("12/7(月) 川をきれいにする会：12月の清掃活動",)
    assert first["bookings"].body.title == "本日の利用予定 — 市庁舎6F会議室"
    assert first["bookings"].body.lines == ("14:00〜15:00 利用予定",)
    assert first["points"].body.body == "まだ集計がありません No figures yet" and not first["points"].failing
    assert first["notices"].failing and first["notices"].data_at is None
    assert first["notices"].body.body == "ただいま情報を取得できません Not available right now"

    # A second staff member approves each; a playlist puts them on the screen.
    for item_id in made.values():
        await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item_id))
    await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CLERK, name=SCREEN, place="市役所 1F"))
    await node.call(c.EP_PLAYLIST_PUT, c.PlaylistPut(
        actor=CLERK, name="まちの情報", entries=tuple(c.PlaylistEntry(item_id=i) for i in made.values())))
    screen = await node.screen(SCREEN)
    try:
        manifest = await screen.sync()
        by_id = {i.id: i for i in manifest.items}
        assert set(by_id) == set(made.values())
        on_screen = {source: await shown(screen, by_id[i]) for source, i in made.items()}
        assert on_screen["events"]["lines"] == ["12/9(水) 14:00 防災講座 — 中央公民館 — 残り30席"]
        assert on_screen["bookings"]["kicker"] == "施設予約 Today's bookings"
        everything = json.dumps(on_screen, ensure_ascii=False)
        for private in ("太郎", "鈴木", "taro", "花子", "山田", "hanako", "自治会の会合", "河川敷"):
            assert private not in everything, private

        # New data: the events slide gets new bytes at the next round, and the screen's next sync brings them.
        await ask(node, "points", pc.EP_EVENT_PUT, {
            "code": "kids-1210", "name": "子ども食堂", "starts_at": "2026-12-10T17:00:00+09:00"})
        node.svc.slides.wake()  # what the minute's round would do (SLIDE_REFRESH_SECONDS)
        again = await wait_for(lambda: changed(screen, manifest.version), "the screen's manifest changed", 20)
        events_item = next(i for i in again.items if i.id == made["events"])
        assert events_item.sha256 != by_id[made["events"]].sha256
        assert (await shown(screen, events_item))["lines"] == [
            "12/9(水) 14:00 防災講座 — 中央公民館 — 残り30席", "12/10(木) 17:00 子ども食堂"]
        assert {i.sha256 for i in again.items if i.id != made["events"]} == {
            i.sha256 for i in manifest.items if i.id != made["events"]}  # the others did not change

        # sns stops answering: the news slide keeps its last data, with that data's time.
        await sns.stop()
        node.svc.slides.wake()
        news = await wait_for(lambda: failing(node, "news"), "the news slide marked stale", 20)
        assert news.data_at == NOW
        stale_manifest = await screen.sync()
        news_item = next(i for i in stale_manifest.items if i.id == made["news"])
        stale = await shown(screen, news_item)
        assert stale["lines"] == ["12/7(月) 川をきれいにする会：12月の清掃活動"]
        assert stale["footer"] == "12/7(月) 10:15 時点の情報です As of 10:15"
        # Still down a round later: the same bytes, so the screens have nothing new to fetch.
        rounds = node.svc.slides.rounds
        node.svc.slides.wake()
        await wait_for(lambda: rounds_after(node, rounds + 1), "two more rounds", 20)
        assert (await screen.sync(have=stale_manifest.version)).unchanged
    finally:
        await screen.nc.close()


async def test_refusals_change_nothing(node: Node) -> None:
    async def count() -> tuple[int, int]:
        async with node.svc.sessions() as s:
            return (
                int((await s.execute(select(func.count()).select_from(items))).scalar_one()),
                int((await s.execute(select(func.count()).select_from(slide_rows))).scalar_one()),
            )

    async def refused(code: str, payload: dict[str, Any]) -> None:
        before = await count()
        with pytest.raises(errors.ServiceError) as info:
            await node.call(c.EP_SLIDE_CREATE, payload)
        assert info.value.error_code == code, info.value.reason
        assert await count() == before

    base = {"actor": CLERK.model_dump(mode="json"), "valid_from": NOW.isoformat()}
    await refused(c.SLIDE_FACILITY.code, {**base, "source": "bookings"})
    await refused(c.SLIDE_FACILITY.code, {**base, "source": "events", "facility_id": "city-hall-6f"})
    await refused(c.VALIDITY.code, {**base, "source": "events", "valid_until": (NOW - timedelta(days=1)).isoformat()})
    await refused(c.STAFF_ONLY.code, {**base, "actor": HANAKO.model_dump(mode="json"), "source": "events"})
    await refused("request.invalid", {**base, "source": "weather"})

    # The one who added a slide does not approve it.
    slide = await node.call(c.EP_SLIDE_CREATE, c.SlideCreate(actor=CLERK, source="themes", valid_from=NOW))
    with pytest.raises(errors.ServiceError) as info:
        await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CLERK, item_id=slide["item"]["id"]))
    assert info.value.error_code == c.SAME_APPROVER.code
    assert (await node.call(c.EP_CONTENT_GET, c.ItemAction(actor=CLERK, item_id=slide["item"]["id"])))[
        "status"] == "pending"


# ---- the rendering alone (pure functions: no database) ------------------------------------------------------------


def test_events_show_seats_left_full_and_waiting() -> None:
    def ev(code: str, name: str, day: int, **more: Any) -> pc.EventOut:
        return pc.EventOut(code=code, name=name, starts_at=datetime(2026, 12, day, 5, tzinfo=UTC), **more)

    body = slides.events(pc.EventList(events=[
        ev("b", "餅つき大会", 12, capacity=50, signed_up=50, seats_left=0, waitlisted=4),
        ev("a", "防災講座", 9, capacity=30, signed_up=18, seats_left=12),
        ev("c", "読み聞かせ", 10, signed_up=7),
        ev("z", "昨日の催し", 6),
    ]), title="これからのイベント", now=NOW)
    assert body.lines == (
        "12/9(水) 14:00 防災講座 — 残り12席",
        "12/10(木) 14:00 読み聞かせ — 申込7人",
        "12/12(土) 14:00 餅つき大会 — 満席 — キャンセル待ち4人",
    )


def test_themes_points_notices_render_public_figures_only() -> None:
    theme = {"id": "t", "origin_node": NODE, "owner_department_id": "d", "owner_department_name": "政策推進課",
             "hearing_id": None, "title": "空き店舗の活用", "background": "", "target": "", "desired_outcome": "",
             "fields": [], "company_points": "", "status": "published", "phase": 2, "version": 1,
             "created_at": NOW, "created_by": "x", "updated_at": NOW, "published_at": NOW,
             "requirements": {"conditions": "", "scope": "", "deadline": NOW + timedelta(days=10), "criteria": [],
                              "call_opened_at": NOW, "updated_at": NOW}}
    themes = prc.ThemeList(themes=[
        prc.Theme.model_validate(theme),
        prc.Theme.model_validate({**theme, "title": "まだ課題整理", "phase": 1}),
        prc.Theme.model_validate({**theme, "title": "よその町", "origin_node": "elsewhere"}),
    ])
    assert slides.themes(themes, title="募集", node=NODE, now=NOW).lines == ("空き店舗の活用 — 提案締切 12/17(木)",)

    figures = nb.DistrictFigures(points=3250, districts=[
        nb.DistrictTotal(district="大橋地区", points=2000, participations=320),
        nb.DistrictTotal(district="藤金地区", points=1250, participations=98)])
    body = slides.points(figures, title="地区別")
    assert body.lines == ("大橋地区 2,000 pt（参加 320 回）", "藤金地区 1,250 pt（参加 98 回）")
    assert body.footer == "まち全体 3,250 pt"

    notice = nf.PublicNotice(id="n1", title="年末年始のごみ収集", summary="", link=None, category=None, source="",
                             published_at=NOW, updated_at=NOW)
    body = slides.notices(nf.PublicNotices(notices=[notice]), title="お知らせ")
    assert body.lines == ("12/7(月) 年末年始のごみ収集",)


def test_the_signage_user_may_ask_only_the_reads_its_slides_need(tmp_path: Path) -> None:
    """The node's NATS config: svc-signage may publish to exactly the endpoints slide_feed.py asks; the districts'
    totals are a service-only endpoint the gateway may not call."""
    import re

    from services.signage.slide_feed import CALLS, READS
    from towntip.node.natsauth import BusUsers

    config = BusUsers(tmp_path, NODE, subjects.SERVICES).render()

    def user(name: str) -> str:
        found = re.search(r'\{ user: "' + re.escape(name) + r'".*', config)
        assert found, name
        return found.group(0)

    signage = user("svc-signage")
    publish = signage[signage.index("publish"):signage.index("subscribe")]
    asked = set(re.findall(rf'"svc\.{NODE}\.([^"]+)"', publish))
    assert asked == set(READS) | {f"{ep}.>" for ep in CALLS}
    gateway = user("gateway")
    assert f'"svc.{NODE}.points.figures.districts.>"' in gateway[gateway.index("deny"):]


async def test_staff_add_and_list_data_slides_over_http(nats_server: Any, tmp_path: Path) -> None:
    """POST /api/v1/signage/slides (201) and GET /api/v1/signage/slides with a staff bearer token; a resident is
    refused, a slide of bookings without its facility is a 400 with its code (SQLite: the HTTP layer is the same on
    both databases, which the tests above cover)."""
    from identity.app import IdentityService
    from tests.support.api_node import BASE, api_node, problem

    def settings(service: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE)

    services = [IdentityService(settings("identity")), SignageService(settings("signage"))]
    async with api_node(nats_server.url, tmp_path, services, node=NODE,
                        people={"hanako": "山田 花子", "clerk": "窓口 職員"}, staff=("clerk",)) as api:
        async with api.client("hanako") as hanako, api.client("clerk") as clerk:
            body = {"source": "notices", "valid_from": NOW.isoformat()}
            problem(await hanako.post("/api/v1/signage/slides", json=body), 403, "request.role_missing")
            problem(await clerk.post("/api/v1/signage/slides", json={**body, "source": "bookings"}), 400,
                    c.SLIDE_FACILITY.code)
            r = await clerk.post("/api/v1/signage/slides", json=body)
            assert r.status_code == 201 and r.json()["item"]["status"] == "pending", r.text
            assert r.json()["item"]["created_by"] == f"clerk@{NODE}"
            r = await clerk.get("/api/v1/signage/slides")
            assert r.status_code == 200 and [s["source"] for s in r.json()["slides"]] == ["notices"], r.text
