"""Blogs in headless Chromium on a phone (issue 20 points 2 and 11): Hanako writes an entry with a photo from her
phone whose EXIF holds the camera and a GPS position; a file that is no picture is refused with words and nothing is
written; she sees her entry with the photo, which the portal serves without any EXIF. Taro, not signed in, sees it
too (public); signed in he comments and gives 共感. Then Hanako deletes it after the portal's confirmation. Real
identity and sns services on a real nats-server; the gateway served by uvicorn on a real port."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from PIL import Image
from selenium.webdriver.common.by import By

from identity.app import IdentityService
from services.sns.app import SnsService
from tests.sns.test_sns_blogs import photo_with_gps
from tests.support.browser import (
    click_and_wait,
    fill,
    log_in,
    log_out,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.bus import call
from tests.support.http_server import served
from tests.support.nodes import CARD_KEY, add_people, gateway_app, started
from towntip.kernel.contracts import sns as c
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[str, Any]]:
    """The portal's base URL, and a way to list the blog entries over the bus (what is stored, whoever sees it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(service=name, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / name),
                               public_url=base, card_key=CARD_KEY)
    async with started(IdentityService(settings("identity")), SnsService(settings("sns"))):
        nc = await nats.connect(nats_server.url)
        try:
            await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None)))

            async def stored() -> list[dict[str, Any]]:
                got = await call(nc, c.EP_BLOG_LIST, {"author": f"hanako@{NODE}"}, service=c.SERVICE, node=NODE)
                return list(got["entries"])
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=base)
            async with served(app, "127.0.0.1", port):
                yield base, stored
        finally:
            await nc.close()


def choose(driver: Any, field: str, path: str) -> None:
    driver.find_element(By.ID, field).send_keys(path)


def shown(driver: Any) -> list[dict[str, Any]]:
    """Each picture the page shows, once the browser decoded it: its alt text and its size."""
    return driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
           const imgs = [...document.querySelectorAll('#pictures img')];
           Promise.all(imgs.map(i => i.decode().catch(() => null))).then(() => done(imgs.map(i => ({alt: i.alt,
             w: i.naturalWidth, h: i.naturalHeight}))));""")


def fetched(driver: Any) -> dict[str, Any]:
    """The full picture as the browser gets it: its type, caching and bytes."""
    return driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
           fetch(document.querySelector('#pictures a').href).then(async r => done({type: r.headers.get(
             'content-type'), cache: r.headers.get('cache-control'),
             bytes: Array.from(new Uint8Array(await r.arrayBuffer()))}));""")


async def shot(driver: Any, tmp_path: Path, name: str) -> None:
    where = Path(os.environ.get("TOWNTIP_SCREENSHOTS") or tmp_path)
    await run(lambda: where.mkdir(parents=True, exist_ok=True))
    await run(driver.save_screenshot, str(where / f"{name}.png"))


@pytest.mark.timeout(300)
async def test_write_a_blog_with_a_photo_on_a_phone(portal, phone_browser, tmp_path: Path) -> None:  # noqa: F811
    (base, stored), d = portal, phone_browser
    photo = tmp_path / "IMG_0420.jpg"
    photo.write_bytes(photo_with_gps((3000, 2000)))
    assert Image.open(photo).getexif().get_ifd(0x8825)  # the phone's photo says where it was taken
    not_a_photo = tmp_path / "flyer.jpg"
    not_a_photo.write_bytes(b"%PDF-1.7 a flyer, named like a photo")

    page = await log_in(d, base, "hanako", "/blogs/new", via_logout=True)
    assert page["url"] == "/blogs/new" and "ブログを書く" in page["text"] and "位置情報" in page["text"]
    assert page["overflow"] <= 0
    await shot(d, tmp_path, "blog-new")

    # Not a picture: the form again with words, and nothing was written.
    await run(choose, d, "picture1", str(not_a_photo))
    page = await fill(d, {"title": "清掃活動の報告", "body": "日曜の朝、川沿いのごみを拾いました。", "alt1": "チラシ"},
                      submit="#blog-form button[type=submit]")
    assert "写真として読み込めませんでした" in page["text"] and "{" not in page["text"], page["text"]
    assert await stored() == []

    await run(choose, d, "picture1", str(photo))
    page = await fill(d, {"title": "清掃活動の報告", "body": "日曜の朝、川沿いのごみを拾いました。",
                          "alt1": "川沿いで集めたごみ袋の山"}, submit="#blog-form button[type=submit]")
    assert page["url"].startswith("/blogs/") and "清掃活動の報告" in page["text"], page["text"]
    assert "全体に公開" in page["text"] and page["overflow"] <= 0
    pictures = await run(shown, d)
    assert [(p["alt"], p["w"], p["h"]) for p in pictures] == [("川沿いで集めたごみ袋の山", 1280, 853)], pictures
    got = await run(fetched, d)
    kept = Image.open(io.BytesIO(bytes(got["bytes"])))
    assert got["type"] == "image/jpeg" and "immutable" in got["cache"]  # public: a shared cache may keep it
    assert not kept.getexif() and "exif" not in kept.info and kept.size == (1280, 853)  # no GPS, no camera
    await shot(d, tmp_path, "blog-entry")
    entry = page["url"]
    assert [e["title"] for e in await stored()] == ["清掃活動の報告"]

    # Taro, not signed in, finds it in the list; signed in, he comments and gives 共感.
    await log_out(d)
    page = await open_page(d, f"{base}/blogs")
    assert "清掃活動の報告" in page["text"] and "写真1枚" in page["text"] and page["overflow"] <= 0
    await shot(d, tmp_path, "blog-list")
    page = await log_in(d, base, "taro", entry, via_logout=True)
    page = await fill(d, {"body": "おつかれさまでした！"}, submit="#comment-form button[type=submit]")
    assert "おつかれさまでした！" in page["text"], page["text"]
    page = await fill(d, {}, submit="#entry form.like button")
    assert "共感を取り消す 1" in page["text"], page["text"]

    # Hanako deletes it: first the question, then it is gone with its picture.
    page = await log_in(d, base, "hanako", entry, via_logout=True)
    page = await run(lambda: click_and_wait(d, d.find_element(By.ID, "delete-entry")))
    assert page["url"] == f"{entry}/delete" and "写真・コメント・共感はすべて削除されます" in page["text"]
    await shot(d, tmp_path, "blog-delete")
    page = await fill(d, {}, submit="main form button[type=submit]")
    assert page["url"] == "/blogs/mine" and "ブログを削除しました。" in page["text"], page["text"]
    assert await stored() == []
