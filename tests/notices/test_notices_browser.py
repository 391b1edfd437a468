"""The inbox on a phone, in headless Chromium: a staff member counts the recipients of a notice and sends it,
Hanako states part of her life stage, finds the notice unread in her inbox, opens and archives it; the staff member
sees one opened, never who. The gateway is served by uvicorn on a real port; identity and notices run beside it on
a real nats-server. Screenshots of each page go to the test's directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.notices.app import NoticesService
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
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=base))
    notices = NoticesService(ServiceSettings(service="notices", node_id=NODE, nats_url=nats_server.url,
                                             data_dir=str(tmp_path / "nt")), send_every=0.5)
    async with started(ident, notices):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None),
                                    ("clerk", "広報 職員", "staff")))
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,notices", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def shot(d: Any, path: Path) -> None:
    await run(d.save_screenshot, str(path))


async def test_a_notice_from_staff_to_the_inbox_on_a_phone(portal, phone_browser, tmp_path) -> None:  # noqa: F811
    base, d = portal, phone_browser

    page = await log_in(d, base, "clerk", "/staff/notices")
    assert page["url"] == "/staff/notices" and "お知らせ配信" in page["text"] and page["overflow"] <= 0
    page = await fill(d, {}, submit="#preview")
    assert "3人に届きます" in page["text"], page["text"]  # everyone: the three people of the node
    page = await fill(d, {"title": "防災訓練のお知らせ", "body": "11月8日（日）9時から市内一斉に行います。",
                          "sender": "危機管理課", "link_title_1": "詳しく", "link_url_1": "/events"},
                      submit="#send")
    assert page["url"].startswith("/staff/notices/") and "防災訓練のお知らせ" in page["text"], page["text"]
    notice_url = page["url"]
    await shot(d, tmp_path / "staff_notice.png")

    page = await log_in(d, base, "hanako", "/me/life")
    assert "いつでも変更・削除できます" in page["text"] and page["overflow"] <= 0
    page = await fill(d, {"children_ages": "4"}, selects={"district": "杉下小学校区", "age_band": "30代"},
                      checks=("input[name=event_moving_in]",), submit="#life button")
    assert "保存しました" in page["text"], page["text"]
    await shot(d, tmp_path / "life.png")

    page = await open_page(d, f"{base}/inbox")
    assert "防災訓練のお知らせ" in page["text"] and "未読" in page["text"] and page["overflow"] <= 0
    await shot(d, tmp_path / "inbox.png")
    page = await click_link(d, "防災訓練のお知らせ")
    assert "11月8日（日）9時から" in page["text"] and "危機管理課" in page["text"] and page["overflow"] <= 0
    await shot(d, tmp_path / "item.png")
    page = await fill(d, {}, submit="#archive")
    assert page["url"] == "/inbox" and "防災訓練のお知らせ" in page["text"]  # the archive lists it
    page = await open_page(d, f"{base}/inbox")
    assert "防災訓練のお知らせ" not in page["text"] and "まだ届いたものはありません" in page["text"]

    page = await log_in(d, base, "clerk", notice_url)
    figures = await run(lambda: d.find_element("id", "figures").text)
    assert "開封\n1" in figures and "配信済み\n3" in figures, figures
    assert "hanako" not in page["text"] and "山田" not in page["text"]  # how many opened, never who
    await shot(d, tmp_path / "staff_counts.png")
