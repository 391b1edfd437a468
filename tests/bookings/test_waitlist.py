"""The waitlist (キャンセル待ち, issue 17 point 4) over a real nats-server on SQLite and PostgreSQL: joining a taken
slot, the offer when its booking is cancelled, accepting, declining and expiry passing the offer on (the periodic job
run twice doing the work once), refusals changing nothing, and cancellations racing new bookings for the freed slot
through two instances of the service never making two holders. The service's clock stands at helpers.NOW
(Tuesday 27 October 2026, 10:00 JST)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from services.bookings import waitlist
from services.bookings.app import BookingsService
from services.bookings.models import bookings
from services.bookings.models import waitlist as waitlist_table
from tests.bookings.conftest import settings
from tests.bookings.helpers import CLERK, HALL, HANAKO, NODE, NOW, TARO, Node, a
from tests.bookings.test_no_double_booking import holding, person
from tests.bookings.waitlist_helpers import JIRO, SABURO, kinds, mine, refused, snapshot
from tests.support.bus import wait_for
from towntip.kernel import errors
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_waitlist as w
from towntip.kernel.contracts.actor import Actor

DAY = "2026-10-29"  # a Thursday


def join(who: Actor, day: str = DAY, start: str = "13:00", end: str = "17:00", **more: object) -> dict[str, object]:
    return {"actor": a(who), "facility_id": "ohashi-hall", "start": f"{day}T{start}:00+09:00",
            "end": f"{day}T{end}:00+09:00", "purpose": "合唱の練習", **more}


async def test_join_offer_on_cancel_and_accept(node: Node) -> None:
    await node.put(HALL)
    held = await node.book(HANAKO, "ohashi-hall", DAY, "13:00", "17:00")
    taro = await node.call(w.EP_WAITLIST_JOIN, join(TARO))
    assert taro["state"] == "waiting" and taro["position"] == 1 and taro["person"] == TARO.global_handle
    jiro = await node.call(w.EP_WAITLIST_JOIN, join(JIRO))
    assert jiro["position"] == 2
    # Staff put Saburo on the list at the counter.
    saburo = await node.call(w.EP_WAITLIST_JOIN, join(CLERK, on_behalf_of=SABURO.global_handle))
    assert saburo["position"] == 3 and saburo["booked_by"] == CLERK.global_handle
    assert [e["position"] for e in (await mine(node, SABURO))["entries"]] == [3]

    # Hanako cancels: the slot is offered to Taro at once, held for him for 24 hours.
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": held["id"]})
    offer = (await mine(node, TARO))["entries"][0]
    assert offer["state"] == "offered" and offer["position"] is None
    assert offer["offer_expires_at"] == "2026-10-28T10:00:00+09:00"
    assert [e["position"] for e in (await mine(node, JIRO))["entries"]] == [1]
    booking = await node.call(c.EP_BOOKING_GET, {"actor": a(TARO), "booking_id": offer["booking_id"]})
    assert (booking["state"], booking["origin"], booking["fee"]) == ("offered", "waitlist", 800)
    # The offered slot holds: nobody else books it, and the day shows it taken.
    await refused(node, c.BOOKING_TAKEN, c.EP_BOOKING_CREATE,
                  node.booking(SABURO, "ohashi-hall", DAY, "13:00", "17:00"))
    assert [s["free"] for s in (await node.day("ohashi-hall", DAY))["slots"]] == [True, False, True]
    # Only Taro (or staff) answers the offer.
    await refused(node, c.BOOKING_NOT_FOUND, w.EP_OFFER_ACCEPT, {"actor": a(JIRO), "booking_id": booking["id"]})
    accepted = await node.call(w.EP_OFFER_ACCEPT, {"actor": a(TARO), "booking_id": booking["id"]})
    assert accepted["state"] == "confirmed" and accepted["booker"] == TARO.global_handle
    await refused(node, w.OFFER_NOT_OPEN, w.EP_OFFER_ACCEPT, {"actor": a(TARO), "booking_id": booking["id"]})
    assert (await mine(node, TARO))["entries"] == []
    assert [e["state"] for e in (await mine(node, TARO, include_done=True))["entries"]] == ["booked"]
    assert await kinds(node) == ["facility_updated", "booking_confirmed", "waitlist_joined", "waitlist_joined",
                                 "waitlist_joined", "booking_cancelled", "slot_offered", "booking_confirmed"]
    offered = [e["data"] for s, e in await node.events() if s.endswith(".slot_offered")][0]
    assert offered["person"] == TARO.global_handle and offered["expires_at"] == "2026-10-28T10:00:00+09:00"

    # Jiro leaves the list; Saburo stays first.
    left = await node.call(w.EP_WAITLIST_LEAVE, {"actor": a(JIRO), "entry_id": jiro["id"]})
    assert left["state"] == "left"
    assert [e["position"] for e in (await mine(node, SABURO))["entries"]] == [1]
    await refused(node, w.WAITLIST_NOT_WAITING, w.EP_WAITLIST_LEAVE, {"actor": a(JIRO), "entry_id": jiro["id"]})


async def test_needs_approval_an_accepted_offer_is_a_request(node: Node) -> None:
    await node.put({**HALL, "rules": {**HALL["rules"], "needs_approval": True, "offer_hours": 48}})
    held = await node.book(HANAKO, "ohashi-hall", "2026-10-28", "13:00", "17:00")
    await node.call(w.EP_WAITLIST_JOIN, join(TARO, "2026-10-28"))
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": held["id"]})
    offer = (await mine(node, TARO))["entries"][0]
    # 48 hours would pass the start: the offer ends when the slot begins.
    assert offer["offer_expires_at"] == "2026-10-28T13:00:00+09:00"
    accepted = await node.call(w.EP_OFFER_ACCEPT, {"actor": a(TARO), "booking_id": offer["booking_id"]})
    assert accepted["state"] == "requested"
    assert "booking_confirmed" not in await kinds(node)


async def test_decline_and_expiry_pass_the_offer_on(node: Node) -> None:
    await node.put(HALL)
    held = await node.book(HANAKO, "ohashi-hall", DAY, "13:00", "17:00")
    for who in (TARO, JIRO, SABURO):
        await node.call(w.EP_WAITLIST_JOIN, join(who))
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": held["id"]})
    taro = (await mine(node, TARO))["entries"][0]
    declined = await node.call(w.EP_OFFER_DECLINE, {"actor": a(TARO), "booking_id": taro["booking_id"]})
    assert declined["state"] == "cancelled" and declined["cancel_reason"] == "booker"
    jiro = (await mine(node, JIRO))["entries"][0]
    assert jiro["state"] == "offered" and jiro["offer_expires_at"] == "2026-10-28T10:00:00+09:00"
    assert [e["position"] for e in (await mine(node, SABURO))["entries"]] == [1]

    # Before its deadline the job leaves the offer alone; accepting after the deadline is refused.
    async with node.svc.sessions() as s, s.begin():
        assert await waitlist.expire_offers(s, node=NODE, now=NOW + timedelta(hours=23)) == 0
    later = NOW + timedelta(hours=25)
    before = await snapshot(node)
    with pytest.raises(errors.ServiceError) as info:
        async with node.svc.sessions() as s, s.begin():
            await waitlist.accept(s, node=NODE, data=w.OfferAction(actor=JIRO, booking_id=jiro["booking_id"]),
                                  now=later)
    assert info.value.error_code == w.OFFER_EXPIRED.code and await snapshot(node) == before

    # The job at 25 hours: Jiro's offer expires, Saburo gets it; the job run again does nothing more.
    async with node.svc.sessions() as s, s.begin():
        assert await waitlist.expire_offers(s, node=NODE, now=later) == 1
    once = await snapshot(node)
    async with node.svc.sessions() as s, s.begin():
        assert await waitlist.expire_offers(s, node=NODE, now=later) == 0
    assert await snapshot(node) == once
    expired = await node.call(c.EP_BOOKING_GET, {"actor": a(CLERK), "booking_id": jiro["booking_id"]})
    assert (expired["state"], expired["cancel_reason"]) == ("cancelled", "offer_expired")
    assert [e["state"] for e in (await mine(node, JIRO, include_done=True))["entries"]] == ["expired"]
    saburo = (await mine(node, SABURO))["entries"][0]
    assert saburo["state"] == "offered" and saburo["offer_expires_at"] == "2026-10-29T11:00:00+09:00"
    assert (await kinds(node)).count("offer_expired") == 1 and (await kinds(node)).count("slot_offered") == 3
    assert len(await holding(node, "ohashi-hall")) == 1


async def test_waitlist_refusals_change_nothing(node: Node) -> None:
    await node.put(HALL)
    await node.book(HANAKO, "ohashi-hall", DAY, "13:00", "17:00")
    await node.call(w.EP_WAITLIST_JOIN, join(TARO))
    await refused(node, w.WAITLIST_ALREADY, w.EP_WAITLIST_JOIN, join(TARO))
    await refused(node, w.WAITLIST_ALREADY, w.EP_WAITLIST_JOIN, join(HANAKO))  # she holds it
    await refused(node, w.WAITLIST_SLOT_FREE, w.EP_WAITLIST_JOIN, join(JIRO, start="09:00", end="12:00"))
    await refused(node, c.BOOKING_CLOSED_DAY, w.EP_WAITLIST_JOIN, join(JIRO, "2026-11-03"))
    await refused(node, c.BOOKING_PAST, w.EP_WAITLIST_JOIN, join(JIRO, "2026-10-26"))
    await refused(node, c.BOOKING_OFF_LAYOUT, w.EP_WAITLIST_JOIN, join(JIRO, start="13:30"))
    await refused(node, c.BOOKING_STAFF_ONLY, w.EP_WAITLIST_JOIN, join(JIRO, on_behalf_of=SABURO.global_handle))
    await refused(node, c.FACILITY_NOT_FOUND, w.EP_WAITLIST_JOIN, {**join(JIRO), "facility_id": "nowhere"})
    await refused(node, c.BOOKING_UNKNOWN_NODE, w.EP_WAITLIST_JOIN, {**join(JIRO), "facility_id": "x-hall@kyoto"})
    nobody = "00000000-0000-0000-0000-000000000000"
    await refused(node, w.WAITLIST_NOT_FOUND, w.EP_WAITLIST_LEAVE, {"actor": a(JIRO), "entry_id": nobody})
    taro = (await mine(node, TARO))["entries"][0]
    await refused(node, w.WAITLIST_NOT_FOUND, w.EP_WAITLIST_LEAVE, {"actor": a(JIRO), "entry_id": taro["id"]})
    await refused(node, c.BOOKING_NOT_FOUND, w.EP_OFFER_ACCEPT, {"actor": a(TARO), "booking_id": nobody})
    confirmed = (await node.call(c.EP_BOOKING_MINE, {"actor": a(HANAKO)}))["bookings"][0]
    await refused(node, w.OFFER_NOT_OPEN, w.EP_OFFER_DECLINE, {"actor": a(HANAKO), "booking_id": confirmed["id"]})
    before = await snapshot(node)
    with pytest.raises(errors.ServiceError) as info:  # a time without an offset does not fit the model
        await node.call(w.EP_WAITLIST_JOIN, {**join(JIRO), "start": "2026-10-29T13:00:00"})
    assert info.value.code == 400 and await snapshot(node) == before
    for i in range(w.WAITLIST_MAX - 1):
        await node.call(w.EP_WAITLIST_JOIN, join(person(i)))
    await refused(node, w.WAITLIST_FULL, w.EP_WAITLIST_JOIN, join(JIRO))


async def test_cancellations_and_new_bookings_racing_never_make_two_holders(node: Node, nats_server, database,
                                                                           tmp_path: Path) -> None:
    """Two bookings (morning, afternoon) are cancelled while ten people try to book those times and one person
    waits for the whole day, through two instances of the service: whatever wins, no two held ranges overlap, and
    each offer made is one announced and one entry offered."""
    second = BookingsService(settings(nats_server.url, database, tmp_path / "second"), clock=lambda: NOW)
    await second.start()
    try:
        await node.put(HALL)
        for round_, day in enumerate(("2026-10-29", "2026-10-30", "2026-10-31")):
            morning = await node.book(HANAKO, "ohashi-hall", day, "09:00", "12:00")
            afternoon = await node.book(TARO, "ohashi-hall", day, "13:00", "17:00")
            await node.call(w.EP_WAITLIST_JOIN, join(JIRO, day, "09:00", "17:00"))

            async def attempt(coro: object) -> str:
                try:
                    await coro  # type: ignore[misc]
                except errors.ServiceError as exc:
                    return exc.error_code
                return "ok"

            racers = [node.call(c.EP_BOOKING_CREATE, node.booking(
                person(10 * round_ + i), "ohashi-hall", day, *(("09:00", "12:00"), ("13:00", "17:00"),
                                                               ("09:00", "17:00"))[i % 3])) for i in range(10)]
            cancels = [node.call(c.EP_BOOKING_CANCEL, {"actor": a(who), "booking_id": b["id"]})
                       for who, b in ((HANAKO, morning), (TARO, afternoon))]
            outcome = await asyncio.gather(*(attempt(x) for x in (*cancels, *racers)))
            assert outcome[:2] == ["ok", "ok"], outcome
            assert set(outcome[2:]) <= {"ok", c.BOOKING_TAKEN.code}, outcome
        held = await holding(node, "ohashi-hall")
        for (_, until), (start, _) in zip(held, held[1:], strict=False):
            assert until <= start, f"two held ranges overlap: {held}"
        async with node.svc.sessions() as s:
            offered = (await s.execute(select(bookings.c.id).where(bookings.c.state == "offered"))).scalars().all()
            entries = (await s.execute(select(waitlist_table.c.booking_id).where(
                waitlist_table.c.state == "offered"))).scalars().all()
        assert sorted(offered) == sorted(entries)
        assert (await kinds(node)).count("slot_offered") == len(offered)
    finally:
        await second.stop()


async def test_the_service_expires_offers_on_its_own(nats_server, database, tmp_path: Path, monkeypatch) -> None:
    """The service's periodic job (app.py's loop, every OFFER_SWEEP_SECONDS) expires an offer once the clock has
    passed its deadline and offers the slot to the next in line, without anyone asking."""
    import nats

    from services.bookings import app

    monkeypatch.setattr(app, "OFFER_SWEEP_SECONDS", 0.1)
    clock = [NOW]
    svc = BookingsService(settings(nats_server.url, database, tmp_path), clock=lambda: clock[0])
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        node = Node(nc, svc)
        await node.put(HALL)
        held = await node.book(HANAKO, "ohashi-hall", DAY, "13:00", "17:00")
        for who in (TARO, JIRO):
            await node.call(w.EP_WAITLIST_JOIN, join(who))
        await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": held["id"]})
        assert [e["state"] for e in (await mine(node, TARO))["entries"]] == ["offered"]
        clock[0] = NOW + timedelta(hours=24, minutes=1)

        async def passed_on() -> bool:
            return [e["state"] for e in (await mine(node, JIRO))["entries"]] == ["offered"]

        await wait_for(passed_on, "the offer to pass from Taro to Jiro")
        assert [e["state"] for e in (await mine(node, TARO, include_done=True))["entries"]] == ["expired"]
    finally:
        await nc.close()
        await svc.stop()


async def test_a_rejected_request_offers_its_slot_to_the_first_in_line(node: Node) -> None:
    """Staff declining a request frees its slot like a cancellation: the first in line is offered it in the same
    transaction (services/bookings/life.py reject → waitlist.released)."""
    from towntip.kernel.contracts import bookings_life as lc

    await node.put({**HALL, "rules": {**HALL["rules"], "needs_approval": True}})
    request = await node.book(HANAKO, "ohashi-hall", DAY, "13:00", "17:00")
    assert request["state"] == "requested"
    await node.call(w.EP_WAITLIST_JOIN, join(TARO))
    await node.call(lc.EP_REJECT, {"actor": a(CLERK), "booking_id": request["id"], "reason": "目的が規約外です"})
    offer = (await mine(node, TARO))["entries"][0]
    assert offer["state"] == "offered"
    booking = await node.call(c.EP_BOOKING_GET, {"actor": a(TARO), "booking_id": offer["booking_id"]})
    assert booking["state"] == "offered" and booking["origin"] == "waitlist"
