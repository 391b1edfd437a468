"""A lottery (抽選) from applications to results in headless Chromium on a phone-sized screen: staff open the round
for the hall's December, Hanako applies (Taro too, over the bus, for the same slot), the window closes, staff draw
(first without ticking the confirmation: refused), Hanako sees her result in マイ抽選 and the public verification
page says the published results are the ones the seed and the entries give. The gateway is served by uvicorn on a
real port; identity and bookings run beside it on a real nats-server; the bookings service's clock is the test's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.bookings.app import BookingsService
from tests.bookings.helpers import HALL, jst
from tests.bookings.lottery_helpers import Clock
from tests.support.browser import (
    fill,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_lottery as lc
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
OPEN = datetime(2026, 10, 27, 1, 0, tzinfo=UTC)  # Tuesday 27 October 2026, 10:00 JST
CLOSED = datetime(2026, 11, 11, 1, 0, tzinfo=UTC)


class Portal:
    def __init__(self, base: str, nc: nats.NATS, clock: Clock, users: dict[str, Any]) -> None:
        self.base, self.nc, self.clock, self.users = base, nc, clock, users

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=30)


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[Portal]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clock = Clock(OPEN)
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=base))
    bookings = BookingsService(ServiceSettings(service="bookings", node_id=NODE, nats_url=nats_server.url,
                                               data_dir=str(tmp_path / "bk")), clock=clock)
    async with started(ident, bookings):
        nc = await nats.connect(nats_server.url)
        try:
            users = await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None),
                                                ("clerk", "窓口 職員", "staff")))
            p = Portal(base, nc, clock, users)
            await p.call(c.EP_FACILITY_PUT, HALL)  # the operator's tooling
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,bookings", public_url=base)
            async with served(app, "127.0.0.1", port):
                yield p
        finally:
            await nc.close()


async def shot(driver: Any, where: Path, name: str) -> None:
    """A phone-sized screenshot beside the test's files (to look at when a page changes)."""
    assert await run(driver.save_screenshot, str(where / f"lottery-{name}.png"))


async def test_a_lottery_from_applications_to_results_on_a_phone(portal, phone_browser, tmp_path) -> None:  # noqa: F811
    p, d = portal, phone_browser
    base = p.base

    # Staff open the round for the hall's December.
    page = await log_in(d, base, "clerk", "/staff/lottery")
    assert page["url"] == "/staff/lottery" and "抽選の管理" in page["text"] and page["overflow"] <= 0
    page = await fill(d, {"max_entries": "2"}, raw={"month": "2026-12", "opens_at": "2026-10-27T09:00",
                                                    "closes_at": "2026-11-10T17:00"},
                      selects={"facility_id": "大橋公民館 ホール"}, submit="#open-round button")
    assert page["url"].startswith("/staff/lottery/") and "抽選を開始しました" in page["text"], page["text"]
    round_id = page["url"].rsplit("/", 1)[1]

    # Hanako applies: first choice the 5th's morning, second its afternoon.
    page = await log_in(d, base, "hanako", "/lottery")
    assert "大橋公民館 ホール · 2026-12" in page["text"] and "受付中" in page["text"] and page["overflow"] <= 0
    page = await open_page(d, f"{base}/lottery/{round_id}")
    assert "抽選に申し込む" in page["text"] and page["overflow"] <= 0
    await shot(d, tmp_path, "apply")
    page = await fill(d, {"purpose": "太鼓の練習"}, selects={"choice1": "12/05(土) 午前 09:00-12:00",
                                                            "choice2": "12/05(土) 午後 13:00-17:00"},
                      submit="#enter button")
    assert page["url"] == "/lottery/mine/entries" and "抽選の申込を受け付けました" in page["text"], page["text"]
    assert "抽選待ち" in page["text"] and page["overflow"] <= 0
    # Taro wants the same morning (over the bus, as the page would).
    taro = p.users["taro"]
    await p.call(lc.EP_LOTTERY_ENTER, {
        "actor": {"user_id": taro.id, "global_handle": taro.global_handle, "display_name": taro.display_name},
        "round_id": round_id, "choices": [{"start": jst("2026-12-05", "09:00"), "end": jst("2026-12-05", "12:00")}],
        "purpose": "会合"})

    # The window closes; staff see two entries and draw, once the confirmation is ticked.
    p.clock.now = CLOSED
    page = await log_in(d, base, "clerk", f"/staff/lottery/{round_id}")
    assert "受付終了" in page["text"] and page["overflow"] <= 0
    assert "申込数\n2" in page["text"] and "申込者数\n2" in page["text"], page["text"]
    page = await fill(d, {}, submit="#draw button")
    assert "やり直しはできません" in page["text"] and "抽選済み" not in page["text"]
    page = await fill(d, {}, checks=("input[name=confirm]",), submit="#draw button")
    assert "抽選を実施しました" in page["text"] and "抽選済み" in page["text"], page["text"]
    assert "当選" in page["text"] and page["overflow"] <= 0
    await shot(d, tmp_path, "staff-results")

    # Hanako sees her result: she wins the morning, or loses it to Taro and wins the afternoon nobody else wanted.
    page = await log_in(d, base, "hanako", "/lottery/mine/entries")
    assert "当選" in page["text"] and "当選した枠: 12/05(土) 午" in page["text"], page["text"]
    assert page["overflow"] <= 0
    await shot(d, tmp_path, "result")

    # Anyone checks the draw: the seed, the entries without names, and the recomputed result that matches.
    page = await open_page(d, f"{base}/lottery/{round_id}/verify")
    assert "一致" in page["text"] and "不一致" not in page["text"] and page["overflow"] <= 0
    assert "山田" not in page["text"] and "hanako" not in page["text"]
    await shot(d, tmp_path, "verify")
    page = await open_page(d, f"{base}/lottery/{round_id}/verify?lang=en")
    assert "Match" in page["text"] and page["overflow"] <= 0
