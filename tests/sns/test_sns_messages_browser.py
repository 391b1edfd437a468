"""Direct messages in headless Chromium on a phone: Taro writes to Hanako by her ID, Hanako sees one unread on her
list, opens the thread (read), answers; she blocks him and his next message is refused with the words of
`message.blocked`. Real identity and sns services on a real nats-server; the gateway served by uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from identity.app import IdentityService
from services.sns.app import SnsService
from tests.support.browser import (
    click_link,
    fill,
    log_in,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import CARD_KEY, add_people, gateway_app, started
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
            await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None)))
        finally:
            await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def test_two_people_exchange_messages_and_a_block_refuses(portal, phone_browser,  # noqa: F811
                                                                tmp_path: Path) -> None:
    base, d = portal, phone_browser
    page = await log_in(d, base, "taro", "/messages", via_logout=True)
    assert page["url"] == "/messages" and "まだメッセージはありません。" in page["text"], page["text"]
    page = await fill(d, {"handle": "hanako", "body": "こんにちは、太郎です。\n土曜の清掃、参加します。"},
                      submit="#new-message button")
    assert page["url"] == f"/messages/hanako@{NODE}" and "送信しました。" in page["text"], page["text"]
    assert "土曜の清掃、参加します。" in page["text"] and page["overflow"] <= 0

    # Hanako: one unread on her list; opening the thread reads it; she answers.
    page = await log_in(d, base, "hanako", "/messages", via_logout=True)
    assert "未読: 1" in page["text"] and "鈴木 太郎" in page["text"] and page["overflow"] <= 0, page["text"]
    await run(d.save_screenshot, str(tmp_path / "messages-list.png"))
    page = await click_link(d, "鈴木 太郎")
    assert "こんにちは、太郎です。" in page["text"], page["text"]
    page = await fill(d, {"body": "ありがとうございます！"}, submit="#message-form button")
    assert page["text"].index("ありがとうございます！") < page["text"].index("こんにちは、太郎です。")
    await run(d.save_screenshot, str(tmp_path / "messages-thread.png"))
    page = await click_link(d, "メッセージ一覧へ")
    assert "未読: 0" in page["text"] and "あなた: ありがとうございます！" in page["text"], page["text"]

    # She blocks him: his next message is refused, in Japanese, and not stored.
    page = await click_link(d, "鈴木 太郎")
    page = await fill(d, {}, submit="#block-form button")
    assert "設定しました。" in page["text"] and "ブロックを解除" in page["text"], page["text"]
    page = await log_in(d, base, "taro", f"/messages/hanako@{NODE}", via_logout=True)
    assert "ありがとうございます！" in page["text"]
    page = await fill(d, {"body": "届きますか？"}, submit="#message-form button")
    assert "この方にはメッセージを送れません。" in page["text"] and page["overflow"] <= 0, page["text"]
    await run(d.save_screenshot, str(tmp_path / "messages-blocked.png"))
    page = await log_in(d, base, "hanako", f"/messages/taro@{NODE}", via_logout=True)
    assert "届きますか？" not in page["text"]
