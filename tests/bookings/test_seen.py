"""The kept reads that refuse an attempt at a held slot without the database (services/bookings/seen.py): a slot
freed by this process is bookable at once, one freed by another instance after at most FRESH_S, and nothing kept
ever books a slot that is held."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import seen
from services.bookings.models import bookings
from tests.bookings.helpers import HALL, HANAKO, TARO, Node
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c

DAY = "2026-11-10"


def read(session: AsyncSession) -> seen.Reader:
    return lambda query: query(session)  # a Tuesday: the hall opens


async def test_a_slot_freed_here_is_bookable_at_once(node: Node) -> None:
    await node.put(HALL)
    first = await node.book(HANAKO, "ohashi-hall", DAY, "09:00", "12:00")
    await node.refused(c.BOOKING_TAKEN, c.EP_BOOKING_CREATE, node.booking(TARO, "ohashi-hall", DAY, "09:00", "12:00"))
    await node.call(c.EP_BOOKING_CANCEL, {"actor": HANAKO.model_dump(mode="json"), "booking_id": first["id"]})
    again = await node.book(TARO, "ohashi-hall", DAY, "09:00", "12:00")
    assert again["state"] == "confirmed" and again["booker"] == TARO.global_handle


async def test_what_another_instance_freed_is_seen_within_fresh_s(node: Node) -> None:
    await node.put(HALL)
    booked = await node.book(HANAKO, "ohashi-hall", DAY, "13:00", "17:00")
    now = [100.0]
    kept = seen.Seen(clock=lambda: now[0])
    start = datetime.fromisoformat(f"{DAY}T13:00:00").replace(tzinfo=JST)
    until = datetime.fromisoformat(f"{DAY}T17:00:00").replace(tzinfo=JST)
    async with node.svc.sessions() as s:
        assert await kept.held(read(s), "ohashi-hall", start, until)
        assert (await kept.facility(read(s), "ohashi-hall")) is not None
    # Another instance cancels: `kept` is registered with no engine (as the other instance's commit is not counted
    # here), so only its clock tells.
    async with node.svc.sessions() as s, s.begin():
        await s.execute(update(bookings).where(bookings.c.id == booked["id"]).values(state="cancelled"))
    async with node.svc.sessions() as s:
        assert await kept.held(read(s), "ohashi-hall", start, until), "kept for FRESH_S: a refusal at most that old"
        now[0] += seen.FRESH_S
        assert not await kept.held(read(s), "ohashi-hall", start, until), "read again once FRESH_S has passed"


async def test_a_commit_of_this_process_makes_what_is_kept_stale(node: Node) -> None:
    await node.put(HALL)
    kept = seen.of(node.svc.engine)
    start = datetime.fromisoformat(f"{DAY}T18:00:00").replace(tzinfo=JST)
    until = datetime.fromisoformat(f"{DAY}T21:30:00").replace(tzinfo=JST)
    async with node.svc.sessions() as s:
        assert not await kept.held(read(s), "ohashi-hall", start, until)
    before = kept.commits
    await node.book(HANAKO, "ohashi-hall", DAY, "18:00", "21:30")
    assert kept.commits > before
    async with node.svc.sessions() as s:
        assert await kept.held(read(s), "ohashi-hall", start, until), "the booking committed here is seen at once"
