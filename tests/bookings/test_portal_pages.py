"""The booking pages over HTTP (issue 17, points 3 and 8): a resident reads a facility and its week grid, books a free
block through the confirmation step, sees it in /bookings, cancels it; a taken slot is refused in Japanese with a
way back to the grid; the iCalendar feeds parse (a facility's without personal data, a person's at a private URL
that a reset closes); staff save a facility, book at the counter for a walk-in, read the day sheet and the usage
figures with their CSV. Real identity and bookings services (SQLite and PostgreSQL, the clock at helpers.NOW) and
the gateway app on a real nats-server."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import pytest
from icalendar import Calendar

from identity.app import IdentityService
from services.bookings.app import BookingsService
from tests.bookings.helpers import HALL, NODE, NOW, ROOM
from tests.identity.test_oidc_flow import portal_login
from tests.support import bus
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.contracts import bookings as c
from towntip.kernel.settings import ServiceSettings

BASE = "https://tsuru.example.jp"
DAY = "2026-10-29"  # a Thursday, two days after NOW


@dataclass
class Site:
    app: Any
    nc: nats.NATS

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE, follow_redirects=False)

    @asynccontextmanager
    async def as_(self, handle: str) -> AsyncIterator[httpx.AsyncClient]:
        async with self.browser() as b:
            assert (await portal_login(b, handle)).status_code == 303
            yield b


@pytest.fixture
async def site(nats_server, database, tmp_path) -> AsyncIterator[Site]:
    url, schema = database

    def settings(service: str, **db: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE, **db)

    svc = BookingsService(settings("bookings", database_url=url, database_schema=schema or ""), clock=lambda: NOW)
    async with started(IdentityService(settings("identity")), svc):
        nc = await nats.connect(nats_server.url)
        try:
            await add_people(nc, NODE, [("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None),
                                        ("clerk", "窓口 職員", "staff")])
            for f in (HALL, {**ROOM, "lat": 35.934, "lon": 139.393}):
                await bus.call(nc, c.EP_FACILITY_PUT, f, service=c.SERVICE, node=NODE)
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,bookings", public_url=BASE)
            async with app.router.lifespan_context(app):
                yield Site(app, nc)
        finally:
            await nc.close()


def csrf_of(r: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', r.text).group(1)  # type: ignore[union-attr]


def text_of(r: httpx.Response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r.text))


def slot(start: str, end: str) -> dict[str, str]:
    return {"facility": "ohashi-hall", "start": f"{DAY}T{start}:00+09:00", "end": f"{DAY}T{end}:00+09:00"}


async def book(b: httpx.AsyncClient, start: str, end: str, purpose: str = "合唱の練習") -> httpx.Response:
    """The form, its review, then the confirmed post."""
    form = await b.get("/bookings/new", params=slot(start, end))
    assert form.status_code == 200, form.text
    fields = {**slot(start, end), "purpose": purpose, "user_class": "city_group", "csrf": csrf_of(form)}
    review = await b.post("/bookings/new", data=fields)
    assert review.status_code == 200 and "予約内容の確認" in review.text, review.text
    return await b.post("/bookings/new", data={**fields, "csrf": csrf_of(review), "confirm": "1"})


async def test_a_resident_finds_a_room_books_a_block_sees_and_cancels_it(site: Site) -> None:
    async with site.browser() as anyone, site.as_("hanako") as hanako, site.as_("taro") as taro:
        r = await anyone.get("/facilities")
        assert r.status_code == 200 and "大橋公民館 ホール" in r.text and "市庁舎6F会議室" in r.text
        assert "openstreetmap.org/?mlat=35.934000&amp;mlon=139.393000" in r.text and "<script" not in r.text

        r = await anyone.get("/facilities/ohashi-hall", params={"week": "2026-10-26"})
        page = text_of(r)
        assert r.status_code == 200 and "午前" in page and "600円" in page and "1人あたり月3件まで" in page
        grid = r.text[r.text.index('id="week-grid"'):r.text.index("</table>", r.text.index('id="week-grid"'))]
        rows = [r for r in re.findall(r"<tr><th class=\"row\">(.*?)</th>(.*?)</tr>", grid, re.S) if r[0]]
        assert [label for label, _ in rows] == ["午前", "午後", "夜間"]
        morning = re.findall(r'<td class="c-(\w+)"', rows[0][1])
        # Mon 26 closed (休館日), Tue 27 morning before the service's clock and notice, Wed-Sun free.
        assert morning == ["closed", "unavailable", "free", "free", "free", "free", "free"], morning
        assert "休館" in rows[0][1] and "受付外" in rows[0][1] and "空き" in rows[0][1]
        r = await anyone.get("/facilities/ohashi-hall", params={"week": "2026-11-02"})  # 文化の日 (Tue 3 Nov)
        assert re.findall(r'<td class="c-(\w+)"', r.text)[:7][1] == "closed"
        assert "祝日：文化の日" in text_of(await anyone.get("/facilities/ohashi-hall", params={"day": "2026-11-03"}))
        # A grid facility: a row per 30 minutes from 09:00 to 16:30; 11:00 on Monday has passed, weekends are closed.
        r = await anyone.get("/facilities/city-hall-6f", params={"week": "2026-10-26"})
        grid = r.text[r.text.index('id="week-grid"'):r.text.index("</table>", r.text.index('id="week-grid"'))]
        rows = [x for x in re.findall(r"<tr><th class=\"row\">(.*?)</th>(.*?)</tr>", grid, re.S) if x[0]]
        assert [label for label, _ in rows][:2] == ["09:00", "09:30"] and rows[-1][0] == "16:30" and len(rows) == 16
        assert re.findall(r'<td class="c-(\w+)"', rows[4][1]) == ["unavailable"] + ["free"] * 4 + ["closed"] * 2
        assert "100円" in text_of(r)  # per step, city groups
        r = await anyone.get("/facilities/nowhere")
        assert r.status_code == 404 and "施設が見つかりません" in r.text
        r = await anyone.get("/facilities/ohashi-hall", params={"week": "2030-01-07"})
        assert r.status_code == 400 and "空き状況を表示できない日付です" in r.text

        # Booking needs a login; the resident books the 午前 block of the 29th.
        r = await anyone.get("/bookings/new", params=slot("09:00", "12:00"))
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        r = await book(hanako, "09:00", "12:00")
        assert r.status_code == 303 and r.headers["location"].endswith("?made=1"), r.text
        where = r.headers["location"].split("?")[0]
        page = text_of(await hanako.get(r.headers["location"]))
        assert "予約を受け付けました" in page and "確定" in page and "600円" in page and "合唱の練習" in page
        assert f'href="{where}/pay"' in (await hanako.get(where)).text  # the payment page (another helper's)

        # The slot is taken now: the grid says so; another resident is refused in Japanese with a way back.
        r = await anyone.get("/facilities/ohashi-hall", params={"day": DAY})
        assert "予約済" in text_of(r)
        r = await book(taro, "09:00", "12:00")
        assert r.status_code == 409 and "その時間は既に予約されています" in r.text and "別の枠を選ぶ" in r.text
        assert "booked already" not in r.text
        r = await taro.get(where)
        assert r.status_code == 404 and "予約が見つかりません" in r.text  # not his

        # My bookings: upcoming; then cancelled after the confirmation step.
        page = text_of(await hanako.get("/bookings"))
        assert "これからの予約" in page and "大橋公民館 ホール" in page.split("過去の利用")[0]
        r = await hanako.get(f"{where}/cancel")
        assert r.status_code == 200 and "取り消しますか" in r.text
        token = csrf_of(r)  # the session's token: pages without a form carry none (logout moved to メニュー)
        r = await hanako.post(f"{where}/cancel", data={"csrf": token})
        assert r.status_code == 303
        assert "予約を取り消しました" in text_of(await hanako.get(r.headers["location"]))
        page = text_of(await hanako.get("/bookings"))
        assert "大橋公民館 ホール" in page.split("取消・不承認")[1]
        r = await hanako.post(f"{where}/cancel", data={"csrf": token})
        assert r.status_code == 409 and "この予約は既に取り消されています" in r.text  # changes nothing


async def test_the_feeds_parse_and_keep_personal_data_private(site: Site) -> None:
    async with site.browser() as anyone, site.as_("hanako") as hanako:
        assert (await book(hanako, "13:00", "17:00", purpose="秘密の相談")).status_code == 303
        r = await anyone.get("/facilities/ohashi-hall.ics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
        cal = Calendar.from_ical(r.content)
        events = list(cal.walk("VEVENT"))
        assert [(e.decoded("dtstart").isoformat(), e.decoded("dtend").isoformat()) for e in events] == [
            (f"{DAY}T13:00:00+09:00", f"{DAY}T17:00:00+09:00")]
        assert "秘密" not in r.content.decode() and "hanako" not in r.content.decode()
        assert "DTSTART;TZID=Asia/Tokyo:20261029T130000" in r.content.decode() and b"BEGIN:VTIMEZONE" in r.content
        assert (await anyone.get("/facilities/nowhere.ics")).status_code == 404

        r = await hanako.get("/bookings/feed")
        assert "まだ発行していません" in r.text
        r = await hanako.post("/bookings/feed", data={"csrf": csrf_of(r)})
        url = re.search(r'id="feed-url" readonly value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
        assert url.startswith(f"{BASE}/bookings/feed/") and url.endswith(".ics")
        r = await anyone.get(url.removeprefix(BASE))  # no session: the token is the key
        assert r.status_code == 200
        mine = list(Calendar.from_ical(r.content).walk("VEVENT"))
        assert len(mine) == 1 and "秘密の相談" in str(mine[0].get("summary"))
        assert "発行済み" in (await hanako.get("/bookings/feed")).text and url not in (
            await hanako.get("/bookings/feed")).text  # shown once
        r = await hanako.post("/bookings/feed", data={"csrf": csrf_of(await hanako.get("/bookings/feed"))})
        assert (await anyone.get(url.removeprefix(BASE))).status_code == 404  # the reset closed the old URL
        assert (await anyone.get("/bookings/feed/short.ics")).status_code == 404


async def test_staff_facility_counter_day_sheet_and_usage(site: Site) -> None:
    async with site.as_("clerk") as clerk, site.as_("hanako") as hanako:
        assert (await hanako.get("/staff/bookings")).status_code == 403
        r = await clerk.get("/staff/bookings")
        assert r.status_code == 200 and "当日の利用一覧" in r.text and "ohashi-hall" in r.text

        # A facility saved from the form (hours, closed Tuesdays, blocks with fees), then edited.
        r = await clerk.get("/staff/bookings/facility")
        form = {"csrf": csrf_of(r), "id": "josei-kenshu", "name_ja": "女性センター 研修室", "name_en": "Women's Centre",
                "kind": "room", "address": "鶴ヶ島市", "capacity": "30", "closed_weekdays": "tue",
                "closed_on_holidays": "1", "layout_kind": "blocks",
                "blocks": "午前,morning,09:00,12:00,500,1000,2000\n午後,afternoon,13:00,17:00,700,1400,2800",
                "max_days_ahead": "60", "min_notice_minutes": "0", "buffer_minutes": "0",
                **{f"open_{d}": "09:00" for d in c.WEEKDAYS}, **{f"close_{d}": "17:00" for d in c.WEEKDAYS}}
        r = await clerk.post("/staff/bookings/facility", data=form)
        assert r.status_code == 200 and "施設を保存しました" in r.text, text_of(r)
        saved = await bus.call(site.nc, c.EP_FACILITY_GET, {"facility_id": "josei-kenshu"}, service=c.SERVICE,
                               node=NODE)
        assert saved["closed_weekdays"] == ["tue"] and saved["layout"]["blocks"][1]["fees"]["outside"] == 1400
        r = await clerk.get("/staff/bookings/facility", params={"id": "josei-kenshu"})
        assert "午後,afternoon,13:00,17:00,700,1400,2800" in r.text
        bad = await clerk.post("/staff/bookings/facility", data={**form, "csrf": csrf_of(r), "open_mon": "18:00"})
        assert bad.status_code == 400 and "合っていません" in bad.text  # facility.invalid in words, kept

        # 窓口予約 for a walk-in, and for a resident; a taken slot is refused in words. A free slot of the facility's
        # page leads staff (only) to the counter form with the slot filled in.
        r = await clerk.get("/facilities/ohashi-hall", params={"day": DAY})
        assert "/staff/bookings/counter?facility=ohashi-hall&amp;start=2026-10-29T18%3A00" in r.text
        assert "/staff/bookings/counter" not in (await hanako.get("/facilities/ohashi-hall", params={"day": DAY})).text
        r = await clerk.get("/staff/bookings/counter", params=slot("18:00", "21:30"))
        assert 'value="18:00"' in r.text and 'value="2026-10-29"' in r.text
        counter = {"csrf": csrf_of(r), "facility": "ohashi-hall", "date": DAY, "start": "18:00", "end": "21:30",
                   "purpose": "子ども会の練習", "user_class": "city_group", "who": "walkin",
                   "walkin_name": "来庁 一郎", "walkin_phone": "049-271-1111"}
        r = await clerk.post("/staff/bookings/counter", data=counter)
        assert r.status_code == 303 and r.headers["location"].startswith(f"/staff/bookings/day?date={DAY}")
        r = await clerk.post("/staff/bookings/counter", data={**counter, "purpose": "重複"})
        assert r.status_code == 409 and "既に予約されています" in r.text
        r = await clerk.post("/staff/bookings/counter", data={**counter, "walkin_phone": "unknown", "start": "09:00",
                                                              "end": "12:00"})
        assert r.status_code == 400 and 'value="unknown"' in r.text  # the form kept, nothing booked
        r = await clerk.post("/staff/bookings/counter", data={**counter, "start": "10:00", "end": "12:00"})
        assert r.status_code == 400 and "予約枠（午前・午後・夜間など）に合わせて" in r.text
        r = await clerk.post("/staff/bookings/counter", data={**counter, "who": "person", "handle": f"hanako@{NODE}",
                                                              "start": "09:00", "end": "12:00", "purpose": "読書会"})
        assert r.status_code == 303

        # The day sheet in time order with the booker, purpose, state and payment.
        page = text_of(await clerk.get("/staff/bookings/day", params={"date": DAY}))
        assert page.index("09:00–12:00") < page.index("18:00–21:30")
        assert "来庁 一郎" in page and "049-271-1111" in page and f"hanako@{NODE}" in page and "未払い" in page
        assert "この日の予約はありません" in text_of(await clerk.get("/staff/bookings/day",
                                                                   params={"date": "2026-10-30"}))

        # Usage for October: the chart (SVG), the table and the CSV.
        r = await clerk.get("/staff/bookings/usage", params={"month": "2026-10"})
        assert r.status_code == 200 and "<svg" in r.text and "稼働率" in r.text
        r = await clerk.get("/staff/bookings/usage.csv", params={"month": "2026-10"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        hall = next(x for x in rows if x["facility_id"] == "ohashi-hall")
        assert hall["booked_minutes"] == str(180 + 210) and hall["open_minutes"] == str(27 * 630)
        assert hall["booked_minutes_city_group"] == "390" and hall["name_ja"] == "大橋公民館 ホール"
        r = await clerk.get("/staff/bookings/usage", params={"month": "2026-13"})
        assert r.status_code == 400
