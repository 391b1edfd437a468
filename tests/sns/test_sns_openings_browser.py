"""Matching in headless Chromium on a phone: Hanako, a community's leader, posts an opening; Taro states his skills
and sees it fit with the reason (スキル: 写真), applies with a message; Jiro, not the organiser, is refused the
applicants' page in Japanese and sees nothing of them; Hanako accepts Taro, who sees that he was accepted. Real
identity and sns services on a real nats-server; the gateway served by uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from gateway.portal.common import actor_of
from identity.app import IdentityService
from services.sns.app import SnsService
from tests.support import bus
from tests.support.browser import (
    click_link,
    fill,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import CARD_KEY, add_people, gateway_app, started
from towntip.kernel.contracts import sns as sc
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(service=name, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / name),
                               public_url=base, card_key=CARD_KEY)
    async with started(IdentityService(settings("identity")), SnsService(settings("sns"))):
        nc = await nats.connect(nats_server.url)
        try:
            users = await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None),
                                                ("jiro", "佐藤 次郎", None)))
            await bus.call(nc, sc.EP_COMMUNITY_OPEN, sc.CommunityOpen(
                actor=actor_of(users["hanako"]), name="藤金まつり実行委員会", categories=["npo-3"]),
                service=sc.SERVICE, node=NODE)
        finally:
            await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def test_post_find_apply_and_accept_on_a_phone(portal, phone_browser, tmp_path: Path) -> None:  # noqa: F811
    base, d = portal, phone_browser
    # Hanako posts an opening for the community she leads.
    page = await log_in(d, base, "hanako", "/openings/new", via_logout=True)
    assert page["url"] == "/openings/new" and "藤金まつり実行委員会" in page["text"], page["text"]
    page = await fill(d, {"title": "夏祭りの写真係", "task": "当日の様子を撮影してください。", "skills": "写真、カメラ",
                          "district": "藤金", "place": "藤金公民館", "capacity": "2", "event_code": "natsu-2030"},
                      raw={"starts_at": "2030-08-01T09:00"}, submit="#opening-form button[type=submit]")
    assert "募集を公開しました。" in page["text"] and "2030-08-01 09:00" in page["text"], page["text"]
    assert "ボランティアポイントの対象です。" in page["text"] and page["overflow"] <= 0
    opening_path = page["url"].split("?")[0]
    await run(d.save_screenshot, str(tmp_path / "opening-posted.png"))
    # The community's page lists it, with her link to post another.
    await open_page(d, f"{base}/communities")
    page = await click_link(d, "藤金まつり実行委員会")
    assert "夏祭りの写真係" in page["text"] and "募集を出す" in page["text"] and page["overflow"] <= 0, page["text"]
    await run(d.save_screenshot, str(tmp_path / "community-openings.png"))

    # Taro: nothing fits until he states his skills; then the opening, with the reason.
    page = await log_in(d, base, "taro", "/openings", via_logout=True)
    assert "いま合う募集はありません。" in page["text"] and "夏祭りの写真係" in page["text"], page["text"]
    page = await fill(d, {"skills": "写真と受付"}, submit="#skills-form button")
    assert "スキルを保存しました。" in page["text"] and "スキル: 写真" in page["text"], page["text"]
    assert page["overflow"] <= 0
    await run(d.save_screenshot, str(tmp_path / "openings-for-me.png"))
    page = await click_link(d, "夏祭りの写真係")
    page = await fill(d, {"message": "一眼レフを持っています。"}, submit="#apply-form button")
    assert "応募しました。" in page["text"] and "あなたの応募: 返事待ち" in page["text"], page["text"]

    # Jiro is not the organiser: the applicants' page is refused in Japanese, nothing of them shown.
    await log_in(d, base, "jiro", "/openings", via_logout=True)
    page = await open_page(d, f"{base}{opening_path}/applicants")
    assert "この操作は、募集を出した方だけが行えます。" in page["text"], page["text"]
    assert "一眼レフ" not in page["text"]

    # Hanako accepts Taro; he sees it.
    page = await log_in(d, base, "hanako", f"{opening_path}/applicants", via_logout=True)
    assert "鈴木 太郎" in page["text"] and "一眼レフを持っています。" in page["text"], page["text"]
    page = await fill(d, {}, submit="#accept-1")
    assert "回答しました。" in page["text"] and "承認済み 1人" in page["text"] and page["overflow"] <= 0
    await run(d.save_screenshot, str(tmp_path / "opening-applicants.png"))
    page = await log_in(d, base, "taro", opening_path, via_logout=True)
    assert "あなたの応募: 承認されました" in page["text"], page["text"]
    await run(d.save_screenshot, str(tmp_path / "opening-accepted.png"))
