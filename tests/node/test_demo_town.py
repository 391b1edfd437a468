"""`towntip demo seed` fills a node with a town a newcomer sees alive — communities with posts, a theme in each of
the four phases (課題整理; 対話形成 with an open call; 実証設計 after a fair selection; 成果定着 with its case
published), certified donation projects, courses, dated events — through the services' own endpoints, adding
nothing twice when run again; and the home page shows it, each section standing alone."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.micro import add_service
from nats.micro.request import Request

from identity.app import IdentityService
from services.projects.app import ProjectsService
from services.sns.app import SnsService
from tests.edge.test_cli_edge import cli
from tests.support import bus
from tests.support.browser import click_link, log_in, open_page, phone_browser, run  # noqa: F401
from tests.support.http_server import served
from tests.support.nodes import PW, add_people, gateway_app, points_running, started
from towntip.cli.demo_pilots import PILOTS
from towntip.cli.demo_town import COMMUNITIES, COURSES, PROJECTS, THEMES
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import pilots as plc
from towntip.kernel.contracts import projects as pc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

NODE = "testnode"  # points_running's node
BASE = "http://testserver"


def settings(name: str, nats_url: str, tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        service=name, node_id=NODE, nats_url=nats_url, data_dir=str(tmp_path / name), public_url=BASE
    )


@pytest.fixture
async def town(nats_server, tmp_path: Path) -> AsyncIterator[nats.NATS]:
    """identity, points, sns and projects of one node (no bookings: the seed says so and goes on)."""
    services = [
        IdentityService(settings("identity", nats_server.url, tmp_path)),
        SnsService(settings("sns", nats_server.url, tmp_path)),
        ProjectsService(settings("projects", nats_server.url, tmp_path)),
    ]
    async with points_running(nats_server.url, tmp_path), started(*services):
        nc = await nats.connect(nats_server.url)
        try:
            yield nc
        finally:
            await nc.close()


async def notices_inbox(nc: nats.NATS, asked: list[dict[str, Any]], *, unread: int) -> Any:
    """The notices service's inbox.list as the notices branch declares it (InboxQuery -> InboxPage), standing in
    for that service until it is merged: the home page reads only its `unread`."""

    async def handle(req: Request) -> None:
        asked.append(json.loads(req.data))
        await req.respond(json.dumps({"items": [], "unread": unread, "next_before": None}).encode())

    svc = await add_service(nc, name="notices-test", version="0.0.1")
    await svc.add_endpoint(name="inbox-list", subject=subjects.svc(NODE, "notices", "inbox.list"), handler=handle)
    return svc


async def what_is_there(nc: nats.NATS) -> dict[str, Any]:
    communities = (await bus.call(nc, sc.EP_COMMUNITY_LIST, {}, service=sc.SERVICE, node=NODE))["communities"]
    posts = [
        p["title"]
        for cm in communities
        for p in (await bus.call(nc, sc.EP_POST_LIST, {"community_id": cm["id"]}, service=sc.SERVICE, node=NODE))[
            "posts"
        ]
    ]
    themes = (await bus.call(nc, pc.EP_THEME_LIST, {}, service=pc.SERVICE, node=NODE))["themes"]
    projects = (await bus.call(nc, dc.EP_PROJECT_LIST, {}, service=dc.SERVICE, node=NODE))["projects"]
    courses = (await bus.call(nc, "courses.list", {}, service="points", node=NODE))["courses"]
    cases = (await bus.call(nc, plc.EP_CASE_LIST, {}, service=pc.SERVICE, node=NODE))["cases"]
    results = [
        (await bus.call(nc, pc.EP_RESULT_GET, {"theme_id": th["id"]}, service=pc.SERVICE, node=NODE))
        for th in themes
        if th["phase"] >= 3
    ]
    return {
        "communities": sorted((cm["name"], cm["members"]) for cm in communities),
        "posts": sorted(posts),
        "themes": sorted((th["title"], th["phase"], th["status"]) for th in themes),
        "projects": sorted((p["code"], p["takes_donations"]) for p in projects),
        "courses": sorted(c["code"] for c in courses),
        "cases": sorted((cs["title"], cs["version"], cs["decision"], len(cs["kpis"])) for cs in cases),
        "results": sorted((r["theme_title"], r["status"], len(r["pilot_candidates"])) for r in results),
    }


async def test_the_demo_town_is_seeded_once_and_the_home_page_shows_it(
    town: nats.NATS, nats_server, tmp_path, capsys
) -> None:
    nc = town
    args = ("demo", "seed", "--nats-url", nats_server.url, "--node", NODE)
    assert await cli(*args) == 0
    out, err = capsys.readouterr()
    assert "the demo facilities were not put" in err  # no bookings service on this node
    assert "demo town: 4 communities, 4 themes, 3 projects, 3 courses (sample values)" in out
    first = await what_is_there(nc)
    assert await cli(*args) == 0  # again: found, nothing added twice
    again = await what_is_there(nc)
    assert again == first
    assert [name for name, _ in first["communities"]] == sorted(c[1] for c in COMMUNITIES)
    assert len(first["posts"]) == sum(len(c[4]) for c in COMMUNITIES)
    assert ("つるがしま菜の花の会", 2) in first["communities"]  # its leader and a resident who posted
    assert first["themes"] == sorted((th[0], th[6], "published") for th in THEMES)  # one in each phase
    assert [th[6] for th in THEMES] == [1, 2, 3, 4]
    assert first["projects"] == sorted((p[0], True) for p in PROJECTS)
    assert first["courses"] == sorted(c[0] for c in COURSES)
    # Phases 3 and 4 went through the call's fair selection (one proposal selected each), and the phase 4 theme's
    # case is published once, with its KPI, whatever the second run did.
    assert first["results"] == sorted((th[0], "published", 1) for th in THEMES if th[6] >= 3)
    case = PILOTS[THEMES[3][0]]["outcome"]["case"]["title"]
    assert first["cases"] == [(case, 1, "expand", 1)]

    # The home page: each section from its service, a signed-in person's own cards (no bookings, no notices
    # service here: those cards are simply absent).
    await add_people(nc, NODE, [("hanako", "山田 花子", None)])
    gateway = gateway_app(
        nats_server.url, tmp_path, node=NODE, services="identity,points,sns,projects", public_url=BASE
    )
    async with (
        gateway.router.lifespan_context(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url=BASE) as client,
    ):
        page = (await client.get("/")).text
        for want in (
            'id="hm-events"',
            "菜の花ウォーク・菜の花まつり",
            'id="hm-communities"',
            "つるがしま菜の花の会",
            'id="hm-themes"',
            THEMES[1][0],
            "対話形成",
            'id="hm-projects"',
            "菜の花プロジェクト",
            "0円 / 目標 300,000円",
            'id="hm-cases"',
            case,
            "/town/emblem?v=",
        ):
            assert want in page, want
        login = await client.get("/login")
        csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
        r = await client.post("/login", data={"csrf": csrf, "login": "hanako", "password": PW, "next": "/"})
        assert r.status_code == 303
        mine = (await client.get("/")).text
        assert "山田 花子さん、こんにちは" in mine and 'id="hm-you"' in mine and "0 pt" in mine
        assert "未読のお知らせ" not in mine and "次の予約" not in mine  # services this node does not run
        english = (await client.get("/?lang=en")).text
        assert "Upcoming events" in english and "Hello, 山田 花子" in english and "¥0 of ¥300,000" in english
        emblem = await client.get("/town/emblem")
        assert emblem.headers["content-type"].startswith("image/svg+xml")
    asked: list[dict[str, Any]] = []
    inbox = await notices_inbox(nc, asked, unread=2)
    gateway = gateway_app(
        nats_server.url, tmp_path, node=NODE, services="identity,points,sns,projects,notices", public_url=BASE
    )
    try:
        async with (
            gateway.router.lifespan_context(gateway),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url=BASE) as client,
        ):
            login = await client.get("/login")
            csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
            await client.post("/login", data={"csrf": csrf, "login": "hanako", "password": PW, "next": "/"})
            assert "未読のお知らせ 2件" in (await client.get("/")).text
    finally:
        await inbox.stop()
    assert asked and asked[0]["folder"] == "unread" and asked[0]["actor"]["display_name"] == "山田 花子"
    async with (
        gateway.router.lifespan_context(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url=BASE) as client,
    ):
        emblem = await client.get("/town/emblem")
        assert emblem.headers["content-type"].startswith("image/svg+xml") and b"<svg" in emblem.content
        assert "sandbox" in emblem.headers["content-security-policy"]


@pytest.mark.browser
async def test_the_seeded_home_page_on_a_phone(town: nats.NATS, nats_server, tmp_path, phone_browser) -> None:  # noqa: F811
    """The demo town's home page as a newcomer and as a signed-in resident see it on a phone: the town's name and
    emblem, cards for each section, nothing wider than the screen, and a card that leads to its page."""
    nc, d = town, phone_browser
    assert await cli("demo", "seed", "--nats-url", nats_server.url, "--node", NODE) == 0
    await add_people(nc, NODE, [("hanako", "山田 花子", None)])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = gateway_app(
        nats_server.url, tmp_path, node=NODE, services="identity,points,sns,projects", public_url=base
    )
    async with served(gateway, "127.0.0.1", port):  # uvicorn runs its lifespan
        home = await open_page(d, base + "/")
        assert home["overflow"] <= 0 and "近日のイベント" in home["text"] and "寄附を受け付けている" in home["text"]
        assert await run(d.execute_script, "return document.querySelector('.hm-hero img').naturalWidth") > 0
        await run(d.save_screenshot, str(tmp_path / "home.png"))
        await run(d.execute_script, "document.getElementById('hm-themes').scrollIntoView()")
        await run(d.save_screenshot, str(tmp_path / "home-themes.png"))
        mine = await log_in(d, base, "hanako", "/")
        assert "山田 花子さん、こんにちは" in mine["text"] and "わたしのポイント" in mine["text"]
        assert mine["overflow"] <= 0
        await run(d.save_screenshot, str(tmp_path / "home-signed-in.png"))
        page = await click_link(d, "キャンドルナイト実行委員会")  # among the newest three
        assert "廃油キャンドルづくり教室" in page["text"]
        # The themes list: one theme in each phase, each card with its family's picture drawn.
        themes = await open_page(d, base + "/themes")
        assert themes["overflow"] <= 0
        for phase in ("課題整理", "対話形成", "実証設計", "成果定着"):
            assert phase in themes["text"], phase
        drawn = "return [...document.querySelectorAll('#themes img.card-pic')].map(i => i.naturalWidth > 0 && i.alt)"
        assert sorted(await run(d.execute_script, drawn)) == sorted(
            ["環境・自然の絵", "環境・自然の絵", "まちづくりの絵", "仕事・くらし・経済の絵"]  # by the first field
        )
        await run(d.save_screenshot, str(tmp_path / "themes.png"))
