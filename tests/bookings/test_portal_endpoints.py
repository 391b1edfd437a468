"""The endpoints the portal's booking pages use (issue 17, points 3 and 8): the staff's day sheet, the usage figures
(稼働率 by user class), a person's overview, a facility's busy times (no personal data) and the private feed token
(kept hashed, reset closes the old one). The service over a real nats-server on SQLite and PostgreSQL, its clock at
helpers.NOW (Tuesday 27 October 2026, 10:00 JST)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from services.bookings.models import feed_tokens
from tests.bookings.helpers import CLERK, HALL, HANAKO, NODE, ROOM, TARO, Node, a
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_portal as p

DAY = "2026-10-29"  # a Thursday


async def _book_a_day(node: Node) -> dict[str, str]:
    await node.put(HALL)
    await node.put(ROOM)
    ids = {
        "morning": (await node.book(HANAKO, "ohashi-hall", DAY, "09:00", "12:00"))["id"],
        "afternoon": (await node.book(TARO, "ohashi-hall", DAY, "13:00", "17:00", user_class="outside"))["id"],
        "evening": (await node.book(CLERK, "ohashi-hall", DAY, "18:00", "21:30", user_class="commercial",
                                    on_behalf_of={"name": "来庁 一郎", "phone": "049-271-1111"}))["id"],
        "room": (await node.book(HANAKO, "city-hall-6f", DAY, "10:00", "11:30"))["id"],
        "gone": (await node.book(TARO, "city-hall-6f", DAY, "14:00", "15:00"))["id"],
    }
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(TARO), "booking_id": ids["gone"]})
    return ids


async def test_the_day_sheet_lists_a_days_bookings_in_time_order_for_staff_only(node: Node) -> None:
    ids = await _book_a_day(node)
    sheet = p.DaySheet.model_validate(await node.call(p.EP_DAY_SHEET, {"actor": a(CLERK), "date": DAY}))
    order = [e.booking.id for e in sheet.entries]
    assert order == [ids["morning"], ids["room"], ids["afternoon"], ids["gone"], ids["evening"]]
    walkin = sheet.entries[-1]
    assert (walkin.booking.booker, walkin.booking.booker_name, walkin.contact_phone) == (None, "来庁 一郎",
                                                                                         "049-271-1111")
    assert walkin.booking.booked_by == CLERK.global_handle and walkin.facility_name_ja == "大橋公民館 ホール"
    assert sheet.entries[3].booking.state == "cancelled"
    assert [f.id for f in sheet.facilities] == ["city-hall-6f", "ohashi-hall"]
    # without the cancelled; another day is empty; the operator (no actor) may see it too
    sheet = p.DaySheet.model_validate(await node.call(p.EP_DAY_SHEET, {"actor": a(CLERK), "date": DAY,
                                                                       "include_cancelled": False}))
    assert ids["gone"] not in [e.booking.id for e in sheet.entries] and len(sheet.entries) == 4
    assert (await node.call(p.EP_DAY_SHEET, {"date": "2026-10-30"}))["entries"] == []
    await node.refused(p.DAY_STAFF_ONLY, p.EP_DAY_SHEET, {"actor": a(HANAKO), "date": DAY})
    await node.refused(p.DAY_STAFF_ONLY, p.EP_USAGE, {"actor": a(HANAKO), "month": "2026-10"})


async def test_usage_is_booked_over_open_slot_time_by_user_class(node: Node) -> None:
    await _book_a_day(node)
    usage = p.Usage.model_validate(await node.call(p.EP_USAGE, {"actor": a(CLERK), "month": "2026-10"}))
    hall, room = {u.facility_id: u for u in usage.facilities}["ohashi-hall"], \
        {u.facility_id: u for u in usage.facilities}["city-hall-6f"]
    # The hall: 3 blocks (180 + 240 + 210 minutes) on every day of October but its Mondays (5, 12, 19, 26): 27 days.
    assert hall.open_minutes == 27 * 630
    assert hall.booked_minutes == 630 and hall.bookings == 3
    assert hall.by_class == {"city_group": 180, "outside": 240, "commercial": 210}
    assert hall.rate == round(630 / (27 * 630), 4)
    # The room: 09:00-17:00 on weekdays, closed on 体育の日 (12 October): 21 days; the cancelled hour does not count.
    assert room.open_minutes == 21 * 480 and room.booked_minutes == 90 and room.bookings == 1
    assert room.by_class == {"city_group": 90, "outside": 0, "commercial": 0}
    # Another month: open time, nothing booked.
    nov = p.Usage.model_validate(await node.call(p.EP_USAGE, {"actor": a(CLERK), "month": "2026-11"}))
    assert all(u.booked_minutes == 0 and u.rate == 0 and u.open_minutes > 0 for u in nov.facilities)


async def test_a_persons_overview_and_a_facilitys_busy_times(node: Node) -> None:
    ids = await _book_a_day(node)
    mine = p.Overview.model_validate(await node.call(p.EP_OVERVIEW, {"actor": a(TARO)}))
    assert mine.today.isoformat() == "2026-10-27"
    assert [b.id for b in mine.upcoming] == [ids["afternoon"]] and mine.past == []
    assert [b.id for b in mine.ended] == [ids["gone"]]
    assert mine.facility_names["ohashi-hall"] == "大橋公民館 ホール"
    busy = p.Busy.model_validate(await node.call(p.EP_FACILITY_BUSY, {"facility_id": "ohashi-hall"}))
    assert [(t.start.isoformat(), t.end.isoformat()) for t in busy.times] == [
        (f"{DAY}T09:00:00+09:00", f"{DAY}T12:00:00+09:00"), (f"{DAY}T13:00:00+09:00", f"{DAY}T17:00:00+09:00"),
        (f"{DAY}T18:00:00+09:00", f"{DAY}T21:30:00+09:00")]
    raw = await node.call(p.EP_FACILITY_BUSY, {"facility_id": "ohashi-hall", "start": "2026-10-30", "days": 5})
    assert raw["times"] == [] and "来庁" not in str(raw)
    await node.refused(c.FACILITY_NOT_FOUND, p.EP_FACILITY_BUSY, {"facility_id": "nowhere"})


async def test_the_private_feed_token_is_kept_hashed_and_a_reset_closes_the_old_one(node: Node) -> None:
    ids = await _book_a_day(node)
    assert (await node.call(p.EP_FEED_STATUS, {"actor": a(HANAKO)}))["active"] is False
    first = p.FeedToken.model_validate(await node.call(p.EP_FEED_TOKEN, {"actor": a(HANAKO)}))
    assert len(first.token) >= 40
    async with node.svc.sessions() as s:
        rows = (await s.execute(select(feed_tokens))).all()
    assert [(r.booker, r.token_hash) for r in rows] == [(f"hanako@{NODE}",
                                                         hashlib.sha256(first.token.encode()).hexdigest())]
    assert first.token not in str(rows)
    feed = p.PersonFeed.model_validate(await node.call(p.EP_FEED_PERSON, {"token": first.token}))
    assert feed.booker == HANAKO.global_handle and [b.id for b in feed.bookings] == [ids["morning"], ids["room"]]
    status = p.FeedStatus.model_validate(await node.call(p.EP_FEED_STATUS, {"actor": a(HANAKO)}))
    assert status.active and status.created_at is not None

    second = p.FeedToken.model_validate(await node.call(p.EP_FEED_TOKEN, {"actor": a(HANAKO)}))
    assert second.token != first.token
    await node.refused(p.FEED_NOT_FOUND, p.EP_FEED_PERSON, {"token": first.token})
    assert len((await node.call(p.EP_FEED_PERSON, {"token": second.token}))["bookings"]) == 2
    await node.refused(p.FEED_NOT_FOUND, p.EP_FEED_PERSON, {"token": "x" * 43})
