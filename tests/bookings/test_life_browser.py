"""A booking's life in headless Chromium on a phone (issue 17, point 12): a resident asks for a room on her phone
(the facility's day list, the form, the review step), staff approve the request in the approval queue (after a
confirmation step), then the resident pays its fee with local currency on the payment page
(after a confirmation step) and sees it paid; the wallet moved once. The identity, points and bookings services
run beside the gateway on a real nats-server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jpholiday
import nats as nats_client
import pytest
from selenium.webdriver.common.by import By

from identity.app import IdentityService
from services.bookings.app import BookingsService
from services.points.app import PointsService
from tests.support.browser import (
    fill,
    fill_and_submit,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.bus import call
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from tests.support.smtp_helpers import Smtp
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_life as lc
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
SHOTS = Path(os.environ.get("TOWNTIP_SCREENSHOTS", "/tmp/towntip-screens"))
WEEK = {d: {"open": "09:00", "close": "21:30"} for d in c.WEEKDAYS}
HALL = {"id": "josei-center-kenshu", "name_ja": "女性センター 研修室", "name_en": "Women's Center, training room",
        "hours": WEEK, "layout": {"kind": "blocks", "blocks": [
            {"name_ja": "午後", "name_en": "afternoon", "start": "13:00", "end": "17:00",
             "fees": {"city_group": 500}}]},
        "rules": {"needs_approval": True, "pay_within_days": 7, "coupon_types": ["kominkan-fee"]}}


def a_weekday_ahead() -> date:
    day = date.today() + timedelta(days=14)
    while day.weekday() >= 5 or jpholiday.is_holiday(day):
        day += timedelta(days=1)
    return day


@pytest.fixture
async def portal(nats_server, tmp_path, smtp: Smtp) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    smtp.start()

    def settings(service: str, **more: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), **more)

    identity = IdentityService(settings("identity", public_url=base), smtp=SmtpSettings(host="127.0.0.1",
                                                                                     port=smtp.port))
    points = PointsService(settings("points", card_key="11" * 32))
    bookings = BookingsService(settings("bookings"), sweep_every=None)
    async with started(identity, points, bookings):
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points,bookings",
                          public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def shot(driver: Any, name: str) -> Path:
    """A phone-sized screenshot of the page, to look at (TOWNTIP_SCREENSHOTS, else /tmp/towntip-screens)."""
    path = SHOTS / f"{name}.png"
    await run(lambda: (SHOTS.mkdir(parents=True, exist_ok=True), driver.save_screenshot(str(path))))
    return path


def book_the_afternoon(driver: Any, purpose: str) -> dict[str, Any]:
    """From the facility's day list: the free afternoon's button, then the form filled and sent to its review."""
    from selenium.webdriver.support.ui import Select

    from tests.support.browser import wait_left

    link = driver.find_element(By.CSS_SELECTOR, "#day-slots a.button[href^='/bookings/new']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    wait_left(driver, link, timeout=30)
    driver.find_element(By.NAME, "purpose").send_keys(purpose)
    Select(driver.find_element(By.NAME, "user_class")).select_by_value("city_group")
    button = driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    return wait_left(driver, button, timeout=30)


async def test_staff_approve_then_the_resident_pays_with_local_currency(
        portal, phone_browser, nats_server) -> None:  # noqa: F811
    base, d = portal, phone_browser
    day = a_weekday_ahead()
    nc = await nats_client.connect(nats_server.url)
    try:
        people = await add_people(nc, NODE, [("suzuki", "鈴木 職員", "staff"), ("hanako", "山田 花子", None)])
        staff = {"user_id": people["suzuki"].id, "global_handle": f"suzuki@{NODE}", "display_name": "鈴木 職員",
                 "roles": ["staff"]}
        hanako = {"user_id": people["hanako"].id, "global_handle": f"hanako@{NODE}", "display_name": "山田 花子"}
        await call(nc, c.EP_FACILITY_PUT, HALL, service=c.SERVICE, node=NODE)
        await call(nc, cc.EP_CURRENCY_AWARD, {"actor": staff, "person": hanako["user_id"], "amount": 1200,
                                              "memo": "清掃ボランティア", "key": "award-browser-000001"}, node=NODE)
        # The resident asks for the afternoon on her phone: the facility's day list, the form, the review step.
        page = await log_in(d, base, "hanako", f"/facilities/{HALL['id']}?day={day}")
        assert "女性センター 研修室" in page["text"], page["text"]
        page = await run(book_the_afternoon, d, "子育てサークルの集まり")
        assert "予約内容の確認" in page["text"] and "500円" in page["text"], page["text"]
        page = await fill_and_submit(d, {}, button="form button[type=submit]")
        assert page["url"].startswith("/bookings/") and "承認待ち" in page["text"], page["text"]
        await shot(d, "life-requested")
        booking = await call(nc, c.EP_BOOKING_GET, {"actor": hanako, "booking_id": page["url"].split("/")[2]},
                             service=c.SERVICE, node=NODE)
        assert (booking["state"], booking["purpose"]) == ("requested", "子育てサークルの集まり")

        page = await log_in(d, base, "hanako", "/staff/bookings/approvals", via_logout=True)  # a resident: 403
        assert "承認待ちの予約" not in page["text"], page["text"]

        page = await log_in(d, base, "suzuki", "/staff/bookings/approvals", via_logout=True)
        assert page["url"] == "/staff/bookings/approvals" and "子育てサークルの集まり" in page["text"], page["text"]
        assert "山田 花子" in page["text"] and "500 円" in page["text"] and page["overflow"] <= 0
        await shot(d, "life-approvals")
        page = await fill_and_submit(d, {}, button=f"li[data-id='{booking['id']}'] button.approve")
        assert "この予約を承認しますか？" in page["text"] and page["overflow"] <= 0, page["text"]
        page = await fill_and_submit(d, {"note": "鍵は1階受付でお受け取りください"}, button="#do-approve")
        assert page["url"] == "/staff/bookings/approvals" and "承認しました。" in page["text"], page["text"]
        assert "承認待ちの予約はありません。" in page["text"]
        approved = await call(nc, c.EP_BOOKING_GET, {"actor": staff, "booking_id": booking["id"]},
                              service=c.SERVICE, node=NODE)
        assert (approved["state"], approved["decision_note"]) == ("confirmed", "鍵は1階受付でお受け取りください")

        pay = f"/bookings/{booking['id']}/pay"
        page = await log_in(d, base, "hanako", pay, via_logout=True)
        assert page["url"] == pay and "使用料のお支払い" in page["text"], page["text"]
        assert "お支払い期限" in page["text"], page["text"]
        assert await run(lambda: d.find_element(By.ID, "balance").text) == "1,200"
        assert page["overflow"] <= 0
        await shot(d, "life-pay")
        page = await fill_and_submit(d, {}, button="#next")
        assert "お支払い内容の確認" in page["text"] and "1,200 → 700" in page["text"], page["text"]
        await shot(d, "life-pay-confirm")
        page = await fill_and_submit(d, {}, button="#do-pay")
        assert page["url"] == pay and "お支払いが完了しました。" in page["text"], page["text"]
        assert await run(lambda: d.find_element(By.ID, "paid-with").text) == "地域通貨"
        await shot(d, "life-paid")
        wallet = await call(nc, cc.EP_WALLET, {"person": hanako["user_id"]}, node=NODE)
        assert next(b["balance"] for b in wallet["balances"] if b["asset"] == "local-currency") == 700
        # The same payment posted again (the browser's back button and a resubmitted form) moves nothing more.
        with pytest.raises(Exception, match="already"):
            await call(nc, lc.EP_PAY, {"actor": hanako, "booking_id": booking["id"], "method": "currency"},
                       service=c.SERVICE, node=NODE)

        # A second booking, paid with a 公民館の施設使用料 coupon bought with the rest of the currency.
        await call(nc, cc.EP_COUPON_TYPE_PUT, {"actor": staff, "code": "kominkan-fee", "title_ja": "公民館の施設使用料",
                                               "title_en": "Community hall fee", "issuer": "公民館", "price": 500,
                                               "valid_days": 90}, node=NODE)
        await call(nc, cc.EP_COUPON_BUY, {"person": hanako["user_id"], "type_code": "kominkan-fee",
                                          "key": "buy-browser-00000001"}, node=NODE)
        later = day + timedelta(days=1)
        while jpholiday.is_holiday(later):
            later += timedelta(days=1)
        second = await call(nc, c.EP_BOOKING_CREATE, {
            "actor": hanako, "facility_id": HALL["id"], "start": f"{later}T13:00:00+09:00",
            "end": f"{later}T17:00:00+09:00", "purpose": "子育てサークルの集まり"}, service=c.SERVICE, node=NODE)
        await call(nc, lc.EP_APPROVE, {"actor": staff, "booking_id": second["id"]}, service=c.SERVICE, node=NODE)
        page = await open_page(d, f"{base}/bookings/{second['id']}/pay")
        assert "公民館の施設使用料" in page["text"], page["text"]
        page = await fill(d, {}, checks=("#with-coupon-1",), submit="main #next")
        assert "クーポンで支払う: 公民館の施設使用料" in page["text"], page["text"]
        page = await fill_and_submit(d, {}, button="#do-pay")
        assert "お支払いが完了しました。" in page["text"], page["text"]
        assert await run(lambda: d.find_element(By.ID, "paid-with").text) == "クーポン"
    finally:
        await nc.close()
