"""Never a double booking (issue 17, point 6): many attempts at once on one slot, through two instances of the
service sharing one database, on SQLite and PostgreSQL: exactly one wins, every other is refused with
`booking.slot_taken`, and the database holds one booking. On PostgreSQL the exclusion constraint itself refuses an
overlapping row written past the service's check."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from services.bookings.app import BookingsService
from services.bookings.models import bookings
from tests.bookings.conftest import settings
from tests.bookings.helpers import CLERK, HALL, NODE, NOW, ROOM, Node
from towntip.kernel import errors
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts.actor import Actor

ATTEMPTS = 30


def person(i: int) -> Actor:
    return Actor(user_id=f"user-racer-{i:03d}", global_handle=f"racer{i:03d}@{NODE}", display_name=f"Racer {i}")


async def race(node: Node, requests: list[dict[str, object]]) -> Counter[str]:
    async def one(req: dict[str, object]) -> str:
        try:
            await node.call(c.EP_BOOKING_CREATE, req)
        except errors.ServiceError as exc:
            return exc.error_code
        return "won"

    return Counter(await asyncio.gather(*(one(r) for r in requests)))


async def holding(node: Node, facility: str) -> list[tuple[datetime, datetime]]:
    async with node.svc.sessions() as s:
        rows = (await s.execute(select(bookings.c.starts_at, bookings.c.held_until).where(
            bookings.c.facility_id == facility, bookings.c.state.in_(c.HOLDING_STATES))
            .order_by(bookings.c.starts_at))).all()
    return [(r.starts_at, r.held_until) for r in rows]


async def test_thirty_attempts_on_one_slot_one_winner(node: Node, nats_server, database, tmp_path: Path) -> None:
    # A second instance of the service on the same database: the attempts are shared out between the two.
    second = BookingsService(settings(nats_server.url, database, tmp_path / "second"), clock=lambda: NOW)
    await second.start()
    try:
        await node.put(HALL)
        outcome = await race(node, [node.booking(person(i), "ohashi-hall", "2026-10-29", "13:00", "17:00")
                                    for i in range(ATTEMPTS)])
        assert outcome == {"won": 1, c.BOOKING_TAKEN.code: ATTEMPTS - 1}, outcome
        assert len(await holding(node, "ohashi-hall")) == 1
        confirmed = [e for s, e in await node.events() if s.endswith(".booking_confirmed")]
        assert len(confirmed) == 1
    finally:
        await second.stop()


async def test_overlapping_ranges_on_a_grid_never_both_hold(node: Node) -> None:
    """Thirty people ask for different but overlapping ranges of one morning (and the buffer after each counts):
    whatever wins, no two held ranges overlap."""
    await node.put(ROOM)
    times = [("09:00", "10:00"), ("09:30", "10:30"), ("10:00", "11:00"), ("10:30", "12:00"), ("09:00", "09:30"),
             ("11:30", "12:00")]
    requests = [node.booking(person(i), "city-hall-6f", "2026-10-28", *times[i % len(times)])
                for i in range(ATTEMPTS)]
    outcome = await race(node, requests)
    assert set(outcome) <= {"won", c.BOOKING_TAKEN.code} and outcome["won"] >= 2, outcome
    held = await holding(node, "city-hall-6f")
    assert len(held) == outcome["won"]
    for (_, until), (start, _) in zip(held, held[1:], strict=False):
        assert until <= start, f"two held ranges overlap: {held}"


async def test_the_exclusion_constraint_refuses_an_overlap_past_the_check(node: Node, database) -> None:
    """PostgreSQL only: a row written straight into the table, past the service's check, is refused by
    ex_bookings_no_overlap while the first holds the slot, and taken once the first is cancelled."""
    if not database[0].startswith("postgresql"):
        pytest.skip("the exclusion constraint is PostgreSQL's; SQLite's guard is the writing transaction's lock")
    await node.put(HALL)
    first = await node.call(c.EP_BOOKING_CREATE, node.booking(CLERK, "ohashi-hall", "2026-10-29", "09:00", "12:00"))
    start = datetime(2026, 10, 29, 2, 0, tzinfo=UTC)  # 11:00 JST: inside the first
    row = {"facility_id": "ohashi-hall", "starts_at": start, "ends_at": start + timedelta(hours=2),
           "held_until": start + timedelta(hours=2), "state": "requested", "purpose": "x", "user_class": "outside",
           "fee": 0, "booker_name": "x", "month": "2026-10", "created_at": NOW}
    with pytest.raises(IntegrityError, match="ex_bookings_no_overlap"):
        async with node.svc.sessions() as s, s.begin():
            await s.execute(insert(bookings).values(id=str(uuid.uuid4()), **row))
    # A cancelled row holds nothing: it may overlap, and once the first is cancelled so may a held one.
    async with node.svc.sessions() as s, s.begin():
        await s.execute(insert(bookings).values(id=str(uuid.uuid4()), **{**row, "state": "cancelled"}))
    await node.call(c.EP_BOOKING_CANCEL, {"actor": CLERK.model_dump(mode="json"), "booking_id": first["id"]})
    async with node.svc.sessions() as s, s.begin():
        await s.execute(insert(bookings).values(id=str(uuid.uuid4()), **row))
        assert (await s.execute(select(func.count()).select_from(bookings))).scalar_one() == 3


def test_the_constraint_lists_the_holding_states_of_the_contracts() -> None:
    """The newest migration that (re)defines the exclusion constraint lists exactly the contracts' holding states."""
    import importlib.util

    versions = sorted((Path(__file__).parents[2] / "services/bookings/migrations/versions").glob("0*.py"))
    defining = [p for p in versions if "\nHOLDING = " in p.read_text(encoding="utf-8")]
    assert defining, "no migration defines the exclusion constraint's HOLDING states"
    spec = importlib.util.spec_from_file_location("bookings_newest_holding", defining[-1])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.HOLDING == "(" + ", ".join(f"'{s}'" for s in c.HOLDING_STATES) + ")"
    assert module.STATES == "(" + ", ".join(f"'{s}'" for s in c.STATES) + ")"
