"""Registered groups (団体登録) and bookers from other nodes, over a real nats-server on SQLite and PostgreSQL: a
person applies, staff decide, the group books as the group (city_group fees, the monthly quota per group) by its
representative or named bookers only; a person of another node books where the facility or the node allows it.
Every refusal changes nothing."""

from __future__ import annotations

import nats

from services.bookings.app import BookingsService
from tests.bookings.conftest import settings
from tests.bookings.helpers import CLERK, HALL, HANAKO, NODE, NOW, ROOM, TARO, Node, a
from tests.bookings.lottery_helpers import JIRO, KENJI, LotteryNode, lottery_node  # noqa: F401 (the fixture `lnode`)
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_lottery as lc

TAIKO = "大橋太鼓の会"


async def test_a_group_applies_is_approved_and_books_as_the_group(lnode: LotteryNode) -> None:
    node = lnode
    await node.put(HALL)
    g = await node.group(HANAKO, TAIKO, activity="和太鼓の練習", district="大橋地区",
                         members=[TARO.global_handle, JIRO.global_handle], bookers=[TARO.global_handle])
    assert (g["state"], g["representative"], g["members"], g["bookers"]) == (
        "pending", HANAKO.global_handle, sorted([TARO.global_handle, JIRO.global_handle]), [TARO.global_handle])
    gid = g["id"]
    book = node.booking(HANAKO, "ohashi-hall", "2026-11-05", "09:00", "12:00", group_id=gid)
    await node.refused(lc.GROUP_NOT_APPROVED, c.EP_BOOKING_CREATE, book)
    await node.refused(lc.GROUP_STAFF_ONLY, lc.EP_GROUP_DECIDE,
                       {"actor": a(TARO), "group_id": gid, "decision": "approve"})
    approved = await node.decide(CLERK, gid, "approve")
    assert approved["state"] == "approved" and approved["decided_by"] == CLERK.global_handle
    await node.refused(lc.GROUP_BAD_DECISION, lc.EP_GROUP_DECIDE,
                       {"actor": a(CLERK), "group_id": gid, "decision": "approve"})

    # The representative books for the group: the city_group fee, whatever class was asked.
    first = await node.call(c.EP_BOOKING_CREATE, {**book, "user_class": "commercial"})
    assert (first["group_id"], first["user_class"], first["fee"], first["booker"]) == (
        gid, "city_group", 600, HANAKO.global_handle)
    # A member the representative named books for it; another member and a stranger do not.
    await node.book(TARO, "ohashi-hall", "2026-11-06", "09:00", "12:00", group_id=gid)
    await node.refused(lc.GROUP_NOT_BOOKER, c.EP_BOOKING_CREATE,
                       node.booking(JIRO, "ohashi-hall", "2026-11-07", "09:00", "12:00", group_id=gid))
    # Staff book for the group at the counter.
    await node.book(CLERK, "ohashi-hall", "2026-11-07", "09:00", "12:00", group_id=gid,
                    on_behalf_of=HANAKO.global_handle)
    # The hall allows 3 a month: per group, apart from the representative's own bookings.
    reason = await node.refused(c.BOOKING_QUOTA, c.EP_BOOKING_CREATE,
                                node.booking(TARO, "ohashi-hall", "2026-11-08", "09:00", "12:00", group_id=gid))
    assert "per group" in reason
    own = await node.book(HANAKO, "ohashi-hall", "2026-11-08", "09:00", "12:00")
    assert own["group_id"] is None

    # Suspended: the group books no more; reinstated: it does.
    await node.decide(CLERK, gid, "suspend")
    await node.refused(lc.GROUP_NOT_APPROVED, c.EP_BOOKING_CREATE,
                       node.booking(HANAKO, "ohashi-hall", "2026-12-05", "09:00", "12:00", group_id=gid))
    assert (await node.decide(None, gid, "reinstate"))["state"] == "approved"  # the operator, as staff

    events = [s.rsplit(".", 1)[1] for s, _ in await node.events()]
    assert [e for e in events if e.startswith("group")] == [
        "group_applied", "group_registered", "group_state_changed", "group_state_changed"]

    assert [x["id"] for x in (await node.call(lc.EP_GROUP_MINE, {"actor": a(JIRO)}))["groups"]] == [gid]
    assert (await node.call(lc.EP_GROUP_GET, {"actor": a(TARO), "group_id": gid}))["name"] == TAIKO
    await node.refused(lc.GROUP_NOT_FOUND, lc.EP_GROUP_GET, {"actor": a(KENJI), "group_id": gid})
    listed = await node.call(lc.EP_GROUP_LIST, {"actor": a(CLERK), "state": "approved"})
    assert [x["id"] for x in listed["groups"]] == [gid]
    await node.refused(lc.GROUP_STAFF_ONLY, lc.EP_GROUP_LIST, {"actor": a(HANAKO)})


async def test_bad_group_applications_are_refused_and_change_nothing(lnode: LotteryNode) -> None:
    node = lnode
    await node.put(HALL)
    await node.group(HANAKO, TAIKO, members=[TARO.global_handle])
    apply = {"actor": a(JIRO), "name": TAIKO, "member_count": 5}
    await node.refused(lc.GROUP_NAME_TAKEN, lc.EP_GROUP_APPLY, apply)
    await node.refused(lc.GROUP_NAME_TAKEN, lc.EP_GROUP_APPLY, {**apply, "name": " 大橋太鼓の会　"})
    reason = await node.refused(lc.GROUP_INVALID, lc.EP_GROUP_APPLY,
                                {**apply, "name": "笛の会", "bookers": [TARO.global_handle]})
    assert TARO.global_handle in reason
    await node.refused(lc.GROUP_INVALID, lc.EP_GROUP_APPLY,
                       {**apply, "name": "笛の会", "members": [TARO.global_handle], "member_count": 1})
    await node.refused(lc.GROUP_NOT_FOUND, lc.EP_GROUP_DECIDE, {
        "actor": a(CLERK), "group_id": "00000000-0000-0000-0000-000000000000", "decision": "approve"})
    await node.refused(lc.GROUP_NOT_FOUND, c.EP_BOOKING_CREATE, node.booking(
        HANAKO, "ohashi-hall", "2026-11-05", "09:00", "12:00", group_id="00000000-0000-0000-0000-000000000000"))
    rejected = await node.group(JIRO, "笛の会")
    assert (await node.decide(CLERK, rejected["id"], "reject"))["state"] == "rejected"
    await node.refused(lc.GROUP_BAD_DECISION, lc.EP_GROUP_DECIDE,
                       {"actor": a(CLERK), "group_id": rejected["id"], "decision": "suspend"})
    # A rejected name may be applied for again.
    assert (await node.group(JIRO, "笛の会"))["state"] == "pending"


async def test_a_person_of_another_node_books_where_the_node_allows_it(lnode: LotteryNode) -> None:
    node = lnode
    await node.put(HALL)
    await node.put(ROOM)
    reason = await node.refused(lc.BOOKING_OTHER_NODES_CLOSED, c.EP_BOOKING_CREATE,
                                node.booking(KENJI, "ohashi-hall", "2026-11-05", "09:00", "12:00"))
    assert "suginami" in reason
    # Staff at the counter cannot book for them either.
    await node.refused(lc.BOOKING_OTHER_NODES_CLOSED, c.EP_BOOKING_CREATE, node.booking(
        CLERK, "ohashi-hall", "2026-11-05", "09:00", "12:00", on_behalf_of=KENJI.global_handle))
    # The facility's rule opens it to other nodes.
    await node.put({**HALL, "rules": {**HALL["rules"], "open_to_other_nodes": True}})
    booked = await node.book(KENJI, "ohashi-hall", "2026-11-05", "09:00", "12:00")
    assert (booked["booker"], booked["state"]) == ("kenji@suginami", "confirmed")
    await node.refused(lc.BOOKING_OTHER_NODES_CLOSED, c.EP_BOOKING_CREATE,
                       node.booking(KENJI, "city-hall-6f", "2026-11-05", "10:00", "11:00"))


async def test_the_node_setting_opens_every_facility_to_other_nodes(nats_server, database, tmp_path) -> None:
    base = settings(nats_server.url, database, tmp_path)
    svc = BookingsService(base.model_copy(update={"bookings_open_to_other_nodes": True}),
                          clock=lambda: NOW)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        node = Node(nc, svc)
        await node.put(ROOM)
        booked = await node.book(KENJI, "city-hall-6f", "2026-11-05", "10:00", "11:00")
        assert booked["booker"] == "kenji@suginami" and booked["facility_id"] == "city-hall-6f"
        assert NODE not in booked["booker"]
    finally:
        await nc.close()
        await svc.stop()


