"""The directory of communities in other towns in headless Chromium on a phone: from /communities a resident opens
the 他のまちのコミュニティ tab, sees the communities two other towns listed (no member named, a rounded count),
filters by town and by category, and each entry links to the community's page at its own town's portal. The
listings are put into the sns service's directory as its consumer would (services/sns/directory.py `keep`); the
three-node test (test_sns_directory_nodes.py) covers how they arrive."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from identity.app import IdentityService
from services.sns import directory
from services.sns.app import SnsService
from tests.support.browser import (
    click_and_wait,
    fill,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import gateway_app, started
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.contracts import sns_directory as d
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
SUGI, SHIBU = "suginami", "shibuya"
URLS = {SUGI: "https://suginami.example.jp", SHIBU: "https://shibuya.example.jp"}
SHOTS = Path(os.environ.get("TOWNTIP_SCREENSHOTS", "/tmp/towntip-screens"))


def listing(town: str, name: str, cats: list[str], members: int, description: str = "") -> d.CommunityListed:
    cid = new_id()
    return d.CommunityListed(community_id=cid, origin_node=town, name=name, description=description,
                             categories=cats, members=members, url=f"{URLS[town]}/communities/{cid}",
                             at=datetime.now(UTC))


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[str, dict[str, d.CommunityListed]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(service=name, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / name),
                               public_url=base)
    sns = SnsService(settings("sns"))
    async with started(IdentityService(settings("identity")), sns):
        listed = {
            "walk": listing(SUGI, "杉並さんぽの会", ["npo-2"], 24, "週末に善福寺川沿いを歩きます。どなたでもどうぞ。"),
            "food": listing(SUGI, "杉並こども食堂ネット", ["npo-2", "npo-3"], 3,
                            "月2回、地域の子どもたちと食卓を囲みます。"),
            "garden": listing(SHIBU, "渋谷まちなか菜園", ["npo-7"], 57, "屋上で野菜を育てています。"),
        }
        now = datetime.now(UTC)
        async with sns.sessions() as session, session.begin():
            await directory.record_towns(session, URLS, now)
            for event in listed.values():
                await directory.keep(session, event.origin_node, event, now)
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, listed


async def links(driver: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    def read() -> dict[str, str]:
        return {a.find_element(By.XPATH, "./ancestor::li").find_element(By.TAG_NAME, "strong").text:
                a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a.join-there")}
    return await run(read)


async def test_other_towns_communities_on_a_phone(portal, phone_browser) -> None:  # noqa: F811
    (base, listed), drv = portal, phone_browser
    page = await open_page(drv, f"{base}/communities")
    assert "他のまちのコミュニティ" in page["text"]
    page = await run(lambda: click_and_wait(drv, drv.find_element("id", "towns-tab")))
    assert page["url"] == "/communities/towns" and page["lang"] == "ja" and page["overflow"] <= 0, page
    text = page["text"]
    for name in ("杉並さんぽの会", "杉並こども食堂ネット", "渋谷まちなか菜園"):
        assert name in text
    assert "メンバー20人以上" in text and "メンバー10人未満" in text and "メンバー50人以上" in text
    assert text.count("このまちで参加する（ホームIDでログイン）") == 3
    assert "hanako@tsurugashima" in text  # how to join: log in there with the home ID
    badges = await run(lambda: [b.text for b in drv.find_elements("css selector", "#towns-communities .badge")])
    assert sorted(badges) == ["杉並区", "杉並区", "渋谷区"], badges  # the towns' names, not their node ids
    towns = await run(lambda: [o.text for o in drv.find_elements("css selector", "#town option")])
    assert towns == ["すべてのまち", "渋谷区", "杉並区"], towns  # in the order of their ids (shibuya, suginami)
    got = await links(drv)
    assert got == {e.name: f"{URLS[e.origin_node]}/communities/{e.community_id}" for e in listed.values()}
    await run(lambda: (SHOTS.mkdir(parents=True, exist_ok=True),
                       drv.save_screenshot(str(SHOTS / "sns_directory_towns.png"))))

    page = await fill(drv, {}, selects={"town": "杉並区"}, submit="#filter button")
    assert "杉並さんぽの会" in page["text"] and "渋谷まちなか菜園" not in page["text"]
    page = await fill(drv, {}, selects={"town": "すべてのまち", "category": "生涯学習"}, submit="#filter button")
    assert set(await links(drv)) == {"杉並さんぽの会", "杉並こども食堂ネット"}, page["text"]
    page = await open_page(drv, f"{base}/communities/towns?town={SHIBU}&category=npo-2")
    assert "条件に合うコミュニティはありません" in page["text"] and page["overflow"] <= 0
