"""The community SNS in headless Chromium on a phone-sized screen: Hanako opens a theme community, Taro finds it by
category, joins and posts, Hanako comments; they befriend each other by global handle. The gateway is served by
uvicorn on a real port; the identity and sns services run beside it on a real nats-server. Two people of this node
(a person of another node logged in by SSO goes through the same pages; the service tests cover such handles)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest

from gateway.words import words
from identity.app import IdentityService
from services.sns.app import SnsService
from tests.support.browser import (
    click_link,
    fill,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.contracts import identity as ic
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
    sns = SnsService(ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url,
                                     data_dir=str(tmp_path / "sns"), public_url=base))
    async with started(ident, sns):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None)))
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def test_open_join_post_comment_and_befriend_on_a_phone(portal, phone_browser) -> None:  # noqa: F811
    base, d = portal, phone_browser

    # Hanako opens a community: she becomes its leader.
    page = await log_in(d, base, "hanako", "/communities")
    assert page["url"] == "/communities" and "テーマコミュニティ" in page["text"] and page["overflow"] <= 0
    assert "コミュニティ" in page["text"] and "参加する" in page["text"]  # the page, and its tab in the tab bar
    page = await fill(d, {"name": "まちなか菜園クラブ", "description": "空き地で野菜を育てます。"},
                      checks=("input[name=categories][value='npo-3']",), submit="#open-form button")
    assert page["url"].startswith("/communities/") and "まちなか菜園クラブ" in page["text"], page["text"]
    assert "あなたはこのコミュニティのリーダーです" in page["text"] and "1人" in page["text"]
    assert page["overflow"] <= 0
    community_url = page["url"]

    # Taro finds it by category, joins, posts.
    page = await log_in(d, base, "taro", "/communities")
    page = await fill(d, {}, selects={"category": "まちづくり"}, submit="#filter button")
    assert "まちなか菜園クラブ" in page["text"] and page["overflow"] <= 0
    page = await click_link(d, "まちなか菜園クラブ")
    assert page["url"] == community_url and "山田 花子" in page["text"]
    page = await fill(d, {}, submit="#join")
    assert "参加中です" in page["text"] and "2人" in page["text"], page["text"]
    page = await fill(d, {"title": "はじめまして", "body": "トマトを育てたいです。"}, submit="#post-form button")
    assert page["url"].startswith(community_url + "/posts/") and "トマトを育てたいです。" in page["text"]
    assert page["overflow"] <= 0
    post_url = page["url"]

    # Hanako comments on it.
    page = await log_in(d, base, "hanako", post_url)
    assert page["url"] == post_url
    page = await fill(d, {"body": "ようこそ！土曜の朝に集まっています。"}, submit="#comment-form button")
    assert "ようこそ！土曜の朝に集まっています。" in page["text"] and "鈴木 太郎" in page["text"]
    assert page["overflow"] <= 0

    # Friends: Hanako asks Taro by his global handle; Taro accepts.
    page = await open_page(d, base + "/friends")
    assert "まだトモダチはいません" in page["text"] and page["overflow"] <= 0
    page = await fill(d, {"handle": "nobody@tsurugashima"}, submit="#request-form button")
    assert "該当する人がいません" in page["text"]
    # the refusal's code (people.not_found) in Japanese words, not the identity service's English reason
    assert words(ic.PEOPLE_NOT_FOUND.code, "ja") in page["text"] and "nobody known" not in page["text"]
    page = await fill(d, {"handle": "taro@tsurugashima"}, submit="#request-form button")
    assert "申請を送りました" in page["text"] and "鈴木 太郎" in page["text"], page["text"]
    page = await fill(d, {"q": "鈴木"}, submit="#search-form button")  # Taro has not chosen to be findable
    assert "見つかりませんでした" in page["text"] and page["overflow"] <= 0
    page = await open_page(d, base + "/friends/qr")  # her QR code for the next friend, on her phone
    assert "わたしのQRコード" in page["text"] and "hanako@tsurugashima" in page["text"] and page["overflow"] <= 0
    shown = d.execute_script("const s = document.querySelector('#qr svg').getBoundingClientRect();"
                             "return [s.width, s.height];")
    assert 120 <= shown[0] == shown[1] <= 390, shown
    page = await log_in(d, base, "taro", "/friends")
    assert "山田 花子" in page["text"] and "承認" in page["text"]
    page = await fill(d, {}, submit="#incoming button")
    assert "保存しました" in page["text"] and "まだトモダチはいません" not in page["text"], page["text"]
    assert "山田 花子" in page["text"] and page["overflow"] <= 0

    # English too.
    page = await open_page(d, base + "/communities?lang=en")
    assert "Theme communities" in page["text"] and "まちなか菜園クラブ" in page["text"] and page["overflow"] <= 0
