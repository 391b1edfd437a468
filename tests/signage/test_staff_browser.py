"""The staff's signage pages in headless Chromium on a phone: a screen's state and screenshot, an upload approved by
a second staff member, a playlist, the screen's preview, the plays and their CSV, and an emergency message sent after
a confirmation, seen by the screen, then cleared. The identity and signage services run beside the gateway on a real
nats-server."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats as nats_client
import pytest
from PIL import Image

from identity.app import IdentityService
from services.signage.app import SignageService
from tests.signage.helpers import photo
from tests.support.browser import (
    fill,
    fill_and_submit,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.bus import call, wait_for
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from tests.support.smtp_helpers import Smtp
from towntip.kernel.contracts import signage as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
SHOTS = Path(os.environ.get("TOWNTIP_SCREENSHOTS", "/tmp/towntip-screens"))


@pytest.fixture
async def portal(nats_server, tmp_path, smtp: Smtp) -> AsyncIterator[tuple[str, SignageService]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    smtp.start()

    def settings(service: str, **more: str) -> ServiceSettings:
        return ServiceSettings(
            service=service, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / service), **more
        )

    identity = IdentityService(
        settings("identity", public_url=base), smtp=SmtpSettings(host="127.0.0.1", port=smtp.port)
    )
    signage = SignageService(settings("signage"))
    async with started(identity, signage):
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,signage", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, signage


async def shot(driver: Any, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    await run(lambda: (SHOTS.mkdir(parents=True, exist_ok=True), driver.save_screenshot(str(path))))
    return path


def a_screenshot() -> str:
    img = Image.new("RGB", (160, 90), (11, 110, 79))
    out = io.BytesIO()
    img.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


async def test_staff_manage_screens_content_schedules_plays_and_an_emergency(
    portal,
    phone_browser,  # noqa: F811
    nats_server,
    tmp_path,
) -> None:
    (base, _), d = portal, phone_browser
    nc = await nats_client.connect(nats_server.url)
    tv = await nats_client.connect(nats_server.url, inbox_prefix=c.screen_inbox_prefix("hall-1f"))
    try:
        await add_people(
            nc,
            NODE,
            [("suzuki", "鈴木 職員", "staff"), ("tanaka", "田中 係長", "staff"), ("hanako", "山田 花子", None)],
        )
        await call(
            nc,
            c.EP_ADMIN_SCREEN_ENROLLED,
            {"name": "hall-1f", "place": "市役所 1F ロビー", "groups": ["市役所"]},
            service=c.SERVICE,
            node=NODE,
        )
        status = c.ScreenStatus(
            playing=None, cache_bytes=52_428_800, player_version="0.1.0", screenshot_png_b64=a_screenshot()
        )
        await tv.publish(c.status_subject(NODE, "hall-1f"), status.model_dump_json().encode())

        page = await log_in(d, base, "hanako", "/staff/signage", via_logout=True)
        assert "サイネージ管理" not in page["text"], page["text"]  # a resident gets no staff page

        page = await log_in(d, base, "suzuki", "/staff/signage", via_logout=True)

        async def online() -> dict | None:
            got = await open_page(d, f"{base}/staff/signage")
            return got if "稼働中" in got["text"] else None

        page = await wait_for(online, "the screen online on the staff page", 10)
        assert "hall-1f" in page["text"] and "市役所 1F ロビー" in page["text"] and "50.0 MB" in page["text"]
        assert page["overflow"] <= 0
        await shot(d, "signage-screens")

        picture = tmp_path / "matsuri.jpg"
        picture.write_bytes(photo(1200, 800))
        await open_page(d, f"{base}/staff/signage/content")
        await run(lambda: d.find_element("id", "file").send_keys(str(picture)))
        page = await fill_and_submit(d, {"title": "秋の市民まつり"}, button="#upload button[type=submit]")
        assert "登録しました。" in page["text"] and "承認待ち" in page["text"], page["text"]
        assert not await run(lambda: d.find_elements("css selector", "li.item button.approve"))  # not the uploader
        await shot(d, "signage-content")

        page = await log_in(d, base, "tanaka", "/staff/signage/content", via_logout=True)
        page = await fill_and_submit(d, {}, button="li.item button.approve")
        assert "承認しました。" in page["text"] and "承認済み" in page["text"], page["text"]

        await open_page(d, f"{base}/staff/signage/playlists")
        page = await fill(
            d,
            {"name": "ロビー通常", "groups": "市役所"},
            checks=("input[name=item]",),
            submit="#new-playlist button[type=submit]",
        )
        assert "保存しました。" in page["text"] and "秋の市民まつり" in page["text"], page["text"]
        manifest = c.SyncReply.model_validate_json(
            (await tv.request(c.sync_subject(NODE, "hall-1f"), b"{}", timeout=5)).data
        )
        assert [i.title for i in manifest.items] == ["秋の市民まつり"]

        page = await open_page(d, f"{base}/staff/signage/screens/hall-1f")
        assert "秋の市民まつり" in page["text"] and "最新の画面写真" in page["text"] and page["overflow"] <= 0
        await shot(d, "signage-screen-preview")

        heard: list[c.Emergency] = []

        async def on_push(msg: Any) -> None:
            heard.append(c.Emergency.model_validate_json(msg.data))

        await tv.subscribe(c.push_emergency(NODE), cb=on_push)
        await open_page(d, f"{base}/staff/signage/emergency")
        page = await fill(
            d,
            {"title": "避難所開設", "body": "中央公民館を避難所として開設しました。"},
            submit="#send button[type=submit]",
        )
        assert "この緊急情報を送信しますか？" in page["text"] and not heard, page["text"]
        await shot(d, "signage-emergency-confirm")
        page = await fill_and_submit(d, {}, button="#do-send")
        assert "緊急情報を送信しました。" in page["text"] and "避難所開設" in page["text"], page["text"]

        async def pushed() -> bool:
            return bool(heard)

        await wait_for(pushed, "the emergency pushed to the screen", 5)
        assert heard[0].title == "避難所開設" and not heard[0].cleared
        page = await fill_and_submit(d, {}, button="#active button.clear")
        assert "緊急情報を解除しました。" in page["text"] and "表示中の緊急情報はありません。" in page["text"]

        page = await open_page(d, f"{base}/staff/signage/plays")
        assert "再生実績" in page["text"] and "CSVでダウンロード" in page["text"], page["text"]
    finally:
        await tv.close()
        await nc.close()
