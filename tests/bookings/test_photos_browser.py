"""A facility's photos in headless Chromium on a phone (issue 17, point 1): staff pick a photo from the phone's
camera roll on the facility's photo page, it shows there and on the public facility page, upright and without its
location; a file that is not a picture is refused with words, not JSON."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from selenium.webdriver.common.by import By

from tests.bookings.test_photos import camera_photo
from tests.bookings.test_portal_browser import look, portal  # noqa: F401 - fixture
from tests.support.browser import fill_and_submit, log_in, open_page, phone_browser, run  # noqa: F401 - fixture

pytestmark = pytest.mark.browser


def choose_file(driver: Any, path: str) -> None:
    driver.find_element(By.ID, "photo").send_keys(path)


def shown(driver: Any) -> list[dict[str, Any]]:
    """Each photo the page shows: its alt text and the size the browser decoded."""
    return driver.execute_script(
        """return [...document.querySelectorAll('#photos img')].map(i => ({alt: i.alt, w: i.naturalWidth,
                    h: i.naturalHeight, done: i.complete}));""")


@pytest.mark.timeout(300)
async def test_staff_add_a_photo_that_residents_see(portal, phone_browser, tmp_path) -> None:  # noqa: F811
    base, d = portal, phone_browser
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(camera_photo(3000, 2000, noisy=True))  # as big as a real photo: ~450 KB once prepared
    not_a_photo = tmp_path / "hall.jpg"
    not_a_photo.write_bytes(b"%PDF-1.7 a leaflet, named like a photo")

    page = await log_in(d, base, "clerk", "/staff/bookings/facility/photos?id=ohashi-hall")
    assert "施設の写真" in page["text"] and "写真はまだありません。" in page["text"], page["text"]
    assert "人が写っていない写真" in page["text"]

    await run(choose_file, d, str(not_a_photo))
    page = await fill_and_submit(d, {"alt_ja": "ホール"}, button="#add-photo button[type=submit]")
    assert "写真として読み込めませんでした" in page["text"] and "{" not in page["text"], page["text"]

    await run(choose_file, d, str(photo))
    page = await fill_and_submit(d, {"alt_ja": "ホール全景、舞台側から"}, button="#add-photo button[type=submit]")
    assert "写真を追加しました。" in page["text"] and "1枚（最大8枚）" in page["text"], page["text"]
    await look(d, "08-staff-photos")
    assert page["overflow"] <= 0

    page = await open_page(d, f"{base}/facilities/ohashi-hall")
    pictures = await run(shown, d)
    assert [(p["alt"], p["w"], p["h"]) for p in pictures] == [("ホール全景、舞台側から", 320, 480)], pictures
    await look(d, "09-facility-photos")
    assert page["overflow"] <= 0

    # The full picture, as the browser gets it: upright (2000 wide, 3000 high shown as 1280 high), no EXIF.
    got = await run(lambda: d.execute_async_script(
        """const done = arguments[arguments.length - 1];
           fetch(document.querySelector('#photos a').href).then(async r => done({type: r.headers.get('content-type'),
             cache: r.headers.get('cache-control'), bytes: Array.from(new Uint8Array(await r.arrayBuffer()))}));"""))
    assert got["type"] == "image/jpeg" and "immutable" in got["cache"]
    full = Image.open(io.BytesIO(bytes(got["bytes"])))
    assert full.size == (853, 1280) and not full.getexif() and len(got["bytes"]) > 200 * 1024
