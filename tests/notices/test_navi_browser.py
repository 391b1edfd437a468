"""まちづくりナビ and the notification pages in headless Chromium on a phone-sized screen: Hanako (interested in 環境,
living in 杉下小学校区) sees a community and a volunteer opening with their reasons, follows one (counted, never who),
finds Taro's friend request among her notifications, and switches comments off; staff see only counts. The gateway
is served by uvicorn on a real port; identity, sns, points and notices run beside it on a real nats-server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.sns.app import SnsService
from tests.notices.test_activity import notices_service
from tests.support.browser import (
    fill,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.bus import call, wait_for
from tests.support.http_server import served
from tests.support.nodes import PW, add_people, gateway_app, points_running, started
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import notices_activity as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "testnode"


async def _setup(nc: nats.NATS, users: dict[str, ic.User]) -> None:
    """Hanako's profile (interests, district); Taro's community and friend request; an event with volunteers."""
    token = (await call(nc, ic.EP_LOGIN, ic.LoginIn(login="hanako", password=PW), service="identity"))["session_token"]
    await call(
        nc,
        ic.EP_PROFILE_UPDATE,
        ic.ProfileUpdateIn(session_token=token, interests=["npo-7"], district="杉下小学校区"),
        service="identity",
    )
    taro = Actor(user_id=users["taro"].id, global_handle=users["taro"].global_handle, display_name="鈴木 太郎")
    await call(
        nc,
        sc.EP_COMMUNITY_OPEN,
        sc.CommunityOpen(actor=taro, name="川をきれいにする会", categories=["npo-7"]),
        service="sns",
    )
    await call(
        nc, sc.EP_COMMUNITY_OPEN, sc.CommunityOpen(actor=taro, name="将棋の会", categories=["npo-2"]), service="sns"
    )
    await call(
        nc,
        sc.EP_FRIEND_REQUEST,
        {"actor": taro.model_dump(), "to": users["hanako"].global_handle, "to_name": "山田 花子"},
        service="sns",
    )
    start = datetime.now(UTC) + timedelta(days=3)
    await call(
        nc,
        pc.EP_EVENT_PUT,
        pc.EventIn(
            code="kawa-seisou",
            name="杉下の川そうじ",
            volunteer_points=10,
            participant_points=1,
            starts_at=start,
            venue_name="杉下小学校区 公民館",
            activity="carry_out",
        ),
    )


@pytest.fixture
async def portal(nats_server: Any, tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(service: str) -> ServiceSettings:
        return ServiceSettings(
            service=service, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / service), public_url=base
        )

    notices = notices_service(nats_server.url, tmp_path, (f"sqlite+aiosqlite:///{tmp_path}/notices.db", None))
    async with (
        points_running(nats_server.url, tmp_path),
        started(IdentityService(settings("identity")), SnsService(settings("sns")), notices),
    ):
        nc = await nats.connect(nats_server.url)
        users = await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", "staff")))
        await _setup(nc, users)
        hanako = Actor(user_id=users["hanako"].id, global_handle=users["hanako"].global_handle, display_name="花子")
        await wait_for(
            lambda: call(nc, c.EP_ACTIVITY_LIST, c.ActivityQuery(actor=hanako), service="notices"),
            "the notices service",
        )
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns,points,notices", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def shot(d: Any, tmp_path: Path, name: str) -> None:
    """A screenshot of the page (looked at while writing this test); kept under $TOWNTIP_SHOTS when it is set."""
    await run(d.save_screenshot, str(tmp_path / f"{name}.png"))
    if os.environ.get("TOWNTIP_SHOTS"):
        await run(d.save_screenshot, os.path.join(os.environ["TOWNTIP_SHOTS"], f"{name}.png"))


async def test_navi_and_notification_settings_on_a_phone(portal: str, phone_browser: Any, tmp_path: Path) -> None:  # noqa: F811
    base, d = portal, phone_browser

    page = await log_in(d, base, "hanako", "/navi")
    assert page["url"] == "/navi" and "まちづくりナビ" in page["text"] and page["overflow"] <= 0, page["text"]
    assert "プロフィールの関心と地区をもとにしています" in page["text"]  # no life-stage answers yet: the profile
    assert "川をきれいにする会" in page["text"] and "環境に関心があるため" in page["text"]
    assert "杉下の川そうじ" in page["text"] and "ボランティア募集" in page["text"]
    assert "将棋の会" not in page["text"]  # nothing fits it
    await shot(d, tmp_path, "navi")

    # Following a suggestion goes through the counting redirect to the community's page.
    page = await open_page(d, base + "/navi")
    from selenium.webdriver.common.by import By

    link = d.find_element(By.CSS_SELECTOR, "#suggestions li[data-kind=community] a")
    assert link.get_attribute("href").startswith(base + "/navi/go?") and link.size["height"] >= 24
    from tests.support.browser import click_and_wait

    page = await run(click_and_wait, d, link)
    assert page["url"].startswith("/communities/") and "川をきれいにする会" in page["text"]
    page = await open_page(d, base + "/navi/go?kind=community&reason=interest&to=//evil.example/x")
    assert "そのおすすめは見つかりません" in page["text"]  # no open redirect; the refusal in words

    # Taro's friend request is among her notifications; settings: comments off, push asked of the browser.
    page = await open_page(d, base + "/notifications")
    assert "鈴木 太郎（taro@testnode）さんからトモダチ申請が届きました" in page["text"], page["text"]
    assert page["overflow"] <= 0
    await shot(d, tmp_path, "notifications")
    page = await fill(d, {}, submit="#read-all")
    assert page["url"] == "/notifications" and "すべて既読にする" not in page["text"]
    page = await open_page(d, base + "/notifications/settings")
    assert "受け取るお知らせ" in page["text"] and "毎朝、まとめメールを受け取る" in page["text"]
    assert page["overflow"] <= 0
    page = await fill(d, {}, checks=("#kind_comment",), submit="#save")
    assert "保存しました" in page["text"] and not d.find_element(By.ID, "kind_comment").is_selected()
    assert d.find_element(By.ID, "kind_friend_request").is_selected()
    heights = d.execute_script(
        "return [...document.querySelectorAll('main button, main .switch')].map(e => e.getBoundingClientRect().height);"
    )
    assert min(heights) >= 24, heights
    await run(d.find_element(By.ID, "push-on").click)
    note = await wait_for(lambda: run(lambda: d.find_element(By.ID, "push-note").text), "the push button's answer")
    assert note in (
        "通知が許可されませんでした。ブラウザの設定をご確認ください。",
        "このブラウザはプッシュ通知に対応していません。",
        "このブラウザで受け取れるようになりました。",
    ), note  # words, never JSON
    await shot(d, tmp_path, "notification-settings")

    # Staff see counts per kind and reason, never who.
    page = await log_in(d, base, "taro", "/staff/navi")
    assert page["url"] == "/staff/navi" and "まちづくりナビの利用状況" in page["text"], page["text"]
    rows = d.execute_script("return [...document.querySelectorAll('#figures tbody tr')].map(r => r.innerText);")
    assert any(r.split("\t")[:4] == ["コミュニティ", "関心", "2", "1"] for r in rows), rows
    assert "hanako" not in page["text"] and "山田" not in page["text"]
    page = await log_in(d, base, "hanako", "/staff/navi")
    assert "利用状況" not in page["text"]  # not staff

    # English when chosen.
    page = await open_page(d, base + "/navi?lang=en")
    assert "Town navi" in page["text"] and "Because you are interested in" in page["text"], page["text"]
    assert "Happening in 杉下小学校区" in page["text"] and page["overflow"] <= 0
