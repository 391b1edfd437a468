"""Cards with pictures and what waits, in headless Chromium on a phone-sized screen: the /communities and /themes
lists show each card's illustration (its first category's family, with Japanese alternative text); a community's
leader finds リーダーの用事 on My Page and the home page (who joined and what others wrote this week), with a link to
the community; the secretariat's /staff counts the themes whose call closed and that wait for the selection.
Identity, sns and projects run on a real nats-server; the gateway on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest

from gateway.portal import pictures
from identity.app import IdentityService
from services.projects.app import ProjectsService
from services.sns.app import SnsService
from tests.support import bus
from tests.support.browser import (
    click_link,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import projects as pc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
# The pictures on the cards of a list: their family, alternative text, and whether the browser drew them.
PICTURES = """return [...document.querySelectorAll(arguments[0] + ' img.card-pic')].map(
    i => [i.getAttribute('src').split('/').pop().split('.')[0], i.alt, i.complete && i.naturalWidth > 0])"""


class Clock:
    """The projects service's clock, moved past a call's deadline once the call is open."""

    offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def who(user: Any) -> dict[str, Any]:
    return {"user_id": user.id, "global_handle": user.global_handle, "display_name": user.display_name,
            "roles": list(user.roles)}


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(service=name, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / name), public_url=base)

    clock = Clock()
    services = (IdentityService(settings("identity")), SnsService(settings("sns")),
                ProjectsService(settings("projects"), clock=clock))
    async with started(*services):
        nc = await nats.connect(nats_server.url)
        try:
            people = await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None),
                                                 ("kyodo", "協働 職員", "staff"),
                                                 ("jimu", "共創 事務局", "secretariat")))
            hanako, taro, kyodo = (who(people[h]) for h in ("hanako", "taro", "kyodo"))

            async def sns(endpoint: str, payload: dict[str, Any]) -> Any:
                return await bus.call(nc, endpoint, payload, service=sc.SERVICE, node=NODE)

            async def projects(endpoint: str, payload: dict[str, Any]) -> Any:
                return await bus.call(nc, endpoint, payload, service=pc.SERVICE, node=NODE)

            # Hanako leads two communities; Taro joins the first and posts, and comments on her post.
            garden = await sns(sc.EP_COMMUNITY_OPEN, {"actor": hanako, "name": "まちなか菜園クラブ",
                                                      "description": "空き地で野菜を育てます。",
                                                      "categories": ["npo-7"]})
            await sns(sc.EP_COMMUNITY_OPEN, {"actor": hanako, "name": "親子で読み聞かせ",
                                             "description": "絵本を読みます。", "categories": ["npo-13"]})
            await sns(sc.EP_COMMUNITY_JOIN, {"actor": taro, "community_id": garden["id"]})
            await sns(sc.EP_POST_CREATE, {"actor": taro, "community_id": garden["id"], "title": "トマトの苗",
                                          "body": "苗を10本持っていきます。"})
            mine = await sns(sc.EP_POST_CREATE, {"actor": hanako, "community_id": garden["id"],
                                                 "title": "土曜の集まり", "body": "9時に集合です。"})
            await sns(sc.EP_COMMENT_CREATE, {"actor": taro, "post_id": mine["id"], "body": "行きます"})
            # A published theme of the town in the 防災・安全 family.
            dept = await projects(pc.EP_ORG_CREATE, {"actor": kyodo, "kind": "department", "name": "防災課"})
            theme = await projects(pc.EP_THEME_CREATE, {
                "actor": kyodo, "owner_department_id": dept["id"], "title": "避難所の開設を早くする",
                "background": "夜間の開設に時間がかかる", "target": "自治会", "desired_outcome": "30分以内に開設",
                "fields": ["npo-8"], "company_points": "鍵と備蓄の管理"})
            await projects(pc.EP_THEME_PUBLISH, {"actor": kyodo, "theme_id": theme["id"]})
            # And one whose call has closed: the secretariat's to select (the clock moved past its deadline).
            called = await projects(pc.EP_THEME_CREATE, {
                "actor": kyodo, "owner_department_id": dept["id"], "title": "商店街の空き店舗を使う",
                "background": "空き店舗が増えた", "target": "商店会", "desired_outcome": "3店舗の活用",
                "fields": ["npo-16"], "company_points": "店舗の改装と運営"})
            act = {"actor": kyodo, "theme_id": called["id"]}
            await projects(pc.EP_THEME_PUBLISH, act)
            await projects(pc.EP_THEME_REQUIREMENTS, {
                **act, "conditions": "市内の事業者", "scope": "半年の実証",
                "criteria": [{"name": "効果", "weight": 100}], "deadline": (clock() + timedelta(days=7)).isoformat()})
            await projects(pc.EP_THEME_ADVANCE, {**act, "to_phase": 2, "note": "公募へ"})
            await projects(pc.EP_THEME_CALL_OPEN, act)
            clock.offset = timedelta(days=8)
        finally:
            await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns,projects", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def test_pictures_on_the_lists_and_the_leaders_card_on_a_phone(portal, phone_browser, tmp_path: Path) -> None:  # noqa: F811
    base, d = portal, phone_browser

    page = await open_page(d, f"{base}/communities")
    assert "まちなか菜園クラブ" in page["text"] and page["overflow"] <= 0
    assert await run(d.execute_script, PICTURES, "#communities") == [
        ["learning", "子ども・学びの絵", True], ["nature", "環境・自然の絵", True]]  # newest first
    await run(d.save_screenshot, str(tmp_path / "communities.png"))

    page = await open_page(d, f"{base}/themes")
    assert "避難所の開設を早くする" in page["text"] and page["overflow"] <= 0
    assert await run(d.execute_script, PICTURES, "#themes") == [
        ["work", "仕事・くらし・経済の絵", True], ["safety", "防災・安全の絵", True]]  # newest first
    await run(d.save_screenshot, str(tmp_path / "themes.png"))
    page = await open_page(d, f"{base}/themes?lang=en")
    assert (await run(d.execute_script, PICTURES, "#themes"))[1] == [
        "safety", "Illustration: Safety and disasters", True]
    await open_page(d, f"{base}/themes?lang=ja")

    # The leader: her card on My Page lists what came this week, the busy community first.
    page = await log_in(d, base, "hanako", "/me")
    assert "リーダーの用事" in page["text"] and page["overflow"] <= 0, page["text"]
    card = await run(d.execute_script, "return document.getElementById('leader-todo').innerText")
    assert card.index("まちなか菜園クラブ") < card.index("親子で読み聞かせ")
    for want in ("新しいメンバー 1人", "新しい投稿 1件", "新しいコメント 1件", "新しい動きはありません"):
        assert want in card, card
    await run(d.execute_script, "document.getElementById('leader-todo').scrollIntoView()")
    await run(d.save_screenshot, str(tmp_path / "leader-mypage.png"))
    home = await open_page(d, f"{base}/")
    assert "リーダーの用事" in home["text"] and home["overflow"] <= 0
    await run(d.save_screenshot, str(tmp_path / "leader-home.png"))
    page = await click_link(d, "まちなか菜園クラブ")
    assert page["url"].startswith("/communities/") and "トマトの苗" in page["text"]

    # A member who leads nothing has no such card.
    page = await log_in(d, base, "taro", "/me")
    assert "マイページ" in page["text"] and "リーダーの用事" not in page["text"]

    # The secretariat's landing page: the theme whose call closed waits for its selection.
    page = await log_in(d, base, "jimu", "/staff")
    waiting = await run(d.execute_script, "return document.getElementById('waiting').innerText")
    assert "選考・結果の公表を待つテーマ\n1" in waiting and "未対応のお問い合わせ" in waiting, waiting
    assert page["overflow"] <= 0
    await run(d.save_screenshot, str(tmp_path / "secretariat.png"))


async def test_a_picture_that_is_none_is_not_found(portal) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=portal) as client:
        ok = await client.get(f"/static/pictures/nature.svg?v={pictures.VERSION}")
        assert ok.status_code == 200 and ok.headers["content-type"] == "image/svg+xml"
        assert "immutable" in ok.headers["cache-control"] and b"<svg" in ok.content
        for bad in ("../towntip", "nature.png", "NATURE", "%2e%2e"):
            assert (await client.get(f"/static/pictures/{bad}.svg")).status_code == 404, bad
