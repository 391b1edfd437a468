"""Collected feeds and the calendar in headless Chromium on a phone (issue 18 points 5 and 7): staff register the
welfare council's calendar and a broken feed on /staff/feeds (the broken one shows why, in words) and set a sorting
rule; a resident reads the month on /calendar and issues their private calendar URL, which a calendar app then
reads, and finds the collected news on /notices. The identity and notices services run beside the gateway on a
real nats-server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import icalendar
import nats as nats_client
import pytest
from selenium.webdriver.common.by import By

from identity.app import IdentityService
from services.notices.app import NoticesService
from services.notices.feeds_fetch import FeedReader, parse_allow
from tests.notices.feeds_support import FeedSite
from tests.support.browser import (
    fill,
    fill_and_submit,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from tests.support.smtp_helpers import Smtp
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
SHOTS = Path(os.environ.get("TOWNTIP_SCREENSHOTS", "/tmp/towntip-screens"))


async def shot(driver: Any, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    await run(lambda: (SHOTS.mkdir(parents=True, exist_ok=True), driver.save_screenshot(str(path))))
    return path


@pytest.fixture
async def portal(nats_server, tmp_path, smtp: Smtp) -> AsyncIterator[tuple[str, FeedSite, str]]:
    port, site_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    smtp.start()

    def settings(service: str, **more: str) -> ServiceSettings:
        return ServiceSettings(
            service=service, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / service), **more
        )

    identity = IdentityService(
        settings("identity", public_url=base), smtp=SmtpSettings(host="127.0.0.1", port=smtp.port)
    )
    notices = NoticesService(
        settings("notices"), reader=FeedReader(allow=parse_allow("127.0.0.0/8"), total=3.0), poll_every=None
    )
    site = FeedSite()
    async with started(identity, notices), served(site.app(), "127.0.0.1", site_port):
        nc = await nats_client.connect(nats_server.url)
        try:
            await add_people(nc, NODE, [("suzuki", "鈴木 職員", "staff"), ("hanako", "山田 花子", None)])
        finally:
            await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,notices", public_url=base)
        async with served(app, "127.0.0.1", port):
            try:
                yield base, site, f"http://127.0.0.1:{site_port}"
            finally:
                site.release.set()


async def test_staff_collect_feeds_and_a_resident_reads_the_calendar(portal, phone_browser) -> None:  # noqa: F811
    base, site, site_base = portal
    d = phone_browser

    page = await log_in(d, base, "hanako", "/staff/feeds", via_logout=True)
    assert "登録済みの取り込み先" not in page["text"], "a resident does not see the staff's page"

    page = await log_in(d, base, "suzuki", "/staff/feeds", via_logout=True)
    assert page["url"] == "/staff/feeds" and "外部サイトの情報の取り込み" in page["text"], page["text"]
    page = await fill(
        d,
        {"url": site_base + "/ics", "title": "社会福祉協議会の行事"},
        selects={"category": "福祉・健康"},
        submit="#add button[type=submit]",
    )
    assert "登録しました。" in page["text"] and "社会福祉協議会の行事" in page["text"], page["text"]
    assert await run(lambda: d.find_element(By.CSS_SELECTOR, ".feed").get_attribute("data-state")) == "ok"
    page = await fill(
        d, {"url": site_base + "/malformed", "title": "商店会のお知らせ"}, submit="#add button[type=submit]"
    )
    broken = await run(lambda: d.find_element(By.CSS_SELECTOR, ".feed.broken .why").text)
    assert "RSS・Atom・iCalendar・JSON のいずれとしても読めませんでした。" in broken, page["text"]
    page = await fill(d, {"url": site_base + "/rss", "title": "市の新着"}, submit="#add button[type=submit]")
    assert "登録しました。" in page["text"], page["text"]
    page = await fill(d, {"rules": "サロン,culture"}, submit="#rules button[type=submit]")
    assert "ルールを保存しました。" in page["text"] and page["overflow"] <= 0, page["text"]
    await shot(d, "feeds-staff")
    await run(lambda: d.execute_script("document.querySelector('.feed.broken').scrollIntoView()"))
    await shot(d, "feeds-staff-broken")
    # A feed into the node's own network is refused with words, and nothing is registered.
    page = await fill(d, {"url": "http://169.254.169.254/latest", "title": "x"}, submit="#add button[type=submit]")
    assert "内部・予約済みのアドレス" in page["text"], page["text"]

    month = f"{site.day:%Y-%m}"
    page = await open_page(d, f"{base}/calendar?month={month}")
    assert f"{site.day.year}年{site.day.month}月" in page["text"] and "ふれあいサロン" in page["text"], page["text"]
    assert "富士見公民館" in page["text"] and page["overflow"] <= 0
    await shot(d, "calendar-month")
    await run(lambda: d.execute_script("document.getElementById('entries').scrollIntoView()"))
    await shot(d, "calendar-month-entries")

    page = await log_in(d, base, "hanako", "/calendar/private", via_logout=True)
    assert "まだ発行していません。" in page["text"], page["text"]
    page = await fill_and_submit(d, {})
    url = await run(lambda: d.find_element(By.ID, "calendar-url").get_attribute("value"))
    assert "この画面を離れると二度と表示されません" in page["text"] and page["overflow"] <= 0
    await shot(d, "calendar-private")
    async with httpx.AsyncClient(timeout=20) as http:
        r = await http.get(url)
    assert r.status_code == 200
    assert "ふれあいサロン" in {str(e["summary"]) for e in icalendar.Calendar.from_ical(r.content).walk("VEVENT")}

    # The collected news are published as notices on a page anyone may read, each linking to its site.
    page = await open_page(d, f"{base}/notices")
    assert "お知らせ一覧" in page["text"] and "ごみ収集日の変更" in page["text"], page["text"]
    assert "市の新着 より" in page["text"] and page["overflow"] <= 0
    link = await run(lambda: d.find_element(By.CSS_SELECTOR, "#notices li[data-source=collected] a.more"))
    assert link.get_attribute("href").startswith("https://www.city.example/news/")
    assert "noopener" in link.get_attribute("rel") and link.size["height"] >= 24
    await shot(d, "notices-public")
