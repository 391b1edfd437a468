"""The wallet and the coupon desk in headless Chromium on a phone: staff (granted the role by the operator) add a kind
of coupon and award local currency to a person found by global handle; the person exchanges it for a coupon and sees
its code; staff redeem the code at the counter; the coupon shows as used. A citizen cannot open the desk."""

from __future__ import annotations

import nats as nats_client
from selenium.webdriver.common.by import By

from tests.gateway.test_portal_browser import NODE, portal  # noqa: F401 - fixture
from tests.support.browser import (
    fill_and_submit,
    log_in,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.nodes import add_people


async def test_exchange_currency_for_a_coupon_and_redeem_it(portal, phone_browser, nats_server) -> None:  # noqa: F811
    base, _ = portal
    d = phone_browser
    nc = await nats_client.connect(nats_server.url)
    try:
        await add_people(nc, NODE, [("suzuki", None, "staff"), ("hanako", None, None)])
    finally:
        await nc.close()

    page = await log_in(d, base, "hanako", "/staff/coupons", via_logout=True)  # a citizen: 403
    assert "権限がありません" in page["text"] and "クーポン窓口" not in page["text"], page["text"]

    page = await log_in(d, base, "suzuki", "/staff/coupons", via_logout=True)
    assert page["url"] == "/staff/coupons" and "クーポン窓口（職員）" in page["text"], page["text"]
    page = await fill_and_submit(d, {"kind_code": "kominkan-room", "title_ja": "公民館 会議室 1時間",
                                     "title_en": "Community hall room, 1 hour", "issuer": "中央公民館", "price": "300"},
                                 button="#kind button")
    assert "公民館 会議室 1時間" in page["text"], page["text"]
    page = await fill_and_submit(d, {"person": f"hanako@{NODE}", "amount": "500", "memo": "公園清掃ボランティア"},
                                 button="#award button")
    assert f"付与しました: hanako (hanako@{NODE})" in page["text"], page["text"]

    page = await log_in(d, base, "hanako", "/points", via_logout=True)
    assert page["url"] == "/points" and page["overflow"] <= 0
    assert await run(lambda: d.find_element(By.ID, "bal-local-currency").text) == "500 円"
    page = await fill_and_submit(d, {}, button="#buy-kominkan-room")
    assert "クーポンと交換しました" in page["text"] and "利用可能" in page["text"], page["text"]
    assert await run(lambda: d.find_element(By.ID, "bal-local-currency").text) == "200 円"
    code = await run(lambda: d.find_element(By.CSS_SELECTOR, ".coupon-code").text)
    assert len(code) == 11 and code[5] == "-"

    await log_in(d, base, "suzuki", "/staff/coupons", via_logout=True)
    page = await fill_and_submit(d, {"code": code}, button="#redeem button")
    assert "使用済みにしました: 公民館 会議室 1時間 (300)" in page["text"], page["text"]
    page = await fill_and_submit(d, {"code": code}, button="#redeem button")
    assert "使用済みです" in page["text"], page["text"]

    page = await log_in(d, base, "hanako", "/points", via_logout=True)
    assert "使用済み" in page["text"] and not await run(lambda: d.find_elements(By.CSS_SELECTOR, ".coupon-code"))
