"""Check-in of bookings (issue 17, point 4) over a real nats-server, the bookings service on SQLite and PostgreSQL:
a bound card's touch at the facility's terminal, through the points service and the inbox, checks in the booker's
booking (once, whatever is redelivered); staff check in at the counter; a no-show is released after the facility's
time (the job run twice releases once) and its slot is free again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import nats
import pytest
from sqlalchemy import select

from services.bookings import checkin
from services.bookings.app import BookingsService
from services.bookings.models import bookings
from services.points.people.service import link_actor
from services.points.taps import service as taps
from tests.bookings.conftest import settings
from tests.bookings.helpers import CLERK, HANAKO, NODE, NOW, ROOM, TARO, Node, a
from tests.support.nodes import CARD_KEY, points_running
from towntip.kernel.bus import subjects
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_checkin as k
from towntip.kernel.contracts.points import EventIn, Tap
from towntip.kernel.db import aware

CARD = "0C0C0C0C0C0C0C01"


class Clock:
    """The bookings service's clock, moved by the test (it starts at helpers.NOW)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def node(nats_server, database, tmp_path, clock: Clock) -> AsyncIterator[Node]:
    svc = BookingsService(settings(nats_server.url, database, tmp_path), clock=clock)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc)
    finally:
        await nc.close()
        await svc.stop()
ROOM_WITH_TERMINAL = {**ROOM, "rules": {**ROOM["rules"], "no_show_minutes": 30, "terminal_ids": ["room-6f"]}}


async def state_of(node: Node, booking_id: str) -> tuple[str, datetime | None]:
    async with node.svc.sessions() as s:
        row = (await s.execute(select(bookings.c.state, bookings.c.checked_in_at)
                               .where(bookings.c.id == booking_id))).one()
    return row.state, row.checked_in_at


async def until_state(node: Node, booking_id: str, want: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (await state_of(node, booking_id))[0] != want:
        assert time.monotonic() < deadline, f"booking {booking_id} never became {want}"
        await asyncio.sleep(0.05)


async def test_a_card_touch_at_the_facilitys_terminal_checks_the_booking_in(
        node: Node, clock: Clock, nats_server, tmp_path: Path) -> None:
    await node.put(ROOM_WITH_TERMINAL)
    mine = await node.book(HANAKO, "city-hall-6f", "2026-10-27", "11:00", "12:00")
    other = await node.book(TARO, "city-hall-6f", "2026-10-27", "14:00", "15:00")
    (tmp_path / "points").mkdir()
    async with points_running(nats_server.url, tmp_path / "points") as points:
        async with points.sessions() as s, s.begin():  # Hanako's card, bound; an event on the room's terminal
            await link_actor(s, HANAKO)
            await taps.bind_card(s, card=taps.card_account_id(bytes.fromhex(CARD_KEY), CARD),
                                 person=taps.person_account_id(HANAKO.user_id), method="code", node=NODE,
                                 now=utcnow(), key="bind:test")
            await taps.put_event(session=s, event_in=EventIn(code="room-visit", name="来館", participant_points=0),
                                 node=NODE)
        js = node.nc.jetstream()

        async def touch(at: datetime, terminal: str = "room-6f") -> None:
            t = Tap(tap_id=uuid.uuid4().hex, terminal_id=terminal, card_idm=CARD, event="room-visit", tapped_at=at)
            await js.publish(subjects.edge(NODE, terminal, "tap"), t.model_dump_json().encode(),
                             headers={subjects.HDR_MSG_ID: t.key})

        # A touch at another terminal (of no facility) checks nothing in; at the room's, 10 minutes early, it does:
        # the points service names Hanako (never the card) and bookings checks in her booking of that room then.
        await touch(datetime(2026, 10, 27, 10, 40, tzinfo=JST), terminal="lobby")
        at = datetime(2026, 10, 27, 10, 50, tzinfo=JST)
        await touch(at)
        await until_state(node, mine["id"], "checked_in")
        state, when = await state_of(node, mine["id"])
        assert when is not None and aware(when) == at  # the touch's time, by the terminal's clock
        assert (await state_of(node, other["id"]))[0] == "confirmed"  # Taro's booking: not his touch
        # A second touch (answered "already" by points: CheckinRepeated) changes nothing: one BookingCheckedIn.
        await touch(at + timedelta(minutes=5))
        deadline = time.monotonic() + 30
        while True:  # the second touch's event has reached bookings once its inbox row is there
            checked = [e for s, e in await node.events() if s.endswith(".booking_checked_in")]
            async with node.svc.sessions() as s:
                from services.bookings.models import bus
                seen = len((await s.execute(select(bus.inbox.c.message_id)
                                            .where(bus.inbox.c.consumer == "bookings-touches"))).all())
            if seen >= 3:
                break
            assert time.monotonic() < deadline, "the second touch never reached bookings"
            await asyncio.sleep(0.05)
        assert [(e["data"]["booking_id"], e["data"]["by"], e["data"]["terminal_id"]) for e in checked] == [
            (mine["id"], "card", "room-6f")]
        assert "0C0C0C0C" not in str(checked)

    # At the counter: staff check in Taro (from 15 minutes before his start), and nobody else may.
    clock.now = datetime(2026, 10, 27, 13, 50, tzinfo=JST)
    await node.refused(k.CHECKIN_STAFF_ONLY, k.EP_BOOKING_CHECKIN, {"actor": a(TARO), "booking_id": other["id"]})
    done = await node.call(k.EP_BOOKING_CHECKIN, {"actor": a(CLERK), "booking_id": other["id"]})
    assert done["state"] == "checked_in" and done["checked_in_at"] is not None


async def test_the_counter_checks_in_only_a_confirmed_booking_in_its_window(node: Node, clock: Clock) -> None:
    await node.put(ROOM_WITH_TERMINAL)
    b = await node.book(HANAKO, "city-hall-6f", "2026-10-28", "10:00", "11:00")
    before = await node.snapshot()
    await node.refused(k.CHECKIN_NOT_NOW, k.EP_BOOKING_CHECKIN, {"actor": a(CLERK), "booking_id": b["id"]})
    assert await node.snapshot() == before
    cancelled = await node.book(HANAKO, "city-hall-6f", "2026-10-28", "13:00", "14:00")
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": cancelled["id"]})
    clock.now = datetime(2026, 10, 28, 12, 50, tzinfo=JST)
    await node.refused(k.CHECKIN_NOT_CONFIRMED, k.EP_BOOKING_CHECKIN,
                       {"actor": a(CLERK), "booking_id": cancelled["id"]})


async def test_a_no_show_is_released_once_and_its_slot_is_free_again(node: Node, clock: Clock) -> None:
    await node.put(ROOM_WITH_TERMINAL)
    late = await node.book(HANAKO, "city-hall-6f", "2026-10-27", "11:00", "13:00")
    came = await node.book(TARO, "city-hall-6f", "2026-10-27", "14:00", "15:00")
    # Taro checks in at 14:00 at the counter; Hanako never comes.
    clock.now = datetime(2026, 10, 27, 14, 0, tzinfo=JST)
    await node.call(k.EP_BOOKING_CHECKIN, {"actor": a(CLERK), "booking_id": came["id"]})

    async def run(at: datetime) -> list[str]:
        async with node.svc.sessions() as s, s.begin():
            return await checkin.release_no_shows(s, node=NODE, now=at)

    assert await run(datetime(2026, 10, 27, 11, 29, tzinfo=JST)) == []  # 29 minutes late: not yet
    assert await run(datetime(2026, 10, 27, 11, 30, tzinfo=JST)) == [late["id"]]
    assert await run(datetime(2026, 10, 27, 11, 31, tzinfo=JST)) == []  # twice = once
    assert (await state_of(node, late["id"]))[0] == "no_show"
    assert (await state_of(node, came["id"]))[0] == "checked_in"
    released = [e["data"] for s, e in await node.events() if s.endswith(".booking_no_show")]
    assert [r["booking_id"] for r in released] == [late["id"]]
    # The rest of the slot is free again: someone books 12:00-13:00 of it.
    clock.now = datetime(2026, 10, 27, 11, 35, tzinfo=JST)
    again = await node.book(TARO, "city-hall-6f", "2026-10-27", "12:00", "13:00")
    assert again["state"] == "confirmed"
