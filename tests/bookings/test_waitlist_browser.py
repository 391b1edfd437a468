"""The waitlist and recurring bookings pages in headless Chromium on a phone-sized screen: Hanako books a weekly
series at the 公民館 and sees the dates she could not have (a public holiday, Taro's date) with their reasons; she
joins the waitlist for Taro's date, Taro cancels, and she accepts the offer before its deadline. The gateway is
served by uvicorn on a real port; the identity and bookings services (its clock at helpers.NOW, Tuesday 27 October
2026, 10:00 JST) run beside it on a real nats-server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import nats
import pytest

from identity.app import IdentityService
from services.bookings.app import BookingsService
from tests.bookings.helpers import HALL, NODE, NOW, TARO
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
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[str, nats.NATS]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(service: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=base)

    async with started(IdentityService(settings("identity")), BookingsService(settings("bookings"),
                                                                              clock=lambda: NOW)):
        nc = await nats.connect(nats_server.url)
        try:
            await add_people(nc, NODE, (("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None)))
            await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_FACILITY_PUT), HALL)
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,bookings", public_url=base)
            async with served(app, "127.0.0.1", port):
                yield base, nc
        finally:
            await nc.close()


async def test_a_resident_books_a_weekly_series_on_a_phone_and_sees_the_dates_not_had(portal, phone_browser,  # noqa: F811
                                                                                    tmp_path) -> None:
    base, nc = portal
    d = phone_browser
    taro = {**TARO.model_dump(mode="json"), "user_id": "user-taro-0001"}
    taros = await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_BOOKING_CREATE), {
        "actor": taro, "facility_id": "ohashi-hall", "start": "2026-11-17T13:00:00+09:00",
        "end": "2026-11-17T17:00:00+09:00", "purpose": "囲碁クラブ"})

    page = await log_in(d, base, "hanako", "/bookings/series/new")
    assert page["url"] == "/bookings/series/new" and "定期予約を申し込む" in page["text"], page["text"]
    assert page["overflow"] <= 0
    page = await fill(d, {"count": "6", "purpose": "合唱の練習"}, checks=("input[name=weekdays][value=tue]",),
                      selects={"facility_id": "大橋公民館 ホール"},
                      raw={"start_time": "13:00", "end_time": "17:00", "first_day": "2026-10-27"},
                      submit="#series-form button")
    assert page["url"].startswith("/bookings/series/"), page["text"]
    text = page["text"]
    assert "定期予約を受け付けました。" in text and "予約できなかった日" in text
    for day in ("2026-10-27（火）", "2026-11-10（火）", "2026-11-24（火）", "2026-12-01（火）"):
        assert day in text
    assert "2026-11-03（火）\n休館日（祝日を含む）のため予約できません。" in text, text
    assert "2026-11-17（火）\nその時間は既に予約されています。" in text, text
    assert page["overflow"] <= 0
    shots = os.environ.get("TOWNTIP_SCREENSHOTS")
    await run(d.save_screenshot, str(tmp_path / "series.png"))
    if shots:
        await run(d.save_screenshot, os.path.join(shots, "waitlist_series.png"))

    series_url = page["url"]

    # All to the morning: 10-27's morning has passed, so nothing changes and the page says which date and why.
    page = await fill(d, {}, checks=("input[name=scope][value=all]", "input[name=action][value=change]"),
                      raw={"start_time": "09:00", "end_time": "12:00"}, submit="#change-form button")
    assert "次の内容で実行します。" in page["text"] and "すべて（今後の回）" in page["text"], page["text"]
    page = await fill(d, {}, submit="#confirm-form button")
    assert "新しい時間では予約できない日があるため、変更しませんでした。" in page["text"], page["text"]
    assert "2026-10-27（火）: 過去の日時は予約できません。" in page["text"], page["text"]
    # This one and the following from 12-01: cancelled after the confirmation.
    page = await open_page(d, f"{base}{series_url}")
    page = await fill(d, {}, checks=("input[name=scope][value=following]",),
                      selects={"booking_id": "2026-12-01（火） 13:00"}, submit="#change-form button")
    assert "この回以降（2026-12-01（火）〜）" in page["text"] and "取り消す" in page["text"], page["text"]
    page = await fill(d, {}, submit="#confirm-form button")
    assert page["url"] == series_url and "変更しました。" in page["text"]
    assert "取消 2026-12-01（火）" in page["text"] and "予約済み 2026-11-24（火）" in page["text"], page["text"]
    assert page["overflow"] <= 0

    # She waits for Taro's date; he cancels; the slot is offered to her with its deadline, and she books it.
    page = await open_page(d, f"{base}/bookings/waitlist")
    assert "キャンセル待ち中" in page["text"] and "キャンセル待ちはありません。" in page["text"]
    await run(lambda: d.find_element("css selector", "details summary").click())
    page = await fill(d, {"purpose": "合唱の練習"}, selects={"facility_id": "大橋公民館 ホール"},
                      raw={"date": "2026-11-17", "start": "13:00", "end": "17:00"}, submit="#join button")
    assert "キャンセル待ちに登録しました。" in page["text"] and "待ち順: 1番目" in page["text"], page["text"]
    await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_BOOKING_CANCEL), {"actor": taro,
                                                                             "booking_id": taros["id"]})
    page = await open_page(d, f"{base}/bookings/waitlist")
    assert "空きが出ました（ご案内中）" in page["text"] and "承諾期限: 2026-10-28（水） 10:00" in page["text"], \
        page["text"]
    assert page["overflow"] <= 0
    if shots:
        await run(d.save_screenshot, os.path.join(shots, "waitlist_offer.png"))
    page = await fill(d, {}, submit="#offers button.accept")
    assert "予約しました。" in page["text"] and "空きが出ました" not in page["text"]
