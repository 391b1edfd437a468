"""The bookings service over a real nats-server, on SQLite and PostgreSQL: facilities, a day's availability, booking
and cancelling, counter bookings, and every refusal changing nothing (a snapshot of every table before and after).
The service's clock stands at helpers.NOW (Tuesday 27 October 2026, 10:00 JST)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bookings.helpers import CLERK, HALL, HANAKO, NODE, ROOM, TARO, Node, a
from towntip.kernel import errors
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts.actor import Actor


async def test_staff_put_facilities_and_anyone_reads_them(node: Node) -> None:
    hall = await node.put(HALL)
    assert hall["id"] == "ohashi-hall" and hall["layout"]["blocks"][1]["name_ja"] == "午後"
    assert hall["rules"]["max_per_month"] == 3 and hall["closed_weekdays"] == ["mon"]
    await node.put(ROOM, who=None)  # the operator's tooling (towntip demo seed): no actor
    listed = await node.call(c.EP_FACILITY_LIST, {})
    assert [f["id"] for f in listed] == ["city-hall-6f", "ohashi-hall"]
    assert (await node.call(c.EP_FACILITY_GET, {"facility_id": "city-hall-6f"}))["buffer_minutes"] == 15
    # Replaced whole by id: the capacity changes, the creation time stays.
    again = await node.put({**HALL, "capacity": 60})
    assert again["capacity"] == 60 and again["created_at"] == hall["created_at"]
    assert [e[0] for e in await node.events()] == [f"evt.{NODE}.bookings.facility_updated"] * 3
    assert [e[1]["data"]["created"] for e in await node.events()] == [True, True, False]

    await node.refused(c.FACILITY_STAFF_ONLY, c.EP_FACILITY_PUT, {**HALL, "actor": a(HANAKO), "capacity": 1})
    evening_only = {**HALL, "hours": {"sat": {"open": "09:00", "close": "17:00"}}, "closed_weekdays": []}
    reason = await node.refused(c.FACILITY_INVALID, c.EP_FACILITY_PUT, {**evening_only, "actor": a(CLERK)})
    assert "evening" in reason
    # What ties fields together is the service's check, answered with the code (not a schema error).
    blocks = HALL["layout"]["blocks"]
    for bad, why in (({"hours": {**HALL["hours"], "thu": {"open": "18:00", "close": "09:00"}}}, "thu"),
                     ({"layout": {"kind": "blocks", "blocks": [{**blocks[0], "end": "09:00"}]}}, "morning"),
                     ({"layout": {"kind": "blocks", "blocks": [blocks[1], blocks[0]]}}, "order"),
                     ({"layout": {"kind": "blocks", "blocks": [blocks[0], {**blocks[1], "start": "11:00"}]}},
                      "overlap")):
        assert why in await node.refused(c.FACILITY_INVALID, c.EP_FACILITY_PUT, {**HALL, **bad, "actor": a(CLERK)})
    await node.refused(c.FACILITY_NOT_FOUND, c.EP_FACILITY_GET, {"facility_id": "nowhere"})


async def test_availability_of_a_day_in_blocks_and_on_a_grid(node: Node) -> None:
    await node.put(HALL)
    await node.put(ROOM)
    day = await node.day("ohashi-hall", "2026-10-29")  # a Thursday
    assert day["closed"] is False and day["date"] == "2026-10-29"
    assert [(s["name_ja"], s["start"], s["end"], s["free"]) for s in day["slots"]] == [
        ("午前", "2026-10-29T09:00:00+09:00", "2026-10-29T12:00:00+09:00", True),
        ("午後", "2026-10-29T13:00:00+09:00", "2026-10-29T17:00:00+09:00", True),
        ("夜間", "2026-10-29T18:00:00+09:00", "2026-10-29T21:30:00+09:00", True)]
    await node.book(HANAKO, "ohashi-hall", "2026-10-29", "13:00", "17:00")
    assert [s["free"] for s in (await node.day("ohashi-hall", "2026-10-29"))["slots"]] == [True, False, True]

    # Today: the morning block has begun (and the notice is one hour), the rest is free.
    assert [s["free"] for s in (await node.day("ohashi-hall", "2026-10-27"))["slots"]] == [False, True, True]
    # Closed days give no free slot: Mondays, a date, the year's end, a public holiday.
    for date, why in (("2026-11-02", "Mondays"), ("2026-11-20", "2026-11-20"), ("2026-12-30", "12-30"),
                      ("2026-11-03", "文化の日")):
        closed = await node.day("ohashi-hall", date)
        assert closed["closed"] is True and why in closed["closed_reason"], closed
        assert closed["slots"] and not any(s["free"] for s in closed["slots"])

    # The grid: 16 steps of 30 minutes; a booking 10:00-11:00 and its 15-minute buffer take 10:00-11:30 (and a
    # step ending at 10:00 is not free either: its own buffer would reach into the booking).
    await node.book(TARO, "city-hall-6f", "2026-10-28", "10:00", "11:00")
    grid = await node.day("city-hall-6f", "2026-10-28")
    assert len(grid["slots"]) == 16 and grid["slots"][0]["name_ja"] is None
    busy = [s["start"][11:16] for s in grid["slots"] if not s["free"]]
    assert busy == ["09:30", "10:00", "10:30", "11:00"]
    weekend = await node.day("city-hall-6f", "2026-10-31")
    assert weekend == {"facility_id": "city-hall-6f", "date": "2026-10-31", "closed": True,
                       "closed_reason": "not open on Saturdays", "slots": []}
    await node.refused(c.AVAILABILITY_RANGE, c.EP_AVAILABILITY, {"facility_id": "city-hall-6f", "date": "2028-01-05"})
    await node.refused(c.FACILITY_NOT_FOUND, c.EP_AVAILABILITY, {"facility_id": "nowhere", "date": "2026-10-28"})


async def test_book_cancel_and_the_events(node: Node) -> None:
    await node.put(HALL)
    booked = await node.book(HANAKO, "ohashi-hall", "2026-10-29", "09:00", "17:00", user_class="outside")
    assert booked["state"] == "confirmed" and booked["fee"] == 1200 + 1600  # 午前・午後通し, 市外
    assert booked["start"] == "2026-10-29T09:00:00+09:00" and booked["booker"] == HANAKO.global_handle
    assert booked["booker_name"] == "山田 花子" and booked["booked_by"] is None
    # The same time given in UTC is the same booking's time: taken.
    await node.refused(c.BOOKING_TAKEN, c.EP_BOOKING_CREATE, {
        "actor": a(TARO), "facility_id": "ohashi-hall", "start": "2026-10-29T04:00:00Z",
        "end": "2026-10-29T08:00:00Z", "purpose": "練習"})
    assert (await node.call(c.EP_BOOKING_GET, {"actor": a(HANAKO), "booking_id": booked["id"]}))["id"] == booked["id"]
    await node.refused(c.BOOKING_NOT_FOUND, c.EP_BOOKING_GET, {"actor": a(TARO), "booking_id": booked["id"]})
    assert (await node.call(c.EP_BOOKING_GET, {"actor": a(CLERK), "booking_id": booked["id"]}))["fee"] == 2800

    await node.refused(c.BOOKING_NOT_YOURS, c.EP_BOOKING_CANCEL, {"actor": a(TARO), "booking_id": booked["id"]})
    gone = await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": booked["id"]})
    assert gone["state"] == "cancelled" and gone["cancelled_at"]
    await node.refused(c.BOOKING_CANCELLED, c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": booked["id"]})
    # The slot is free again: Taro books it; staff cancel his.
    taro = await node.book(TARO, "ohashi-hall", "2026-10-29", "13:00", "17:00")
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(CLERK), "booking_id": taro["id"]})
    nobody = "00000000-0000-0000-0000-000000000000"
    await node.refused(c.BOOKING_NOT_FOUND, c.EP_BOOKING_CANCEL, {"actor": a(CLERK), "booking_id": nobody})

    kinds = [(s.rsplit(".", 1)[1], e["data"]) for s, e in await node.events()][1:]  # after facility_updated
    assert [k for k, _ in kinds] == ["booking_confirmed", "booking_cancelled", "booking_confirmed",
                                     "booking_cancelled"]
    assert kinds[0][1]["booking_id"] == booked["id"] and kinds[0][1]["fee"] == 2800
    assert kinds[0][1]["start"] == "2026-10-29T09:00:00+09:00" and kinds[0][1]["at_counter"] is False
    assert [d["by"] for k, d in kinds if k == "booking_cancelled"] == ["booker", "staff"]

    mine = await node.call(c.EP_BOOKING_MINE, {"actor": a(TARO), "include_cancelled": True})
    assert [(b["id"], b["state"]) for b in mine["bookings"]] == [(taro["id"], "cancelled")]
    assert (await node.call(c.EP_BOOKING_MINE, {"actor": a(TARO)}))["bookings"] == []


async def test_staff_book_at_the_counter(node: Node) -> None:
    await node.put(HALL)
    for_hanako = await node.book(CLERK, "ohashi-hall", "2026-10-29", "18:00", "21:30",
                                 on_behalf_of=HANAKO.global_handle)
    assert for_hanako["booker"] == HANAKO.global_handle and for_hanako["booked_by"] == CLERK.global_handle
    # Hanako sees it as hers and may cancel it.
    assert [b["id"] for b in (await node.call(c.EP_BOOKING_MINE, {"actor": a(HANAKO)}))["bookings"]] == \
        [for_hanako["id"]]
    walkin = await node.book(CLERK, "ohashi-hall", "2026-10-30", "09:00", "12:00",
                             on_behalf_of={"name": "田中 一郎", "phone": "049-000-0000"})
    assert walkin["booker"] is None and walkin["booker_name"] == "田中 一郎"
    confirmed = [e["data"] for s, e in await node.events() if s.endswith("booking_confirmed")]
    assert [d["at_counter"] for d in confirmed] == [True, True]
    assert "049" not in str(confirmed) and "田中" not in str(confirmed)  # no contact details on the bus
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": for_hanako["id"]})
    # A resident cannot book for someone else.
    await node.refused(c.BOOKING_STAFF_ONLY, c.EP_BOOKING_CREATE,
                       node.booking(TARO, "ohashi-hall", "2026-10-29", "09:00", "12:00",
                                    on_behalf_of=HANAKO.global_handle))


async def test_bad_input_is_refused_with_a_code_and_changes_nothing(node: Node) -> None:
    await node.put(HALL)
    await node.put(ROOM)
    hall = "ohashi-hall"

    def ask(facility: str, day: str, start: str, end: str, who: Actor = HANAKO, **more: Any) -> tuple[str, Any]:
        return c.EP_BOOKING_CREATE, node.booking(who, facility, day, start, end, **more)

    await node.refused(c.BOOKING_PAST, *ask(hall, "2026-10-26", "09:00", "12:00"))
    await node.refused(c.BOOKING_PAST, *ask(hall, "2026-10-27", "09:00", "12:00"), match="passed")  # began
    await node.put({**ROOM, "id": "notice-room", "rules": {"min_notice_minutes": 24 * 60}})
    await node.refused(c.BOOKING_NOTICE, *ask("notice-room", "2026-10-27", "13:00", "13:30"))
    await node.refused(c.BOOKING_NOTICE, *ask("notice-room", "2026-10-28", "09:30", "10:00"))
    await node.book(HANAKO, "notice-room", "2026-10-28", "10:00", "10:30")  # exactly a day ahead
    await node.refused(c.BOOKING_CLOSED_DAY, *ask(hall, "2026-11-02", "09:00", "12:00"), match="Mondays")
    await node.refused(c.BOOKING_CLOSED_DAY, *ask(hall, "2026-11-03", "09:00", "12:00"), match="文化の日")
    await node.refused(c.BOOKING_CLOSED_DAY, *ask(hall, "2026-11-20", "09:00", "12:00"))
    await node.refused(c.BOOKING_OUTSIDE_HOURS, *ask("city-hall-6f", "2026-10-28", "16:30", "17:30"))
    await node.refused(c.BOOKING_OUTSIDE_HOURS, *ask("city-hall-6f", "2026-10-28", "08:00", "09:00"))
    await node.refused(c.BOOKING_OFF_LAYOUT, *ask(hall, "2026-10-29", "10:00", "12:00"), match="morning")
    await node.refused(c.BOOKING_OFF_LAYOUT, *ask("city-hall-6f", "2026-10-28", "10:10", "11:00"))
    await node.refused(c.BOOKING_TOO_LONG, *ask("city-hall-6f", "2026-10-28", "09:00", "12:30"))
    await node.refused(c.BOOKING_BAD_RANGE, *ask(hall, "2026-10-29", "13:00", "12:00"))
    await node.refused(c.BOOKING_TOO_FAR, *ask(hall, "2027-01-05", "09:00", "12:00"))
    await node.refused(c.FACILITY_NOT_FOUND, *ask("nowhere", "2026-10-29", "09:00", "12:00"))
    await node.refused(c.BOOKING_UNKNOWN_NODE, *ask("ohashi-hall@suginami", "2026-10-29", "09:00", "12:00"))
    # A time without an offset is not a time: the request does not fit its model.
    before = await node.snapshot()
    with pytest.raises(errors.ServiceError) as info:
        await node.call(c.EP_BOOKING_CREATE, {**node.booking(HANAKO, hall, "2026-10-29", "09:00", "12:00"),
                                              "start": "2026-10-29T09:00:00"})
    assert info.value.code == 400 and "timezone" in info.value.reason
    assert await node.snapshot() == before
    # Its own facility id written with this node's name is fine.
    ok = await node.book(HANAKO, f"{hall}@{NODE}", "2026-10-29", "09:00", "12:00")
    assert ok["facility_id"] == hall

    # The monthly quota (3 at the hall per person, by the month of the start): cancelled ones do not count.
    await node.book(HANAKO, hall, "2026-10-29", "13:00", "17:00")
    third = await node.book(HANAKO, hall, "2026-10-30", "09:00", "12:00")
    await node.refused(c.BOOKING_QUOTA, *ask(hall, "2026-10-30", "13:00", "17:00"))
    await node.book(HANAKO, hall, "2026-11-04", "09:00", "12:00")  # November: a new month
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": third["id"]})
    await node.book(HANAKO, hall, "2026-10-30", "13:00", "17:00")
    # Staff booking for Hanako count as hers.
    await node.refused(c.BOOKING_QUOTA, *ask(hall, "2026-10-31", "09:00", "12:00", who=CLERK,
                                              on_behalf_of=HANAKO.global_handle))


async def test_a_facility_that_needs_approval_holds_the_request(node: Node) -> None:
    """`needs_approval`: a booking waits as `requested` (the approval queue is next), holds its slot all the same,
    and is not announced as confirmed; cancelling it is announced."""
    await node.put({**HALL, "rules": {**HALL["rules"], "needs_approval": True}})
    asked = await node.book(HANAKO, "ohashi-hall", "2026-10-29", "09:00", "12:00")
    assert asked["state"] == "requested"
    await node.refused(c.BOOKING_TAKEN, c.EP_BOOKING_CREATE,
                       node.booking(TARO, "ohashi-hall", "2026-10-29", "09:00", "12:00"))
    assert [s["free"] for s in (await node.day("ohashi-hall", "2026-10-29"))["slots"]] == [False, True, True]
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": asked["id"]})
    assert [s.rsplit(".", 1)[1] for s, _ in await node.events()] == ["facility_updated", "booking_cancelled"]
