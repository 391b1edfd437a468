"""The portal shell in headless Chromium on a phone-sized screen: sign up, confirm the address from the e-mail,
log in, My Page, English, profile, logout. The gateway is served by uvicorn on a real port; the identity service
and a local SMTP server run beside it against a real nats-server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.words import words
from identity.app import IdentityService
from services.points.app import PointsService
from tests.support.browser import (
    click_and_wait,
    click_link,
    facts,
    fill,
    fill_and_submit,
    log_out,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import gateway_app, started
from tests.support.smtp_helpers import Smtp
from towntip.kernel.contracts import identity as ic
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path, smtp: Smtp) -> AsyncIterator[tuple[str, Smtp]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    smtp.start()
    svc = IdentityService(ServiceSettings(
        service="identity", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / "id"),
        public_url=base), smtp=SmtpSettings(host="127.0.0.1", port=smtp.port))
    points = PointsService(ServiceSettings(service="points", node_id=NODE, nats_url=nats_server.url,
                                           data_dir=str(tmp_path / "pt"), card_key="11" * 32))
    async with started(svc, points):
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, smtp


async def mail_link(smtp: Smtp, kind: str) -> str:
    for _ in range(200):
        for m in smtp.handler.parsed():
            found = re.search(rf"(http://\S+/{kind}\?token=[A-Za-z0-9_-]+)", m.get_body(("plain",)).get_content())
            if found:
                return found.group(1)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind} mail")


async def test_sign_up_confirm_log_in_and_my_page_on_a_phone(portal, phone_browser) -> None:  # noqa: F811
    base, smtp = portal
    d = phone_browser
    from selenium.webdriver.common.by import By

    home = await open_page(d, base + "/")
    assert home["lang"] == "ja" and "楽しみながらまちづくりに参加" in home["text"] and home["overflow"] <= 0

    await open_page(d, base + "/register")
    done = await fill_and_submit(d, {"handle": "hanako", "display_name": "山田 花子", "email": "hanako@example.jp",
                                     "password": "correct horse battery"})
    assert "登録しました" in done["text"] and "迷惑メール" in done["text"], done["text"]

    confirmed = await open_page(d, await mail_link(smtp, "verify-email"))
    assert "確認しました" in confirmed["text"]

    me = await open_page(d, base + "/me")
    assert me["url"] == "/login"  # not logged in yet: the login page, which brings us back
    me = await fill_and_submit(d, {"login": "hanako", "password": "correct horse battery"})
    assert me["url"] == "/me" and f"hanako@{NODE}" in me["text"] and "山田 花子" in me["text"], me["text"]
    assert "未確認" not in me["text"] and me["overflow"] <= 0

    english = await open_page(d, base + "/lang/en?next=/me")
    assert english["lang"] == "en" and "My Page" in english["text"] and "Global ID" in english["text"]
    await open_page(d, base + "/lang/ja?next=/settings/profile")

    def pick_interest() -> dict[str, Any]:
        d.find_element(By.CSS_SELECTOR, "input[name=interests][value='npo-3']").click()
        return facts(d)

    await run(pick_interest)
    saved = await fill(d, {"nickname": "はなちゃん"}, selects={"district": "杉下小学校区"},  # the town's list
                       submit="main button[type=submit]")
    assert "保存しました" in saved["text"], saved["text"]
    me = await open_page(d, base + "/me")
    assert "はなちゃん" in me["text"] and "まちづくり" in me["text"] and "杉下小学校区" in me["text"]
    assert "鶴ヶ島市" in me["text"]  # the header names the town, not the node id

    # The tab bar: メニュー is marked where one is, and holds the logout.
    menu = await click_link(d, "メニュー")
    current = await run(lambda: d.find_element(By.CSS_SELECTOR, "nav.tabbar a[aria-current=page]").text)
    assert menu["url"] == "/menu" and current == "メニュー" and "トモダチ" in menu["text"], menu["text"]

    out = await log_out(d)
    assert "ログアウトしました" in out["text"]
    again = await open_page(d, base + "/me")
    assert again["url"] == "/login"


async def test_wrong_password_shows_the_reason_in_japanese(portal, phone_browser) -> None:  # noqa: F811
    base, _ = portal
    await open_page(phone_browser, base + "/login")
    page = await fill_and_submit(phone_browser, {"login": "nobody", "password": "wrong password"})
    assert page["url"] == "/login" and "パスワードが違います" in page["text"]
    # the words of the refusal's code (login.wrong), never the identity service's English reason
    assert words(ic.LOGIN_WRONG.code, "ja") in page["text"] and "is wrong" not in page["text"]


async def test_bind_a_card_online_with_the_code_its_touch_shows_then_report_it_lost(portal, phone_browser,  # noqa: F811
                                                                                   nats_server) -> None:
    base, _ = portal
    d = phone_browser
    import json
    from datetime import UTC, datetime

    import nats as nats_client
    from selenium.webdriver.common.by import By

    from towntip.kernel.bus import rpc, subjects
    from towntip.kernel.contracts import identity as ic
    from towntip.kernel.contracts import points as pc

    nc = await nats_client.connect(nats_server.url)
    try:
        await rpc.call(nc, subjects.svc(NODE, ic.SERVICE, ic.EP_USER_ADD), ic.UserAddIn(
            handle="taro", email="taro@example.jp", password="correct horse battery"), timeout=15)
        for code in ("walk", "walk-1", "walk-2", "walk-3", "walk-4"):  # a card earns an event's points once
            await rpc.call(nc, subjects.svc(NODE, pc.SERVICE, pc.EP_EVENT_PUT), pc.EventIn(code=code, name="散歩"))
        js = nc.jetstream()
        outcomes: asyncio.Queue[dict] = asyncio.Queue()

        async def on_outcome(msg) -> None:
            await outcomes.put(json.loads(msg.data))
        await nc.subscribe("_INBOX.hall-1.>", cb=on_outcome)

        async def touch(n: int) -> dict:
            t = pc.Tap(tap_id=f"browser-{n:04d}", terminal_id="hall-1", card_idm="0123456789ABCDEF", event=f"walk-{n}",
                       tapped_at=datetime.now(UTC))
            await js.publish(subjects.edge(NODE, "hall-1", "tap"), t.model_dump_json().encode(),
                             headers={subjects.HDR_MSG_ID: t.key, subjects.HDR_RESULT_TO: "_INBOX.hall-1.out"})
            return await asyncio.wait_for(outcomes.get(), 15)

        assert (await touch(1))["display"] == ""  # a point on the card before it is bound; no request, no code
        await open_page(d, base + "/login?next=/settings/cards")
        page = await fill_and_submit(d, {"login": "taro", "password": "correct horse battery"})
        assert page["url"] == "/settings/cards" and "まだカードを登録していません" in page["text"], page["text"]
        page = await fill_and_submit(d, {"card_idm": "0123456789abcdef"}, button="form[action$=bind] button")
        assert "端末にタッチしてコードを入力してください" in page["text"] and page["overflow"] <= 0, page["text"]
        assert "8文字の登録コードが表示されます" in page["text"], page["text"]

        # The card's touch credits the card as usual and shows a code; nothing is bound yet.
        shown = await touch(2)
        assert (shown["points"], shown["balance"]) == (1, 2) and "マイページ" in shown["display"], shown
        page = await open_page(d, base + "/settings/cards")
        assert "紛失を届け出る" not in page["text"] and "タッチしてコードを入力" in page["text"], page["text"]
        assert await run(lambda: d.find_element(By.ID, "balance").text) == "0"

        # The code entered on the same page binds the card: its two points move over.
        page = await fill_and_submit(d, {"code": shown["display"][:9].lower()}, button="form[action$=code] button")
        assert "カードを登録しました" in page["text"] and "紛失を届け出る" in page["text"], page["text"]
        assert await run(lambda: d.find_element(By.ID, "balance").text) == "2"
        assert "タッチしてコードを入力" not in page["text"] and page["overflow"] <= 0, page["text"]
        me = await open_page(d, base + "/me")
        assert "2" in await run(lambda: d.find_element(By.ID, "my-points").text)

        await open_page(d, base + "/settings/cards")
        page = await run(lambda: click_and_wait(d, d.find_element(By.CSS_SELECTOR, "form.card-row button")))
        assert "登録を解除しました" in page["text"] and "まだカードを登録していません" in page["text"], page["text"]
        assert me["overflow"] <= 0
    finally:
        await nc.close()


async def test_register_a_card_with_the_code_a_terminal_showed(portal, phone_browser, nats_server) -> None:  # noqa: F811
    base, _ = portal
    d = phone_browser
    import json
    from datetime import UTC, datetime

    import nats as nats_client
    from selenium.webdriver.common.by import By

    from towntip.kernel.bus import rpc, subjects
    from towntip.kernel.contracts import identity as ic
    from towntip.kernel.contracts import points as pc

    nc = await nats_client.connect(nats_server.url)
    try:
        await rpc.call(nc, subjects.svc(NODE, ic.SERVICE, ic.EP_USER_ADD), ic.UserAddIn(
            handle="jiro", email="jiro@example.jp", password="correct horse battery"), timeout=15)
        for code in ("walk", "walk-1", "walk-2", "walk-3", "walk-4"):  # a card earns an event's points once
            await rpc.call(nc, subjects.svc(NODE, pc.SERVICE, pc.EP_EVENT_PUT), pc.EventIn(code=code, name="散歩"))
        js = nc.jetstream()
        outcomes: asyncio.Queue[dict] = asyncio.Queue()

        async def on_outcome(msg) -> None:
            await outcomes.put(json.loads(msg.data))
        await nc.subscribe("_INBOX.hall-2.>", cb=on_outcome)

        async def touch(n: int, mode: str) -> dict:
            t = pc.Tap(tap_id=f"register-{n:04d}", terminal_id="hall-2", card_idm="00000000DEADBEEF", mode=mode,
                       event=f"walk-{n}" if mode == "checkin" else None, tapped_at=datetime.now(UTC))
            await js.publish(subjects.edge(NODE, "hall-2", "tap"), t.model_dump_json().encode(),
                             headers={subjects.HDR_MSG_ID: t.key, subjects.HDR_RESULT_TO: "_INBOX.hall-2.out"})
            return await asyncio.wait_for(outcomes.get(), 15)

        assert (await touch(1, "checkin"))["points"] == 1  # a point on the card before it is registered
        shown = (await touch(2, "register"))["display"]  # what the terminal's screen shows
        assert len(shown) == 9

        await open_page(d, base + "/login?next=/settings/cards")
        page = await fill_and_submit(d, {"login": "jiro", "password": "correct horse battery"})
        assert "端末に表示された登録コード" in page["text"], page["text"]
        page = await fill_and_submit(d, {"code": "WRONG-123"}, button="form[action$=code] button")
        # the words of the refusal's code (card.code_invalid), not the points service's English reason
        assert words(pc.CARD_CODE_INVALID.code, "ja") in page["text"] and "まだカードを登録していません" in page["text"]
        assert "unknown, used or expired" not in page["text"]
        page = await fill_and_submit(d, {"code": shown.lower()}, button="form[action$=code] button")
        assert "カードを登録しました" in page["text"] and "紛失を届け出る" in page["text"], page["text"]
        assert await run(lambda: d.find_element(By.ID, "balance").text) == "1"
        assert page["overflow"] <= 0
        assert (await touch(3, "checkin"))["balance"] == 2  # the card now credits jiro
    finally:
        await nc.close()
