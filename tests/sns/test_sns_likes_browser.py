"""共感 (likes) in headless Chromium on a phone: Taro gives 共感 to Hanako's post and comment with the button (a form:
no JavaScript needed), withdraws one, and Hanako sees what she received in her notebook's 共感 column. Real
identity, sns and points services on a real nats-server; the gateway served by uvicorn on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from identity.app import IdentityService
from services.points.app import PointsService
from services.sns.app import SnsService
from tests.support.browser import (
    fill,
    log_in,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.bus import call
from tests.support.http_server import served
from tests.support.nodes import CARD_KEY, add_people, gateway_app, started
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[str, str]]:
    """The portal's base URL and the path of Hanako's post (with her comment) to empathise with."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(service=name, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / name),
                               public_url=base, card_key=CARD_KEY)
    async with started(IdentityService(settings("identity")), SnsService(settings("sns")),
                       PointsService(settings("points"))):
        nc = await nats.connect(nats_server.url)
        try:
            users = await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None)))
            hanako = Actor(user_id=users["hanako"].id, global_handle=f"hanako@{NODE}", display_name="山田 花子")

            async def sns(endpoint: str, payload: dict) -> dict:
                return await call(nc, endpoint, payload, service=c.SERVICE, node=NODE)
            me = hanako.model_dump(mode="json")
            cid = (await sns(c.EP_COMMUNITY_OPEN, {"actor": me, "name": "みどりの会", "categories": ["npo-7"]}))["id"]
            pid = (await sns(c.EP_POST_CREATE, {"actor": me, "community_id": cid, "title": "花壇の植え替え",
                                                "body": "土曜の朝に集まります。"}))["id"]
            await sns(c.EP_COMMENT_CREATE, {"actor": me, "post_id": pid, "body": "雨なら日曜に。"})
        finally:
            await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points,sns", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, f"/communities/{cid}/posts/{pid}"


async def test_empathise_with_a_post_and_see_it_in_the_notebook(portal, phone_browser,  # noqa: F811
                                                                tmp_path: Path) -> None:
    (base, post), d = portal, phone_browser
    page = await log_in(d, base, "taro", post, via_logout=True)
    assert page["url"] == post and "花壇の植え替え" in page["text"] and page["overflow"] <= 0
    assert page["text"].count("共感する 0") == 2, page["text"]  # the post and the comment

    # The post's button, then the comment's: each counts one, and shows that he gave it.
    page = await fill(d, {}, submit="#post form.like button")
    assert page["url"].startswith(post) and "共感を取り消す 1" in page["text"], page["text"]
    page = await fill(d, {}, submit="#comments form.like button")
    assert page["text"].count("共感を取り消す 1") == 2 and page["overflow"] <= 0
    await run(d.save_screenshot, str(tmp_path / "likes-post.png"))
    # Pressed again: withdrawn.
    page = await fill(d, {}, submit="#comments form.like button")
    assert "共感を取り消す 1" in page["text"] and "共感する 0" in page["text"], page["text"]

    # Hanako cannot empathise with her own post (no button, the count only); her notebook counts one received.
    page = await log_in(d, base, "hanako", post, via_logout=True)
    assert "共感 1" in page["text"] and "共感する" not in page["text"], page["text"]
    page = await log_in(d, base, "hanako", "/notebook", via_logout=True)
    cell = await run(lambda: d.find_element("css selector", "#empathy").text)
    assert cell == "1", page["text"]
    assert "あなたの投稿・コメント・テーマ・事例に寄せられた共感の数" in page["text"] and page["overflow"] <= 0
    await run(d.save_screenshot, str(tmp_path / "likes-notebook.png"))
