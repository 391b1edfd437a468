"""Lotteries (抽選) over a real nats-server on SQLite and PostgreSQL: staff open a round for the hall's December; its
slots are not booked first come; people and a registered group enter (a limit per applicant, choices on the round's
slots only, nothing after the window); staff draw after the window; the draw is the one the published seed and
entries give (recomputed, and a tampered publication fails); winners are confirmed bookings that never overlap; each
applicant is told the result; then the rest is first come. Every refusal changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from sqlalchemy import select

from services.bookings import lottery_check
from services.bookings.lottery_draw import draw
from services.bookings.models import bookings
from tests.bookings.helpers import CLERK, HALL, HANAKO, TARO, a, jst
from tests.bookings.lottery_helpers import JIRO, KENJI, LotteryNode, lottery_node  # noqa: F401 (the fixture `lnode`)
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_lottery as lc
from towntip.kernel.db import aware

AFTER_WINDOW = datetime(2026, 11, 11, 1, 0, tzinfo=UTC)  # Wednesday 11 November, 10:00 JST


def slot(day: str, start: str, end: str) -> dict[str, str]:
    return {"start": jst(day, start), "end": jst(day, end)}


MORNING_5, AFTERNOON_5, EVENING_6 = (slot("2026-12-05", "09:00", "12:00"), slot("2026-12-05", "13:00", "17:00"),
                                     slot("2026-12-06", "18:00", "21:30"))
MORNING_12 = slot("2026-12-12", "09:00", "12:00")


def opening(who: Any = CLERK, **more: Any) -> dict[str, Any]:
    return {"actor": a(who), "facility_id": "ohashi-hall", "month": "2026-12", "opens_at": jst("2026-10-27", "09:00"),
            "closes_at": jst("2026-11-10", "17:00"), "max_entries": 2, **more}


def entering(who: Any, round_id: str, *choices: dict[str, str], **more: Any) -> dict[str, Any]:
    return {"actor": a(who), "round_id": round_id, "choices": list(choices), "purpose": "練習", **more}


async def setup_round(node: LotteryNode) -> tuple[str, str]:
    """The hall, a counter booking made before the round, an approved group (Hanako's), and the round."""
    await node.put(HALL)
    await node.book(CLERK, "ohashi-hall", "2026-12-12", "09:00", "12:00", on_behalf_of=TARO.global_handle)
    g = await node.group(HANAKO, "大橋太鼓の会", members=[TARO.global_handle, JIRO.global_handle],
                         bookers=[TARO.global_handle])
    await node.decide(CLERK, g["id"], "approve")
    r = await node.call(lc.EP_LOTTERY_OPEN, opening())
    return r["id"], g["id"]


async def test_a_lottery_from_entries_to_a_draw_anyone_can_recheck(lnode: LotteryNode, tmp_path) -> None:
    node = lnode
    rid, gid = await setup_round(node)
    r = await node.call(lc.EP_LOTTERY_GET, {"round_id": rid})
    assert (r["state"], r["window"], r["entries"], r["seed"]) == ("open", "open", 0, None)
    # December's open days (not Mondays, not 12-29 … 12-31) in three blocks.
    assert len(r["slots"]) == 3 * (31 - 4 - 3) and r["slots"][0]["name_ja"] == "午前"
    # Until the draw the month is not booked first come; another month is.
    await node.refused(lc.BOOKING_IN_LOTTERY, c.EP_BOOKING_CREATE,
                       node.booking(JIRO, "ohashi-hall", "2026-12-03", "09:00", "12:00"))
    await node.book(JIRO, "ohashi-hall", "2026-11-26", "09:00", "12:00")

    # Three applicants want the 5th's morning first; the group enters twice (its limit), the third is refused.
    group1 = await node.call(lc.EP_LOTTERY_ENTER, entering(HANAKO, rid, MORNING_5, AFTERNOON_5, group_id=gid))
    assert (group1["applicant"], group1["state"], group1["group_id"]) == ("大橋太鼓の会", "entered", gid)
    group2 = await node.call(lc.EP_LOTTERY_ENTER, entering(TARO, rid, EVENING_6, group_id=gid))
    reason = await node.refused(lc.LOTTERY_LIMIT, lc.EP_LOTTERY_ENTER,
                                entering(HANAKO, rid, MORNING_12, group_id=gid))
    assert "大橋太鼓の会" in reason
    taro = await node.call(lc.EP_LOTTERY_ENTER, entering(TARO, rid, MORNING_5))
    assert taro["applicant"] == taro["id"]  # a person is published as the entry's ref only
    jiro = await node.call(lc.EP_LOTTERY_ENTER, entering(JIRO, rid, MORNING_5, EVENING_6))
    held = await node.call(lc.EP_LOTTERY_ENTER, entering(JIRO, rid, MORNING_12))  # taken at the counter before
    assert (await node.call(lc.EP_LOTTERY_GET, {"round_id": rid}))["entries"] == 5
    await node.refused(lc.LOTTERY_WINDOW_OPEN, lc.EP_LOTTERY_DRAW, {"actor": a(CLERK), "round_id": rid})

    node.clock.now = AFTER_WINDOW
    await node.refused(lc.LOTTERY_NOT_OPEN, lc.EP_LOTTERY_ENTER, entering(HANAKO, rid, MORNING_12))
    await node.refused(lc.LOTTERY_STAFF_ONLY, lc.EP_LOTTERY_DRAW, {"actor": a(TARO), "round_id": rid})
    await node.refused(lc.LOTTERY_NOT_DRAWN, lc.EP_LOTTERY_PUBLISHED, {"round_id": rid})
    drawn = await node.call(lc.EP_LOTTERY_DRAW, {"actor": a(CLERK), "round_id": rid})
    assert drawn["state"] == "drawn" and len(drawn["seed"]) == 64
    await node.refused(lc.LOTTERY_DRAWN, lc.EP_LOTTERY_DRAW, {"actor": a(CLERK), "round_id": rid})

    # The results: one of the three wins the 5th's morning; the group's first entry then gets its afternoon if it
    # lost the morning; the 6th's evening goes to one of its two; the 12th's morning was held before the draw.
    mine = {}
    for who in (HANAKO, TARO, JIRO):
        for e in (await node.call(lc.EP_LOTTERY_MINE, {"actor": a(who)}))["entries"]:
            mine[e["id"]] = e
    assert set(mine) == {group1["id"], group2["id"], taro["id"], jiro["id"], held["id"]}
    won = {ref: (e["won"]["start"], e["won"]["end"]) for ref, e in mine.items() if e["state"] == "won"}
    assert mine[held["id"]]["state"] == "lost"
    assert mine[group1["id"]]["state"] == "won"  # the morning or, lost, the afternoon nobody else wanted
    assert list(won.values()).count((MORNING_5["start"], MORNING_5["end"])) == 1
    assert list(won.values()).count((EVENING_6["start"], EVENING_6["end"])) == 1
    assert drawn["winners"] == len(won) and all(e["booking_id"] for e in mine.values() if e["state"] == "won")

    # Winners are confirmed bookings from the lottery, and no two bookings that hold a slot overlap.
    async with node.svc.sessions() as s:
        rows = (await s.execute(select(bookings).where(bookings.c.state.in_(c.HOLDING_STATES)))).all()
    lottery_rows = {r.id: r for r in rows if r.origin == "lottery"}
    assert set(lottery_rows) == {e["booking_id"] for e in mine.values() if e["state"] == "won"}
    assert all(r.state == "confirmed" for r in lottery_rows.values())
    assert lottery_rows[mine[group1["id"]]["booking_id"]].group_id == gid
    for x, y in combinations([r for r in rows if r.facility_id == "ohashi-hall"], 2):
        assert not (aware(x.starts_at) < aware(y.held_until) and aware(y.starts_at) < aware(x.held_until)), (x, y)

    # Each applicant is told: a LotteryResult per entry, and the draw itself.
    events = await node.events()
    results = [d["data"] for s, d in events if s.endswith(".lottery_result")]
    assert sorted(r["entry_id"] for r in results) == sorted(mine)
    assert {r["entry_id"]: r["won"] for r in results} == {ref: e["state"] == "won" for ref, e in mine.items()}
    assert [d["data"]["seed"] for s, d in events if s.endswith(".lottery_drawn")] == [drawn["seed"]]

    # Published: the seed, the entries (no personal data), what was held, the results; recomputed, it matches.
    pub = await node.call(lc.EP_LOTTERY_PUBLISHED, {"round_id": rid})
    text = json.dumps(pub, ensure_ascii=False)
    for personal in ("hanako", "taro", "jiro", "山田", "鈴木", "佐藤", "049"):
        assert personal not in text
    assert pub["seed"] == drawn["seed"] and [e["ref"] for e in pub["entries"]] == sorted(mine)
    assert [(h["start"], h["end"]) for h in pub["held"]] == [(MORNING_12["start"], MORNING_12["end"])]
    check = await node.call(lc.EP_LOTTERY_VERIFY, {"round_id": rid})
    assert (check["matches"], check["differences"], check["winners"]) == (True, [], len(won))
    # Re-run from the same data: the same results, every time.
    parsed = lc.LotteryPublication.model_validate(pub)
    again = draw(seed=parsed.seed, buffer_minutes=parsed.buffer_minutes, held=parsed.held, entries=parsed.entries)
    assert [r.model_dump() for r in again] == pub["results"]
    assert (await node.call(lc.EP_LOTTERY_CHECK, pub))["matches"] is True

    # Tampered: an entry dropped, or a loser's choices changed, no longer matches; nor does another seed.
    loser = next(e for e in pub["entries"] if e["ref"] == held["id"])
    dropped = {**pub, "entries": [e for e in pub["entries"] if e["ref"] != group1["id"]]}
    moved = {**pub, "entries": [{**e, "choices": [slot("2026-12-19", "18:00", "21:30")]} if e is loser else e
                                for e in pub["entries"]]}
    for tampered in (dropped, moved):
        bad = await node.call(lc.EP_LOTTERY_CHECK, tampered)
        assert bad["matches"] is False and bad["differences"], bad
    assert held["id"] in (await node.call(lc.EP_LOTTERY_CHECK, moved))["differences"]
    await node.refused(lc.LOTTERY_BAD_DATA, lc.EP_LOTTERY_CHECK, {**pub, "entries": pub["entries"] * 2})

    # The same check offline, from the published file.
    good_file, bad_file = tmp_path / "published.json", tmp_path / "tampered.json"
    good_file.write_text(json.dumps(pub), encoding="utf-8")
    bad_file.write_text(json.dumps(moved), encoding="utf-8")
    assert lottery_check.main([str(good_file)]) == 0
    assert lottery_check.main([str(bad_file)]) == 1

    # Then first come, first served for what is left; a won slot is taken.
    rest = await node.book(JIRO, "ohashi-hall", "2026-12-03", "09:00", "12:00")
    assert rest["origin"] == "direct"
    await node.refused(c.BOOKING_TAKEN, c.EP_BOOKING_CREATE,
                       node.booking(HANAKO, "ohashi-hall", "2026-12-05", "09:00", "12:00"))


async def test_bad_rounds_and_entries_are_refused_and_change_nothing(lnode: LotteryNode) -> None:
    node = lnode
    rid, gid = await setup_round(node)
    await node.refused(lc.LOTTERY_STAFF_ONLY, lc.EP_LOTTERY_OPEN, opening(HANAKO, month="2027-01"))
    await node.refused(lc.LOTTERY_EXISTS, lc.EP_LOTTERY_OPEN, opening())
    for bad, why in (({"month": "2027-01", "closes_at": jst("2027-01-02", "17:00")}, "before 2027-01"),
                     ({"month": "2026-10"}, "before 2026-10"),
                     ({"month": "2027-01", "opens_at": jst("2026-11-10", "18:00")}, "open before"),
                     ({"month": "2027-01", "closes_at": jst("2026-10-27", "09:30")}, "closed already"),
                     ({"month": "2028-03", "closes_at": jst("2028-01-10", "17:00")}, "too far")):
        assert why in await node.refused(lc.LOTTERY_INVALID, lc.EP_LOTTERY_OPEN, opening(**bad))
    await node.refused(c.FACILITY_NOT_FOUND, lc.EP_LOTTERY_OPEN, opening(facility_id="nowhere", month="2027-01"))
    await node.refused(lc.LOTTERY_NOT_FOUND, lc.EP_LOTTERY_GET, {"round_id": "00000000-0000-0000-0000-000000000000"})

    for choices, why in (([slot("2026-12-05", "10:00", "12:00")], "choice 1"),  # not a block
                         ([MORNING_5, MORNING_5], "same slot"),
                         ([MORNING_5, slot("2026-12-07", "09:00", "12:00")], "choice 2"),  # a Monday: closed
                         ([slot("2027-01-05", "09:00", "12:00")], "choice 1")):  # another month
        assert why in await node.refused(lc.LOTTERY_BAD_CHOICE, lc.EP_LOTTERY_ENTER, entering(TARO, rid, *choices))
    await node.refused(lc.BOOKING_OTHER_NODES_CLOSED, lc.EP_LOTTERY_ENTER, entering(KENJI, rid, MORNING_5))
    await node.refused(lc.GROUP_NOT_BOOKER, lc.EP_LOTTERY_ENTER, entering(JIRO, rid, MORNING_5, group_id=gid))
    await node.refused(lc.GROUP_NOT_FOUND, lc.EP_LOTTERY_ENTER,
                       entering(JIRO, rid, MORNING_5, group_id="00000000-0000-0000-0000-000000000000"))

    # A person's own limit; a withdrawn entry frees its place while the window is open.
    first = await node.call(lc.EP_LOTTERY_ENTER, entering(TARO, rid, MORNING_5))
    await node.call(lc.EP_LOTTERY_ENTER, entering(TARO, rid, AFTERNOON_5))
    await node.refused(lc.LOTTERY_LIMIT, lc.EP_LOTTERY_ENTER, entering(TARO, rid, EVENING_6))
    await node.refused(lc.LOTTERY_NOT_FOUND, lc.EP_LOTTERY_WITHDRAW, {"actor": a(JIRO), "entry_id": first["id"]})
    assert (await node.call(lc.EP_LOTTERY_WITHDRAW, {"actor": a(TARO), "entry_id": first["id"]}))["state"] == \
        "withdrawn"
    await node.call(lc.EP_LOTTERY_ENTER, entering(TARO, rid, EVENING_6))
    assert (await node.call(lc.EP_LOTTERY_GET, {"round_id": rid}))["entries"] == 2

    # Before the window: nobody enters yet.
    early = await node.call(lc.EP_LOTTERY_OPEN, opening(month="2027-01", opens_at=jst("2026-11-01", "09:00"),
                                                        closes_at=jst("2026-11-30", "17:00")))
    assert early["window"] == "before"
    await node.refused(lc.LOTTERY_NOT_OPEN, lc.EP_LOTTERY_ENTER,
                       entering(TARO, early["id"], slot("2027-01-09", "09:00", "12:00")))
    rounds = await node.call(lc.EP_LOTTERY_LIST, {"facility_id": "ohashi-hall"})
    assert [x["month"] for x in rounds["rounds"]] == ["2027-01", "2026-12"]
    node.clock.now = AFTER_WINDOW
    await node.refused(lc.LOTTERY_NOT_OPEN, lc.EP_LOTTERY_WITHDRAW, {"actor": a(TARO), "entry_id": first["id"]})
