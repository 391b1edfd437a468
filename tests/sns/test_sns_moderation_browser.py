"""Reporting and moderation in headless Chromium on a phone: Jiro gives 共感 to Hanako's post and reports Taro's
comment (a second report of it is refused in words, nothing changed) and Taro from the members' list; staff see the
comment in the queue at /staff/moderation and hide it with a reason; Taro reads the decision at /moderation and
appeals once. Real identity and sns services on a real nats-server; the gateway served by uvicorn on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.sns.app import SnsService
from tests.support.browser import (
    click_and_wait,
    fill,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.bus import call
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[str, str]]:
    """The portal's base URL and the path of Hanako's post, on which Taro wrote a rude comment."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(service=name, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / name),
                               public_url=base)
    async with started(IdentityService(settings("identity")), SnsService(settings("sns"))):
        nc = await nats.connect(nats_server.url)
        try:
            users = await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None),
                                                ("jiro", "佐藤 次郎", None), ("suzuki", "鈴木 職員", "staff")))

            def me(handle: str) -> dict[str, Any]:
                u = users[handle]
                return Actor(user_id=u.id, global_handle=f"{handle}@{NODE}",
                             display_name=u.display_name).model_dump(mode="json")

            async def sns(endpoint: str, payload: dict) -> dict:
                return await call(nc, endpoint, payload, service=c.SERVICE, node=NODE)
            cid = (await sns(c.EP_COMMUNITY_OPEN, {"actor": me("hanako"), "name": "みどりの会",
                                                   "categories": ["npo-7"]}))["id"]
            await sns(c.EP_COMMUNITY_JOIN, {"actor": me("taro"), "community_id": cid})
            pid = (await sns(c.EP_POST_CREATE, {"actor": me("hanako"), "community_id": cid, "title": "花壇の植え替え",
                                                "body": "土曜の朝に集まります。"}))["id"]
            await sns(c.EP_COMMENT_CREATE, {"actor": me("taro"), "post_id": pid, "body": "くだらない集まりだ"})
        finally:
            await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, f"/communities/{cid}/posts/{pid}"


def report_comment(d: Any, reason: str, detail: str) -> dict[str, Any]:
    """Open the comment's 通報する, choose the reason, write the details, send."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    box = d.find_element(By.CSS_SELECTOR, "#comments details.report")
    box.find_element(By.TAG_NAME, "summary").click()
    Select(box.find_element(By.NAME, "reason")).select_by_visible_text(reason)
    box.find_element(By.NAME, "detail").send_keys(detail)
    return click_and_wait(d, box.find_element(By.CSS_SELECTOR, "button[type=submit]"))


async def test_report_a_comment_on_a_phone_and_staff_hide_it(portal, phone_browser,  # noqa: F811
                                                             tmp_path: Path) -> None:
    (base, post), d = portal, phone_browser
    page = await log_in(d, base, "jiro", post, via_logout=True)
    assert "くだらない集まりだ" in page["text"] and "通報する" in page["text"] and page["overflow"] <= 0

    # 共感 on the post, then a report of the comment.
    page = await fill(d, {}, submit="#post form.like button")
    assert "共感を取り消す 1" in page["text"], page["text"]
    page = await run(report_comment, d, "嫌がらせ・誹謗中傷", "活動を見下す書き込みです")
    assert "通報を受け付けました" in page["text"] and page["overflow"] <= 0, page["text"]
    await run(d.save_screenshot, str(tmp_path / "report.png"))
    # Reported again: the refusal's words, nothing new in the queue (checked below: one report).
    page = await run(report_comment, d, "その他", "もう一度")
    assert "この内容はすでに通報しています" in page["text"], page["text"]

    # Taro himself, reported from the community's members.
    page = await open_page(d, base + post.rsplit("/posts/", 1)[0])

    def report_taro() -> dict[str, Any]:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select
        box = next(li for li in d.find_elements(By.CSS_SELECTOR, "#member-list li") if "taro@" in li.text)
        box.find_element(By.TAG_NAME, "summary").click()
        Select(box.find_element(By.NAME, "reason")).select_by_visible_text("嫌がらせ・誹謗中傷")
        return click_and_wait(d, box.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    page = await run(report_taro)
    assert "通報を受け付けました" in page["text"] and page["overflow"] <= 0, page["text"]

    # A resident cannot open the staff's queue.
    page = await open_page(d, base + "/staff/moderation")
    assert "活動を見下す書き込みです" not in page["text"]

    # Staff see the report and hide the comment with a reason.
    page = await log_in(d, base, "suzuki", "/staff/moderation", via_logout=True)
    assert page["url"] == "/staff/moderation" and "対応待ちの通報" in page["text"], page["text"]
    assert page["text"].count("活動を見下す書き込みです") == 1 and "もう一度" not in page["text"]
    assert "くだらない集まりだ" in page["text"] and page["overflow"] <= 0
    await run(d.save_screenshot, str(tmp_path / "queue.png"))
    page = await fill(d, {"reason": "他の参加者を見下す表現のため"}, selects={"action": "非表示にする"},
                      submit="#reports button[type=submit]")
    assert "決定しました" in page["text"] and "くだらない集まりだ" not in page["text"], page["text"]
    assert "taro@tsurugashima" in page["text"]  # the report of the person waits for its own decision

    # The comment is hidden for others; Taro reads why and appeals once.
    page = await log_in(d, base, "jiro", post, via_logout=True)
    assert "くだらない集まりだ" not in page["text"] and "職員により非表示になりました" in page["text"]
    page = await log_in(d, base, "taro", "/moderation", via_logout=True)
    assert "他の参加者を見下す表現のため" in page["text"] and page["overflow"] <= 0, page["text"]
    await run(lambda: d.find_element("css selector", "#decisions summary").click())
    page = await fill(d, {"text": "言い過ぎました。書き直させてください。"}, submit="#decisions button[type=submit]")
    assert "異議申し立て済み" in page["text"] and "異議を申し立てる" not in page["text"], page["text"]
    await run(d.save_screenshot, str(tmp_path / "appeal.png"))
