"""/open-data on a phone in headless Chromium (Japanese first): a visitor finds it in the メニュー, reads what it is
and under which licence, and sees the download button big enough for a thumb; after a download the page says when
the zip was built. The gateway is served by uvicorn on a real port with identity and points behind it."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.gateway.test_portal_browser import portal  # noqa: F401 - fixture
from tests.support.browser import PHONE, click_link, open_page, phone_browser, run  # noqa: F401 - fixture
from towntip.kernel.clock import JST

pytestmark = pytest.mark.browser


def button_box(driver: Any) -> dict[str, Any]:
    return driver.execute_script(
        """const b = document.getElementById('od-download').getBoundingClientRect();
           return {width: b.width, height: b.height, right: b.right, top: b.top,
                   footer: Array.from(document.querySelectorAll('footer a')).map(a => a.getAttribute('href'))};""")


async def test_open_data_page_on_a_phone(portal, phone_browser, tmp_path) -> None:  # noqa: F811
    base, _ = portal
    d = phone_browser
    page = await open_page(d, f"{base}/menu")
    assert "オープンデータ" in page["text"], page["text"]
    page = await click_link(d, "オープンデータ")
    assert page["url"] == "/open-data" and page["lang"] == "ja", page
    assert page["overflow"] <= 0, f"the page scrolls sideways by {page['overflow']}px on a phone"
    for words in ("個人が特定される情報は含みません", "公共データ利用規約（第1.0版）(PDL1.0)", "CC BY 4.0",
                  "出典：鶴ヶ島市（TownTip Commons）", "まだ作成していません", "「<5」"):
        assert words in page["text"], words
    box = await run(button_box, d)
    assert box["height"] >= 44 and box["width"] >= 44 and box["right"] <= PHONE[0], box
    assert "/open-data" in box["footer"]
    await run(d.save_screenshot, str(tmp_path / "open-data.png"))

    async with httpx.AsyncClient(base_url=base) as visitor:  # what the button downloads
        r = await visitor.get("/open-data/download")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert {"README.txt", "usage_by_month.csv", "districts.csv", "events_points.csv"} <= set(z.namelist())

    page = await open_page(d, f"{base}/open-data")
    assert "まだ作成していません" not in page["text"] and datetime.now(JST).strftime("%Y-%m-%d") in page["text"]
    page = await open_page(d, f"{base}/open-data?lang=en")
    assert "Open data" in page["text"] and "Download the ZIP" in page["text"] and page["overflow"] <= 0
