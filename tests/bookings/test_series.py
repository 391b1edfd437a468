"""Recurring bookings (定期予約, issue 17 point 4) over a real nats-server on SQLite and PostgreSQL: a weekly series and
a monthly one by weekday, each date booked like a single booking, the dates not had reported with their codes (a
public holiday, a closed day, a taken date, the monthly quota, beyond the booking window); changing and cancelling
one, the following, or all; a change of time that cannot be had on some date changes nothing; and bad input refused
with its code, changing nothing. The service's clock stands at helpers.NOW (Tuesday 27 October 2026, 10:00 JST)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bookings.helpers import CLERK, HALL, HANAKO, ROOM, TARO, Node, a
from tests.bookings.waitlist_helpers import JIRO, kinds, mine, refused, snapshot
from towntip.kernel import errors
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_waitlist as w
from towntip.kernel.contracts.actor import Actor


def weekly(who: Actor, **more: Any) -> dict[str, Any]:
    return {"actor": a(who), "facility_id": "ohashi-hall", "start_time": "13:00", "end_time": "17:00",
            "pattern": {"kind": "weekly", "weekdays": ["tue"]}, "first_day": "2026-10-27", "count": 11,
            "purpose": "合唱の練習", **more}


def change(who: Actor, series_id: str, scope: str, action: str, booking_id: str | None = None,
           **more: Any) -> dict[str, Any]:
    return {"actor": a(who), "series_id": series_id, "scope": scope, "action": action,
            **({"booking_id": booking_id} if booking_id else {}), **more}


def by_day(detail: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """{date: (state, start time, end time)} of a series' bookings."""
    return {b["start"][:10]: (b["state"], b["start"][11:16], b["end"][11:16]) for b in detail["bookings"]}


async def test_a_weekly_series_reports_the_dates_not_had(node: Node) -> None:
    await node.put(HALL)
    await node.book(TARO, "ohashi-hall", "2026-11-17", "13:00", "17:00")
    report = await node.call(w.EP_SERIES_CREATE, weekly(HANAKO))
    assert [b["start"][:10] for b in report["booked"]] == [
        "2026-10-27", "2026-11-10", "2026-11-24", "2026-12-01", "2026-12-08", "2026-12-15"]
    assert all(b["origin"] == "series" and b["series_id"] == report["series"]["id"] and b["fee"] == 800
               for b in report["booked"])
    assert [(m["date"], m["code"]) for m in report["missed"]] == [
        ("2026-11-03", c.BOOKING_CLOSED_DAY.code),  # 文化の日
        ("2026-11-17", c.BOOKING_TAKEN.code),  # Taro's
        ("2026-12-22", c.BOOKING_QUOTA.code),  # the fourth in December (3 a month per person)
        ("2026-12-29", c.BOOKING_CLOSED_DAY.code),  # 年末年始
        ("2027-01-05", c.BOOKING_TOO_FAR.code)]  # bookings open 60 days ahead
    assert "文化の日" in report["missed"][0]["reason"]
    # The series remembers what it missed; its page shows every booking.
    detail = await node.call(w.EP_SERIES_GET, {"actor": a(HANAKO), "series_id": report["series"]["id"]})
    assert len(detail["bookings"]) == 6 and len(detail["series"]["missed"]) == 5
    assert [s["id"] for s in (await node.call(w.EP_SERIES_MINE, {"actor": a(HANAKO)}))["series"]] == \
        [report["series"]["id"]]
    await refused(node, w.SERIES_NOT_FOUND, w.EP_SERIES_GET, {"actor": a(TARO), "series_id": report["series"]["id"]})
    events = await kinds(node)
    assert events.count("booking_confirmed") == 7 and events[-1] == "series_booked"
    booked = [e["data"] for s, e in await node.events() if s.endswith(".series_booked")][0]
    assert booked["booked"][0] == "2026-10-27" and booked["missed"][1] == "2026-11-17"


async def test_a_monthly_series_by_weekday_skips_a_holiday(node: Node) -> None:
    await node.put(ROOM)  # weekdays only, closed on public holidays, 90 days ahead
    report = await node.call(w.EP_SERIES_CREATE, {
        "actor": a(CLERK), "on_behalf_of": HANAKO.global_handle, "facility_id": "city-hall-6f",
        "start_time": "10:00", "end_time": "12:00", "pattern": {"kind": "monthly", "nth": 1, "weekday": "tue"},
        "first_day": "2026-11-01", "last_day": "2027-01-31", "purpose": "町内会 役員会"})
    assert [b["start"] for b in report["booked"]] == ["2026-12-01T10:00:00+09:00", "2027-01-05T10:00:00+09:00"]
    assert [(m["date"], m["code"]) for m in report["missed"]] == [("2026-11-03", c.BOOKING_CLOSED_DAY.code)]
    assert report["series"]["booker"] == HANAKO.global_handle
    assert report["series"]["booked_by"] == CLERK.global_handle
    # 第2火曜 and the last Friday.
    second = await node.call(w.EP_SERIES_CREATE, {
        "actor": a(TARO), "facility_id": "city-hall-6f", "start_time": "14:00", "end_time": "15:00",
        "pattern": {"kind": "monthly", "nth": 2, "weekday": "tue"}, "first_day": "2026-10-27", "count": 3,
        "purpose": "読書会"})
    assert [b["start"][:10] for b in second["booked"]] == ["2026-11-10", "2026-12-08", "2027-01-12"]
    last = await node.call(w.EP_SERIES_CREATE, {
        "actor": a(TARO), "facility_id": "city-hall-6f", "start_time": "14:00", "end_time": "15:00",
        "pattern": {"kind": "monthly", "nth": -1, "weekday": "fri"}, "first_day": "2026-10-27", "count": 2,
        "purpose": "読書会"})
    assert [b["start"][:10] for b in last["booked"]] == ["2026-10-30", "2026-11-27"]


async def test_change_one_the_following_or_all(node: Node) -> None:
    await node.put(HALL)
    report = await node.call(w.EP_SERIES_CREATE, weekly(HANAKO, count=8))  # 10-27 … 12-15, no 11-03
    sid = report["series"]["id"]
    ids = {b["start"][:10]: b["id"] for b in report["booked"]}
    assert list(ids) == ["2026-10-27", "2026-11-10", "2026-11-17", "2026-11-24", "2026-12-01", "2026-12-08",
                         "2026-12-15"]

    # This one: 11-10 in the morning instead.
    detail = await node.call(w.EP_SERIES_CHANGE, change(HANAKO, sid, "one", "change", ids["2026-11-10"],
                                                        start_time="09:00", end_time="12:00"))
    days = by_day(detail)
    assert days["2026-11-10"] == ("confirmed", "09:00", "12:00") and days["2026-11-17"][1] == "13:00"
    assert detail["series"]["start_time"] == "13:00:00"
    # This and the following: from 12-01 in the evening (the series' time changes too).
    detail = await node.call(w.EP_SERIES_CHANGE, change(HANAKO, sid, "following", "change", ids["2026-12-01"],
                                                        start_time="18:00", end_time="21:30"))
    days = by_day(detail)
    assert [days[d][1] for d in ("2026-11-24", "2026-12-01", "2026-12-08", "2026-12-15")] == [
        "13:00", "18:00", "18:00", "18:00"]
    assert detail["series"]["start_time"] == "18:00:00"
    assert all(b["fee"] == 700 for b in detail["bookings"] if b["start"][11:16] == "18:00")

    # All, to the morning: 10-27's morning has passed and Taro holds 11-24's: nothing changes, both named.
    await node.book(TARO, "ohashi-hall", "2026-11-24", "09:00", "12:00")
    before = by_day(await node.call(w.EP_SERIES_GET, {"actor": a(HANAKO), "series_id": sid}))
    reason = await refused(node, w.SERIES_CONFLICTS, w.EP_SERIES_CHANGE, change(
        HANAKO, sid, "all", "change", start_time="09:00", end_time="12:00"))
    assert reason == f"2026-10-27 {c.BOOKING_PAST.code}; 2026-11-24 {c.BOOKING_TAKEN.code}"
    assert by_day(await node.call(w.EP_SERIES_GET, {"actor": a(HANAKO), "series_id": sid})) == before
    # All: a new purpose.
    detail = await node.call(w.EP_SERIES_CHANGE, change(HANAKO, sid, "all", "change", purpose="合唱の発表会準備"))
    assert {b["purpose"] for b in detail["bookings"]} == {"合唱の発表会準備"}

    # Jiro waits for 12-15's evening; cancelling this and the following (12-08, 12-15) offers it to him.
    await node.call(w.EP_WAITLIST_JOIN, {"actor": a(JIRO), "facility_id": "ohashi-hall",
                                         "start": "2026-12-15T18:00:00+09:00", "end": "2026-12-15T21:30:00+09:00",
                                         "purpose": "ヨガ教室"})
    detail = await node.call(w.EP_SERIES_CHANGE, change(HANAKO, sid, "following", "cancel", ids["2026-12-08"]))
    days = by_day(detail)
    assert [days[d][0] for d in ("2026-12-01", "2026-12-08", "2026-12-15")] == ["confirmed", "cancelled",
                                                                                   "cancelled"]
    assert {b["cancel_reason"] for b in detail["bookings"] if b["state"] == "cancelled"} == {"series"}
    assert [e["state"] for e in (await mine(node, JIRO))["entries"]] == ["offered"]
    # This one (10-27), then all that are left; staff may too.
    detail = await node.call(w.EP_SERIES_CHANGE, change(HANAKO, sid, "one", "cancel", ids["2026-10-27"]))
    assert by_day(detail)["2026-10-27"][0] == "cancelled"
    detail = await node.call(w.EP_SERIES_CHANGE, change(CLERK, sid, "all", "cancel"))
    assert {b["state"] for b in detail["bookings"]} == {"cancelled"}
    await refused(node, w.SERIES_NOTHING_LEFT, w.EP_SERIES_CHANGE, change(HANAKO, sid, "all", "cancel"))
    assert (await kinds(node)).count("series_changed") == 6


async def test_series_bad_input_changes_nothing(node: Node) -> None:
    await node.put(HALL)
    await refused(node, w.SERIES_TOO_MANY, w.EP_SERIES_CREATE, {
        **weekly(HANAKO, count=None), "pattern": {"kind": "weekly", "weekdays": ["tue", "thu"]},
        "last_day": "2027-10-01"})
    await refused(node, w.SERIES_NO_DATES, w.EP_SERIES_CREATE, {**weekly(HANAKO, count=None),
                                                                "last_day": "2026-10-01"})
    reason = await refused(node, w.SERIES_NONE_HAD, w.EP_SERIES_CREATE, {
        **weekly(HANAKO, count=2), "pattern": {"kind": "weekly", "weekdays": ["mon"]}})
    assert reason == f"2026-11-02 {c.BOOKING_CLOSED_DAY.code}; 2026-11-09 {c.BOOKING_CLOSED_DAY.code}"
    await refused(node, c.BOOKING_BAD_RANGE, w.EP_SERIES_CREATE, weekly(HANAKO, start_time="17:00"))
    await refused(node, c.BOOKING_STAFF_ONLY, w.EP_SERIES_CREATE, weekly(HANAKO, on_behalf_of=TARO.global_handle))
    await refused(node, c.FACILITY_NOT_FOUND, w.EP_SERIES_CREATE, weekly(HANAKO, facility_id="nowhere"))
    await refused(node, w.SERIES_INCOMPLETE, w.EP_SERIES_CREATE, weekly(HANAKO, last_day="2026-12-31"))
    await refused(node, w.SERIES_INCOMPLETE, w.EP_SERIES_CREATE, weekly(HANAKO, count=None))
    for bad in ({"count": 53}, {"start_time": "13:00+09:00:00"},
                {"pattern": {"kind": "monthly", "nth": 6, "weekday": "tue"}},
                {"pattern": {"kind": "weekly", "weekdays": []}}):
        before = await snapshot(node)
        with pytest.raises(errors.ServiceError) as info:
            await node.call(w.EP_SERIES_CREATE, {**weekly(HANAKO), **bad})
        assert info.value.code == 400, bad
        assert await snapshot(node) == before

    report = await node.call(w.EP_SERIES_CREATE, weekly(HANAKO, count=3))
    sid, first = report["series"]["id"], report["booked"][0]["id"]
    other = await node.book(TARO, "ohashi-hall", "2026-10-29", "09:00", "12:00")
    await refused(node, w.SERIES_NOT_IN, w.EP_SERIES_CHANGE, change(HANAKO, sid, "one", "cancel", other["id"]))
    await refused(node, w.SERIES_NOT_FOUND, w.EP_SERIES_CHANGE, change(TARO, sid, "one", "cancel", first))
    await refused(node, w.SERIES_NO_CHANGE, w.EP_SERIES_CHANGE, change(HANAKO, sid, "one", "change", first))
    await refused(node, w.SERIES_CONFLICTS, w.EP_SERIES_CHANGE, change(HANAKO, sid, "one", "change", first,
                                                                      start_time="13:30", end_time="17:00"))
    await refused(node, w.SERIES_INCOMPLETE, w.EP_SERIES_CHANGE, change(HANAKO, sid, "following", "cancel"))
    await refused(node, w.SERIES_INCOMPLETE, w.EP_SERIES_CHANGE, change(HANAKO, sid, "all", "change",
                                                                       start_time="09:00"))
