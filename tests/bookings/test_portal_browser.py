"""The booking pages in headless Chromium on a phone-sized screen (issue 17, points 3, 8 and 12): a resident finds a
room, reads its week grid, books a free 午前 block through the confirmation step, sees it in /bookings and cancels
it; staff book at the counter for a walk-in, read the day sheet, and the usage page with its chart and CSV. No page
is wider than the phone. Real identity and bookings services (the bookings clock at helpers.NOW) and the gateway,
served on a real port, over a real nats-server.

Set TOWNTIP_SCREENSHOTS to a directory to keep a phone-sized screenshot of each page looked at."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.bookings.app import BookingsService
from tests.bookings.helpers import HALL, NODE, NOW, ROOM
from tests.support import bus
from tests.support.browser import (
    click_link,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
    wait_left,
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.contracts import bookings as c
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
DAY = "2026-10-29"  # a Thursday, two days after the service's clock


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(service: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=base)

    async with started(IdentityService(settings("identity")), BookingsService(settings("bookings"),
                                                                              clock=lambda: NOW)):
        nc = await nats.connect(nats_server.url)
        try:
            await add_people(nc, NODE, [("hanako", "山田 花子", None), ("clerk", "窓口 職員", "staff")])
            for f in (HALL, {**ROOM, "lat": 35.934, "lon": 139.393}):
                await bus.call(nc, c.EP_FACILITY_PUT, f, service=c.SERVICE, node=NODE)
        finally:
            await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,bookings", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def look(driver: Any, name: str, at: str = "main") -> dict[str, Any]:
    """The page's facts; a phone screenshot (scrolled to `at`) kept where TOWNTIP_SCREENSHOTS says."""
    from tests.support.browser import facts

    where = os.environ.get("TOWNTIP_SCREENSHOTS")
    if where:
        def shoot() -> None:
            Path(where).mkdir(parents=True, exist_ok=True)
            driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", at)
            driver.save_screenshot(str(Path(where) / f"{name}.png"))

        await run(shoot)
    return await run(facts, driver)


def _click(driver: Any, css: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()
    return wait_left(driver, element, timeout=30)


async def click(driver: Any, css: str) -> dict[str, Any]:
    return await run(_click, driver, css)


def _fill(driver: Any, values: dict[str, str], radios: tuple[str, ...] = (), selects: dict[str, str] | None = None,
          raw: dict[str, str] | None = None) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name, value in values.items():
        field = driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    for css in radios:
        driver.execute_script("arguments[0].checked = true", driver.find_element(By.CSS_SELECTOR, css))
    for name, value in (selects or {}).items():
        Select(driver.find_element(By.NAME, name)).select_by_value(value)
    for name, value in (raw or {}).items():  # date and time inputs: typing into them depends on the locale
        driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.NAME, name), value)


def fetch(driver: Any, path: str) -> dict[str, Any]:
    """A same-origin GET from the page (with its cookies): status, content type and the text."""
    return driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
           fetch(arguments[0]).then(async r => done({status: r.status, type: r.headers.get('content-type'),
                                                     text: await r.text()}));""", path)


@pytest.mark.timeout(300)  # a dozen page loads in Chromium beside two services, on a busy 2-core machine
async def test_a_resident_books_a_morning_on_a_phone_and_cancels_it(portal, phone_browser) -> None:  # noqa: F811
    base, d = portal, phone_browser
    page = await log_in(d, base, "hanako", "/facilities")
    assert page["url"] == "/facilities" and "施設・設備予約" in page["text"] and "参加する" in page["text"]  # its tab
    page = await look(d, "01-facilities")
    assert "大橋公民館 ホール" in page["text"] and "地図を開く" in page["text"] and page["overflow"] <= 0

    page = await click_link(d, "大橋公民館 ホール")
    assert page["url"] == "/facilities/ohashi-hall" and "利用のきまり" in page["text"]
    await open_page(d, f"{base}/facilities/ohashi-hall?week=2026-10-26")
    await look(d, "02-facility-fees", "#fees")
    page = await look(d, "02-facility-week", "#week")
    await look(d, "02-facility-day", "#day")
    assert "週の空き状況" in page["text"] and "休館" in page["text"] and "空き" in page["text"]
    assert page["overflow"] <= 0, page["overflow"]

    # The free 午前 block of Thursday the 29th, from the week grid.
    page = await click(d, "#week-grid a[href*='2026-10-29T09%3A00']")
    assert page["url"] == "/bookings/new" and "予約の申請" in page["text"] and "10/29(木)" in page["text"]
    await run(_fill, d, {"purpose": "自治会の定例会"}, (), {"user_class": "city_group"})
    await look(d, "03-booking-form")
    page = await click(d, "main form button[type=submit]")
    assert "予約内容の確認" in page["text"] and "自治会の定例会" in page["text"] and "600円" in page["text"]
    await look(d, "04-booking-review")
    page = await click(d, "main form button[type=submit]")
    assert page["url"].startswith("/bookings/") and "予約を受け付けました" in page["text"], page["text"]
    assert "確定" in page["text"] and "使用料を支払う" in page["text"]
    page = await look(d, "05-booking")
    assert page["overflow"] <= 0
    booking_path = page["url"]

    # The grid now says 予約済 for that block; my bookings list it as upcoming.
    page = await open_page(d, f"{base}/facilities/ohashi-hall?day={DAY}")
    assert "予約済" in page["text"]
    page = await open_page(d, f"{base}/bookings")
    page = await look(d, "06-my-bookings")
    assert "大橋公民館 ホール" in page["text"].split("過去の利用")[0] and page["overflow"] <= 0

    # Cancel, after the confirmation page.
    await open_page(d, base + booking_path)
    page = await click_link(d, "予約を取り消す")
    assert "取り消しますか" in page["text"]
    await look(d, "07-cancel")
    page = await click(d, "main form button[type=submit]")
    assert "予約を取り消しました" in page["text"] and "取消" in page["text"]
    page = await open_page(d, f"{base}/bookings")
    assert "大橋公民館 ホール" in page["text"].split("取消・不承認")[1]


@pytest.mark.timeout(300)
async def test_staff_book_a_walk_in_at_the_counter_and_read_the_day_sheet_and_usage(portal,
                                                                                    phone_browser) -> None:  # noqa: F811
    base, d = portal, phone_browser
    page = await log_in(d, base, "clerk", "/staff/bookings")
    assert page["url"] == "/staff/bookings" and "施設予約の管理" in page["text"]
    page = await look(d, "10-staff")
    assert page["overflow"] <= 0

    await open_page(d, f"{base}/staff/bookings/counter?facility=ohashi-hall")
    await run(_fill, d, {"purpose": "子ども会の練習", "walkin_name": "来庁 一郎", "walkin_phone": "049-271-1111"},
              ("input[name=who][value=walkin]",), {"user_class": "city_group"},
              {"date": DAY, "start": "18:00", "end": "21:30"})
    page = await look(d, "11-counter")
    assert page["overflow"] <= 0
    page = await click(d, "main form button[type=submit]")
    assert page["url"] == "/staff/bookings/day" and "窓口予約を受け付けました" in page["text"], page["text"]
    assert "来庁 一郎" in page["text"] and "049-271-1111" in page["text"] and "子ども会の練習" in page["text"]
    page = await look(d, "12-day-sheet")
    assert "18:00–21:30" in page["text"]

    # The same slot again: refused in words, the form kept.
    await open_page(d, f"{base}/staff/bookings/counter?facility=ohashi-hall")
    await run(_fill, d, {"purpose": "重複", "handle": f"hanako@{NODE}"}, (), None,
              {"date": DAY, "start": "18:00", "end": "21:30"})
    page = await click(d, "main form button[type=submit]")
    assert "その時間は既に予約されています" in page["text"] and page["url"] == "/staff/bookings/counter"

    page = await open_page(d, f"{base}/staff/bookings/usage?month=2026-10")
    page = await look(d, "13-usage")
    await look(d, "13-usage-table", "#usage")
    assert "稼働率" in page["text"] and "大橋公民館 ホール" in page["text"] and page["overflow"] <= 0
    from selenium.webdriver.common.by import By

    assert await run(lambda: len(d.find_elements(By.CSS_SELECTOR, "#rate-chart svg rect.bar"))) == 2
    got = await run(fetch, d, "/staff/bookings/usage.csv?month=2026-10")
    assert got["status"] == 200 and got["type"].startswith("text/csv")
    assert "ohashi-hall,大橋公民館 ホール,17010,210," in got["text"]
