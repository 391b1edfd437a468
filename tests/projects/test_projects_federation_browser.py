"""Other municipalities' themes and cases in headless Chromium on a phone-sized screen, at node `suginami`.

The node runs identity, projects and the gateway (uvicorn) on a real nats-server. Its peer `tsurugashima`'s event
stream is on the same server and sourced into FED_SUGINAMI_PROJECTS as the hub would deliver it; the peer's events
are real envelopes published there, applied by the projects service's own consumer. A visitor reads the remote
theme (read-only, a link to the original), a resident follows it and later sees that it changed, and a staff
member starts a draft theme from the peer's case (横展開) that keeps the link.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from nats.js.api import StreamSource

from identity.app import IdentityService
from services.projects import federation as fed_domain
from services.projects.app import ProjectsService
from tests.support.browser import (
    click_link,
    fill,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import Envelope, event_token
from towntip.kernel.bus.streams import ensure_stream, evt_stream_config, fed_stream_config
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE, PEER = "suginami", "tsurugashima"
THEME_ID = "11111111-1111-4111-8111-111111111111"
CASE_ID = "22222222-2222-4222-8222-222222222222"
NOW = datetime.now(UTC).replace(microsecond=0)


def theme(version: int, phase: int) -> dict[str, Any]:
    return {"id": THEME_ID, "origin_node": PEER, "owner_department_name": "都市計画課",
            "title": "高齢者の移動手段の確保", "background": "路線バスが減便された", "target": "75歳以上の方",
            "desired_outcome": "週2回以上の外出", "fields": ["npo-1"], "company_points": "予約システム",
            "phase": phase, "version": version, "published_at": NOW.isoformat()}


CASE = {"id": CASE_ID, "theme_id": THEME_ID, "origin_node": PEER, "owner_department_name": "都市計画課",
        "title": "乗合タクシーの実証", "summary": "予約型乗合交通を半年間運行した",
        "approach": "地元タクシー会社と協定",
        "outcomes": "外出回数が1.6倍", "lessons": "電話予約も必要", "transferability": "団地の多い市で有効",
        "fields": ["npo-1"], "kpis": [{"name": "外出回数", "unit": "回/週", "baseline": "1", "target": "2",
                                      "actual": "1.6", "direction": "increase", "achievement_pct": "60.0"}],
        "partners": ["株式会社アクメ"], "decision": "expand", "version": 1, "published_at": NOW.isoformat()}


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[str, Any, ProjectsService]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    off = SmtpSettings(enabled=False)
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=base), smtp=off)
    projects = ProjectsService(ServiceSettings(service="projects", node_id=NODE, nats_url=nats_server.url,
                                               data_dir=str(tmp_path / "pj"), public_url=base), smtp=off)
    async with started(ident, projects):
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            await ensure_stream(js, evt_stream_config(PEER, "projects"))
            await ensure_stream(js, fed_stream_config(NODE, [StreamSource(
                name=subjects.evt_stream(PEER, "projects"), filter_subject=subjects.evt_all(PEER, "projects"))],
                own="projects"))
            async with projects.sessions() as s, s.begin():  # as the trust anchor's list would say
                await fed_domain.record_members(s, {PEER: "https://tsurugashima.example.jp", NODE: base}, NOW)
            await add_people(nc, NODE, (("kikaku", "企画 太郎", "staff"), ("hanako", "杉並 花子", None)))
            staff = Actor(user_id="user-kikaku-01", global_handle=f"kikaku@{NODE}", display_name="企画 太郎",
                          roles=("staff",))
            await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_ORG_CREATE), {
                "actor": staff.model_dump(mode="json"), "kind": "department", "name": "交通政策課"}, timeout=15)

            async def publish(type_: str, data: dict[str, Any]) -> None:
                env = Envelope(type=type_, node=PEER, service="projects", data=data)
                await js.publish(subjects.evt(PEER, "projects", event_token(type_)), env.to_bytes(),
                                 headers={subjects.HDR_MSG_ID: env.id})

            await publish("ThemePublished", theme(1, 2))
            await publish("CasePublished", CASE)
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,projects",
                              public_url=base)
            async with served(app, "127.0.0.1", port):
                yield base, publish, projects
        finally:
            await nc.close()


async def until(driver: Any, url: str, text: str, timeout: float = 15.0) -> dict[str, Any]:
    """The page once it says `text` (the consumer applies a peer's event a moment after it was published)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        page = await open_page(driver, url)
        if text in page["text"] or asyncio.get_running_loop().time() > deadline:
            return page
        await asyncio.sleep(0.3)


async def test_remote_theme_follow_and_a_case_adopted_into_a_draft(portal, phone_browser) -> None:  # noqa: F811
    base, publish, _projects = portal
    driver = phone_browser

    page = await until(driver, f"{base}/federation/themes", "高齢者の移動手段の確保")
    assert "他の自治体のテーマ" in page["text"] and PEER in page["text"] and page["overflow"] <= 0
    page = await click_link(driver, "高齢者の移動手段の確保")
    assert page["url"] == f"/federation/themes/{PEER}/{THEME_ID}"
    assert "ここでは編集できません" in page["text"] and "元のページを開く" in page["text"]
    original = await run(driver.execute_script, "return document.getElementById('original').href")
    assert original == f"https://tsurugashima.example.jp/themes/{THEME_ID}"
    edit_controls = await run(driver.execute_script,
                              "return document.querySelectorAll('#publish, #advance, #open-call').length")
    assert edit_controls == 0 and "フォローする" not in page["text"]  # no login: nothing to press

    # A resident follows it; the peer moves its phase; the followed list says so.
    await log_in(driver, base, "hanako", "/federation/themes")
    await open_page(driver, f"{base}/federation/themes/{PEER}/{THEME_ID}")
    page = await fill(driver, {}, submit="#follow button")
    assert "フォロー中" in page["text"] and "フォローをやめる" in page["text"]
    page = await open_page(driver, f"{base}/federation/following")
    assert "高齢者の移動手段の確保" in page["text"] and "変更なし" in page["text"]
    await publish("ThemeChanged", theme(2, 3))
    page = await until(driver, f"{base}/federation/following", "更新あり")
    assert "更新あり" in page["text"] and "1 → 最新の版: 2" in page["text"] and "フェーズが進みました" in page["text"]
    page = await click_link(driver, "高齢者の移動手段の確保")  # looking at it counts as seen
    page = await open_page(driver, f"{base}/federation/following")
    assert "変更なし" in page["text"] and page["overflow"] <= 0

    # A staff member starts their own draft from the peer's case (横展開).
    await log_in(driver, base, "kikaku", "/federation/themes")
    page = await open_page(driver, f"{base}/federation/cases")
    assert "乗合タクシーの実証" in page["text"] and "拡大・横展開" in page["text"]
    page = await click_link(driver, "乗合タクシーの実証")
    assert "外出回数" in page["text"] and "60.0 %" in page["text"] and "株式会社アクメ" in page["text"]
    page = await click_link(driver, "この事例から自分たちのテーマを作る")
    prefilled = await run(driver.execute_script, "return document.getElementById('title').value")
    assert prefilled == "乗合タクシーの実証" and page["overflow"] <= 0
    page = await fill(driver, {"title": "杉並区版 乗合タクシー", "target": "区内の団地に住む高齢者"},
                      submit="#adopt button[type=submit]")
    assert page["url"].startswith("/themes/") and "杉並区版 乗合タクシー" in page["text"]
    adopted_url = page["url"]
    assert "下書き" in page["text"] and "もとにした事例" in page["text"] and "乗合タクシーの実証" in page["text"]
    page = await click_link(driver, "変更履歴")
    assert "乗合タクシーの実証" in page["text"] and CASE_ID in page["text"]

    # 広域連携: the peer invites this town to its theme; the staff member declares participation from the copy.
    await publish("ThemeChanged", {**theme(3, 3), "wide_area": True, "invited_nodes": [NODE]})
    page = await until(driver, f"{base}/federation/themes/{PEER}/{THEME_ID}", "この自治体として参加を表明する")
    assert "広域連携テーマ" in page["text"] and "招待された自治体" in page["text"]
    page = await fill(driver, {"note": "隣接区として参加します"}, submit="#participate button")
    assert "この自治体は参加を表明しています" in page["text"]
    assert await run(driver.execute_script, "return document.querySelectorAll('#participate').length") == 0
    # ... and invites the peer to its own theme (published first), from the theme page.
    page = await open_page(driver, f"{base}{adopted_url}")
    page = await fill(driver, {}, submit="#publish button")
    page = await fill(driver, {}, submit="#confirm button")  # publication is asked first
    page = await click_link(driver, "広域連携（他の自治体を招待）")
    assert PEER in page["text"] and page["overflow"] <= 0
    page = await fill(driver, {}, checks=(f"input[value='{PEER}']",), submit="#wide-area button")
    assert page["url"] == adopted_url and "広域連携テーマ" in page["text"]
    invited = await run(driver.execute_script, "return document.querySelector('#wide-area dd').innerText")
    assert invited == PEER


async def test_pages_refuse_what_they_should(portal) -> None:
    """Over plain HTTP: unknown or malformed items are 404, changes need a CSRF token and a login, and no page
    offers to change another town's theme."""
    import httpx

    base, _publish, _projects = portal
    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=20) as http:
        for path in (f"/federation/themes/{PEER}/not-a-uuid", f"/federation/themes/{PEER}/{CASE_ID}",
                     f"/federation/cases/{NODE}/{THEME_ID}", f"/federation/cases/Bad_Node/{CASE_ID}"):
            r = await http.get(path)
            assert r.status_code == 404, path
        for path in ("/federation/following", f"/federation/cases/{PEER}/{CASE_ID}/adopt",
                     f"/themes/{THEME_ID}/wide-area"):
            r = await http.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
        r = await http.post("/federation/follow", data={"kind": "theme", "origin_node": PEER, "id": THEME_ID})
        assert r.status_code == 403
        r = await http.post(f"/federation/themes/{PEER}/{THEME_ID}/participate", data={"note": "x"})
        assert r.status_code == 403
        for _ in range(100):  # the peer's theme arrives a moment after the fixture published it
            r = await http.get(f"/federation/themes/{PEER}/{THEME_ID}")
            if r.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 200 and "ここでは編集できません" in r.text
        assert 'action="/themes/' not in r.text and "/edit" not in r.text
