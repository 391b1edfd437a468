"""Check-in of bookings (issue 17, point 4): the booker touches a card at the facility's terminal (the points service
names the person in TapRecorded / CheckinRepeated; services/bookings/touches.py consumes them through the inbox), or
staff check them in at the counter; a confirmed booking not checked in `rules.no_show_minutes` after its start is
released as a no-show (a periodic job). No NATS and no commits here.

`no_show` is not a state that holds the slot (contracts.bookings HOLDING_STATES), so a released booking frees the
rest of its time for anyone at once: the exclusion constraint and the SQLite guard look at holding states only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings.bookings import is_staff, view
from services.bookings.models import bookings, bus, facilities
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_checkin as k
from towntip.kernel.db import aware


@dataclass(frozen=True)
class Touch:
    """A bound card touched a terminal: who (never the card), where, when (the terminal's clock)."""

    terminal_id: str
    user_id: str | None
    person: str | None  # global handle
    tapped_at: datetime


async def _mark(session: AsyncSession, row: Any, *, node: str, at: datetime, by: Literal["card", "counter"],
                terminal_id: str | None = None) -> None:
    await session.execute(update(bookings).where(bookings.c.id == row.id, bookings.c.state == "confirmed")
                          .values(state="checked_in", checked_in_at=at.astimezone(UTC)))
    await announce(session, bus, k.BookingCheckedIn(booking_id=row.id, facility_id=row.facility_id,
                                                    booker=row.booker, by=by, terminal_id=terminal_id, at=at),
                   node=node, at=at)


async def counter(session: AsyncSession, *, node: str, data: c.BookingAction, now: datetime) -> c.Booking:
    """Staff check a confirmed booking in at the counter, from 15 minutes before its start until its end."""
    if not is_staff(data.actor):
        raise k.CHECKIN_STAFF_ONLY("only staff check a booking in at the counter")
    row = (await session.execute(select(bookings).where(bookings.c.id == data.booking_id).with_for_update())).first()
    if row is None:
        raise c.BOOKING_NOT_FOUND(f"no booking {data.booking_id!r}")
    if row.state == "checked_in":
        return view(row)  # checked in already (by a card, or twice at the counter): nothing more to do
    if row.state != "confirmed":
        raise k.CHECKIN_NOT_CONFIRMED(f"the booking is {row.state}")
    if not aware(row.starts_at) - k.EARLY <= now < aware(row.ends_at):
        raise k.CHECKIN_NOT_NOW("a booking is checked in from 15 minutes before its start until its end")
    await _mark(session, row, node=node, at=now, by="counter")
    return view((await session.execute(select(bookings).where(bookings.c.id == row.id))).one())


async def terminals_of(session: AsyncSession) -> dict[str, str]:
    """{terminal id: facility id} from the active facilities' rules (a few rows: read whole)."""
    rows = await session.execute(select(facilities.c.id, facilities.c.spec).where(facilities.c.active.is_(True)))
    out: dict[str, str] = {}
    for r in rows:
        for t in (r.spec.get("rules") or {}).get("terminal_ids") or []:
            out.setdefault(t, r.id)
    return out


async def apply_touches(session: AsyncSession, touches: Sequence[Touch], *, node: str) -> list[str]:
    """Check in, for each touch at a facility's terminal, the toucher's confirmed booking of that facility whose
    window (15 minutes before its start until its end) holds the touch's time. Returns the bookings checked in.
    A touch at a terminal of no facility, by someone with no such booking, or a second touch, changes nothing."""
    where = await terminals_of(session) if touches else {}
    done: list[str] = []
    for t in touches:
        facility = where.get(t.terminal_id)
        if facility is None or (t.user_id is None and t.person is None):
            continue
        who = [bookings.c.booker_user_id == t.user_id] if t.user_id else []
        who += [bookings.c.booker == t.person] if t.person else []
        rows = (await session.execute(select(bookings).where(
            bookings.c.facility_id == facility, bookings.c.state == "confirmed", or_(*who),
            bookings.c.starts_at <= (t.tapped_at + k.EARLY).astimezone(UTC),
            bookings.c.ends_at > t.tapped_at.astimezone(UTC),
        ).order_by(bookings.c.starts_at).with_for_update())).all()
        if rows:
            await _mark(session, rows[0], node=node, at=t.tapped_at, by="card", terminal_id=t.terminal_id)
            done.append(rows[0].id)
    return done


async def release_no_shows(session: AsyncSession, *, node: str, now: datetime) -> list[str]:
    """Release the confirmed bookings not checked in `rules.no_show_minutes` after their start (facilities with the
    rule only): state no_show (not holding: the rest of the slot is free), BookingNoShow announced. Run twice, it
    releases nothing more (the second run finds no confirmed booking that late)."""
    rules = await session.execute(select(facilities.c.id, facilities.c.spec))
    released: list[str] = []
    for f in rules:
        minutes = (f.spec.get("rules") or {}).get("no_show_minutes")
        if not minutes:
            continue
        late = (now - timedelta(minutes=minutes)).astimezone(UTC)
        rows = (await session.execute(select(bookings).where(
            bookings.c.facility_id == f.id, bookings.c.state == "confirmed", bookings.c.starts_at <= late,
            bookings.c.checked_in_at.is_(None)).order_by(bookings.c.starts_at).with_for_update())).all()
        for row in rows:
            await session.execute(update(bookings).where(bookings.c.id == row.id, bookings.c.state == "confirmed")
                                  .values(state="no_show"))
            await announce(session, bus, k.BookingNoShow(booking_id=row.id, facility_id=row.facility_id,
                                                         booker=row.booker, start=aware(row.starts_at), at=now),
                           node=node, at=now)
            released.append(row.id)
    return released
