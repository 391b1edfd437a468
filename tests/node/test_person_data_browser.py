"""A person's data on a phone, in headless Chromium (issue 20 point 7): the page that explains the archive and lets
one download it, then the delete page where the person chooses that their posts go with them; the sns service
removes her post. Identity and sns run beside the gateway on a real nats-server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats as nats_client
import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from identity.app import IdentityService
from services.sns.app import SnsService
from services.sns.models import posts
from tests.support.browser import fill, log_in, open_page, phone_browser, run  # noqa: F401 - fixture
from tests.support.bus import wait_for
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import sns as sc
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser

NODE = "tsuru"
SHOTS = Path(os.environ.get("TOWNTIP_SCREENSHOTS", "/tmp/towntip-screens"))


async def shot(driver: Any, name: str) -> None:
    path = SHOTS / f"person-data-{name}.png"
    await run(lambda: (SHOTS.mkdir(parents=True, exist_ok=True), driver.save_screenshot(str(path))))


@pytest.fixture
async def portal(nats_server, tmp_path: Path) -> AsyncIterator[tuple[str, SnsService, dict[str, Any]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(service: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=base)

    sns = SnsService(settings("sns"))
    async with started(IdentityService(settings("identity")), sns):
        nc = await nats_client.connect(nats_server.url)
        try:
            user = (await add_people(nc, NODE, [("hanako", "山田 花子", None)]))["hanako"]
            me = {"user_id": user.id, "global_handle": user.global_handle, "display_name": user.display_name}
            cid = (await rpc.call(nc, subjects.svc(NODE, "sns", sc.EP_COMMUNITY_OPEN),
                                  {"actor": me, "name": "園芸クラブ", "categories": ["npo-3"]}, timeout=15))["id"]
            await rpc.call(nc, subjects.svc(NODE, "sns", sc.EP_POST_CREATE),
                           {"actor": me, "community_id": cid, "title": "はじめまして", "body": "球根"}, timeout=15)
        finally:
            await nc.drain()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, sns, me


async def test_the_data_page_and_leaving_with_posts_removed_on_a_phone(portal, phone_browser) -> None:  # noqa: F811
    base, sns, _ = portal
    d = phone_browser
    await log_in(d, base, "hanako", "/me")
    page = await open_page(d, f"{base}/me")
    assert "わたしのデータ" in page["text"], page["text"]
    page = await open_page(d, f"{base}/settings/mydata")
    assert page["lang"] == "ja" and page["overflow"] <= 0
    assert "1つのファイル(ZIP)" in page["text"] and "10秒" in page["text"] and "ダウンロード(ZIP)" in page["text"]
    await shot(d, "mydata")

    page = await open_page(d, f"{base}/settings/delete")
    assert "退会したユーザー" in page["text"] and "すべて削除する" in page["text"] and page["overflow"] <= 0
    await run(lambda: d.find_element(By.CSS_SELECTOR, "input[name=content][value=remove]").click())
    await shot(d, "delete")
    page = await fill(d, {"password": "correct horse battery"})
    assert "アカウントを削除しました" in page["text"], page["text"]

    async def removed() -> bool:
        async with sns.sessions() as s:
            return (await s.execute(select(posts))).first() is None
    await wait_for(removed, "her post removed as she chose")
