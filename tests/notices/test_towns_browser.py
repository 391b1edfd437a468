"""Following other towns' public notices on a phone, in headless Chromium: Hanako goes from her inbox to the towns
page, follows suginami, sees a refusal in words when a town has left the federation meanwhile, and finds suginami's
notice in her inbox marked with the town it came from. The gateway is served by uvicorn on a real port; identity and
notices run beside it on a real nats-server. (The notice crossing between two real nodes:
test_towns_federation_nodes.py; here it is applied by the service's own consumer code, as it would on arrival.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.notices.app import NoticesService
from services.notices.towns import PeerNoticesHandler
from tests.notices.helpers import MemberTowns
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
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import notices_towns as tc
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[str, NoticesService, MemberTowns]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    members = MemberTowns({"suginami": "https://suginami.example.jp", "shibuya": "https://shibuya.example.jp"})
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=base))
    notices = NoticesService(ServiceSettings(service="notices", node_id=NODE, nats_url=nats_server.url,
                                             data_dir=str(tmp_path / "nt")), poll_every=None, member_towns=members)
    async with started(ident, notices):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, (("hanako", "山田 花子", None),))
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,notices", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, notices, members


async def shot(d: Any, path: Path) -> None:
    await run(d.save_screenshot, str(path))


async def test_following_a_town_and_its_notice_in_the_inbox_on_a_phone(portal, phone_browser, tmp_path) -> None:  # noqa: F811
    (base, svc, members), d = portal, phone_browser

    page = await log_in(d, base, "hanako", "/inbox")
    page = await click_link(d, "他のまちのお知らせも受け取る")
    assert page["url"] == "/me/towns" and "suginami" in page["text"] and "shibuya" in page["text"]
    assert "相手のまちには伝わりません" in page["text"] and page["overflow"] <= 0
    page = await fill(d, {}, submit="#follow-suginami")
    assert page["url"].startswith("/me/towns") and "受け取るまちに加えました" in page["text"], page["text"]
    assert "受け取り中" in page["text"]
    await shot(d, tmp_path / "towns.png")

    # shibuya leaves the federation while the page is open: following it is refused, in words, and changes nothing.
    members.listed = {"suginami": "https://suginami.example.jp"}
    page = await fill(d, {}, submit="#follow-shibuya")
    assert "連携している他のまちではありません" in page["text"] and page["overflow"] <= 0, page["text"]
    await shot(d, tmp_path / "towns_refused.png")

    # suginami's notice to everyone arrives (the consumer's own code applies it, as it does on arrival).
    event = tc.PublicNoticePublished(notice_id=str(uuid.uuid4()), origin_node="suginami", version=1,
                                     title="杉並区 防災訓練", body="区内全域で実施します。", sender="杉並区 防災課",
                                     at=utcnow())
    async with svc.sessions() as s, s.begin():
        await PeerNoticesHandler(NODE)._apply_one(s, "suginami", "PublicNoticePublished", event)
    page = await open_page(d, f"{base}/inbox")
    assert "杉並区 防災訓練" in page["text"] and "suginami からのお知らせ" in page["text"] and page["overflow"] <= 0
    await shot(d, tmp_path / "inbox_town.png")
    page = await click_link(d, "杉並区 防災訓練")
    assert "区内全域で実施します" in page["text"] and "suginami からのお知らせ" in page["text"]
    await shot(d, tmp_path / "item_town.png")

    page = await open_page(d, f"{base}/me/towns")
    page = await fill(d, {}, submit="#unfollow-suginami")
    assert "受け取りをやめました" in page["text"] and "受け取り中" not in page["text"], page["text"]
