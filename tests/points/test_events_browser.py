"""Events in headless Chromium on a phone-sized screen (issue 17, point 7): staff put an event with a date, a venue
and one seat; a resident signs up and holds the seat; a second resident lands on the waitlist; the first cancels and
the second moves up; the list shows date, venue, capacity and seats left; the iCalendar feed parses (icalendar) with
the right times. Real identity and points services and the gateway on a real nats-server."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest
from selenium.webdriver.common.by import By

from tests.points.test_courses_browser import fetch, portal, submit  # noqa: F401 - fixture
from tests.support.browser import log_in, open_page, phone_browser, run  # noqa: F401 - fixture
from towntip.kernel.clock import JST

pytestmark = pytest.mark.browser


def _click(driver: Any, css: str) -> dict[str, Any]:
    from tests.support.browser import click_and_wait

    return click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, css))


async def test_a_resident_signs_up_on_a_phone_and_the_waitlist_moves_up(portal, phone_browser, tmp_path: Path  # noqa: F811
                                                                        ) -> None:
    base, d = portal, phone_browser

    # Staff: an event on 14 June 2031, 10:00-12:00 JST, at the 公民館 hall, one seat.
    page = await log_in(d, base, "shokuin", "/staff/events")
    assert page["url"] == "/staff/events" and "イベント管理" in page["text"], page["text"]
    page = await submit(d, "/staff/events", {"code": "toy-repair", "name": "おもちゃ病院", "capacity": "1",
                                             "venue_name": "中央公民館 ホール", "venue_facility": "kominkan-hall"},
                        js_values={"starts_at": "2031-06-14T10:00", "ends_at": "2031-06-14T12:00"})
    assert "保存しました" in page["text"] and "おもちゃ病院" in page["text"], page["text"]

    # Hanako on her phone: the list shows the date, venue, capacity and seats left; she signs up.
    page = await log_in(d, base, "hanako", "/events")
    assert page["url"] == "/events" and "2031-06-14（土）10:00–12:00" in page["text"], page["text"]
    assert "中央公民館 ホール" in page["text"] and "残り 1" in page["text"] and page["overflow"] <= 0
    page = await run(_click, d, "li[data-code='toy-repair'] button.signup")
    assert page["url"].startswith("/events/toy-repair") and "参加を申し込みました" in page["text"], page["text"]
    assert "申込済み" in page["text"] and "残り 0" in page["text"] and page["overflow"] <= 0
    await run(d.save_screenshot, str(tmp_path / "event-signed-up.png"))

    # Jiro: the event is full; he joins the waitlist (number 1).
    page = await log_in(d, base, "jiro", "/events/toy-repair")
    assert "キャンセル待ちに申し込む" in page["text"], page["text"]
    page = await run(_click, d, "button.signup")
    assert "キャンセル待ちに登録しました" in page["text"] and "キャンセル待ち（1番目）" in page["text"], page["text"]

    # Hanako cancels: Jiro moves up to her seat.
    page = await log_in(d, base, "hanako", "/events/toy-repair")
    page = await run(_click, d, "form[action='/events/toy-repair/cancel'] button")
    # her seat went to Jiro: for her the event is full again
    assert "申込を取り消しました" in page["text"] and "キャンセル待ちに申し込む" in page["text"], page["text"]
    page = await log_in(d, base, "jiro", "/events")
    assert await run(lambda: d.find_element(By.CSS_SELECTOR, "li[data-code='toy-repair'] [data-state]")
                     .get_attribute("data-state")) == "signed_up"

    # The calendar feed: one VEVENT with the event's times (JST) and venue.
    feed = await run(fetch, d, "/events.ics")
    assert feed["status"] == 200 and feed["type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(feed["text"])
    [ev] = [c for c in cal.walk("VEVENT")]
    assert str(ev["summary"]) == "おもちゃ病院" and str(ev["location"]) == "中央公民館 ホール"
    assert ev.decoded("dtstart") == datetime(2031, 6, 14, 10, 0, tzinfo=JST)
    assert ev.decoded("dtend") == datetime(2031, 6, 14, 12, 0, tzinfo=JST)
    await open_page(d, base + "/events")
    await run(d.save_screenshot, str(tmp_path / "events-list.png"))  # looked at while writing this test
