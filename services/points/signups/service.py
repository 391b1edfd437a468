"""Sign-up for an event with a date: a seat while there are seats, else a place on the waitlist (in order of
sign-up); a person cancels until the start, and the first waiting moves up (EventSeatGiven tells them). No NATS, no
commits here.

Seats are counted under the event's row lock (PostgreSQL: FOR UPDATE; SQLite: the one writer), so two sign-ups for
the last seat cannot both get it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.people.service import link_actor
from services.points.tables import bus
from services.points.taps.models import event_signups, events
from towntip.kernel import db
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import event_signups as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.db import aware

HOLDING = ("signed_up", "waitlisted")


async def _event(session: AsyncSession, code: str) -> Any:
    """The event's row, locked: every change of its seats takes it first."""
    row = (await session.execute(select(events).where(events.c.code == code).with_for_update())).first()
    if row is None:
        raise pc.EVENT_NOT_FOUND(f"unknown event {code!r}")
    return row


def _open(ev: Any, now: datetime) -> None:
    if ev.starts_at is None:
        raise c.SIGNUP_CLOSED(f"event {ev.code!r} has no date: it takes no sign-up")
    if now >= aware(ev.starts_at):
        raise c.SIGNUP_CLOSED(f"event {ev.code!r} has started: sign-up and cancellation are closed")


async def _signed_up(session: AsyncSession, code: str) -> int:
    s = event_signups
    return int((await session.execute(select(func.count()).where(
        s.c.event_code == code, s.c.state == "signed_up"))).scalar_one())


async def signup(session: AsyncSession, *, data: c.SignupIn, node: str, now: datetime) -> c.Signup:
    """A seat, or the waitlist's end when the event is full."""
    ev = await _event(session, data.code)
    _open(ev, now)
    await link_actor(session, data.actor)
    s = event_signups
    mine = (s.c.event_code == data.code) & (s.c.person == data.actor.global_handle)
    row = (await session.execute(select(s.c.state).where(mine))).first()
    if row is not None and row.state in HOLDING:
        raise c.SIGNUP_ALREADY(f"{data.actor.global_handle} is {row.state} for {data.code!r} already")
    full = ev.capacity is not None and await _signed_up(session, data.code) >= ev.capacity
    state = "waitlisted" if full else "signed_up"
    values = {"user_id": data.actor.user_id, "display_name": data.actor.display_name, "state": state,
              "queued_at": now, "changed_at": now}
    if row is None:
        await session.execute(s.insert().values(event_code=data.code, person=data.actor.global_handle, **values))
    else:  # signed up again after cancelling: at the end of the line
        await session.execute(update(s).where(mine).values(**values))
    await announce(session, bus, c.EventSignedUp(code=data.code, person=data.actor.global_handle, state=state),
                   node=node, at=now)
    return await _one(session, data.code, data.actor.global_handle)


async def cancel(session: AsyncSession, *, data: c.SignupIn, node: str, now: datetime) -> c.Signup:
    """The person lets their seat (or place) go, until the start; a freed seat goes to the first waiting."""
    ev = await _event(session, data.code)
    _open(ev, now)
    s = event_signups
    mine = (s.c.event_code == data.code) & (s.c.person == data.actor.global_handle)
    row = (await session.execute(select(s.c.state).where(mine))).first()
    if row is None or row.state not in HOLDING:
        raise c.SIGNUP_NOT_FOUND(f"{data.actor.global_handle} is not signed up for {data.code!r}")
    await session.execute(update(s).where(mine).values(state="cancelled", changed_at=now))
    await announce(session, bus, c.EventSignupCancelled(code=data.code, person=data.actor.global_handle),
                   node=node, at=now)
    if row.state == "signed_up":
        await fill_seats(session, code=data.code, node=node, now=now)
    return await _one(session, data.code, data.actor.global_handle)


async def fill_seats(session: AsyncSession, *, code: str, node: str, now: datetime) -> list[str]:
    """Give the free seats to the first waiting, in order of sign-up; each is told (EventSeatGiven). Returns who
    moved up. Runs under the event's lock (the caller's, or taken here)."""
    ev = await _event(session, code)
    if ev.capacity is None:
        free = None
    else:
        free = ev.capacity - await _signed_up(session, code)
        if free <= 0:
            return []
    s = event_signups
    stmt = select(s.c.person).where(s.c.event_code == code, s.c.state == "waitlisted") \
        .order_by(s.c.queued_at, s.c.person)
    if free is not None:
        stmt = stmt.limit(free)
    moved = list((await session.execute(stmt)).scalars())
    if not moved:
        return []
    await session.execute(update(s).where(s.c.event_code == code, db.among(session, s.c.person, moved))
                          .values(state="signed_up", changed_at=now))
    for person in moved:
        await announce(session, bus, c.EventSeatGiven(code=code, person=person, event_name=ev.name,
                                                      starts_at=aware(ev.starts_at)), node=node, at=now)
    return moved


def _query() -> Any:
    s = event_signups
    return select(s, events.c.name.label("event_name"), events.c.starts_at).join(
        events, events.c.code == s.c.event_code)


def _views(rows: Sequence[Any]) -> list[c.Signup]:
    """Each sign-up, the waiting with their place in the line (per event)."""
    place: dict[str, list[Any]] = {}
    for r in sorted((r for r in rows if r.state == "waitlisted"), key=lambda r: (aware(r.queued_at), r.person)):
        place.setdefault(r.event_code, []).append(r.person)
    return [c.Signup(
        code=r.event_code, person=r.person, display_name=r.display_name, state=r.state,
        position=place[r.event_code].index(r.person) + 1 if r.state == "waitlisted" else None,
        signed_up_at=aware(r.queued_at), event_name=r.event_name, starts_at=aware(r.starts_at),
    ) for r in rows]


async def _one(session: AsyncSession, code: str, person: str) -> c.Signup:
    s = event_signups
    rows = (await session.execute(_query().where(s.c.event_code == code, s.c.state.in_(HOLDING)))).all()
    mine = [v for v in _views(rows) if v.person == person]
    if mine:
        return mine[0]
    row = (await session.execute(_query().where(s.c.event_code == code, s.c.person == person))).one()
    return _views([row])[0]


async def list_for_event(session: AsyncSession, *, q: c.SignupsQuery) -> c.SignupList:
    """Who holds a seat, then who waits (in order), for staff."""
    s = event_signups
    rows = (await session.execute(_query().where(s.c.event_code == q.code, s.c.state.in_(HOLDING))
                                  .order_by(s.c.state, s.c.queued_at, s.c.person))).all()
    return c.SignupList(signups=_views(rows))


async def mine(session: AsyncSession, *, q: c.MineQuery) -> c.SignupList:
    """The person's sign-ups that hold (a seat or a place), soonest event first."""
    s = event_signups
    mine_rows = (await session.execute(_query().where(s.c.user_id == q.actor.user_id, s.c.state.in_(HOLDING))
                                       .order_by(events.c.starts_at, s.c.event_code))).all()
    codes = sorted({r.event_code for r in mine_rows})
    if not codes:
        return c.SignupList(signups=[])
    lines = (await session.execute(_query().where(db.among(session, s.c.event_code, codes),
                                                  s.c.state == "waitlisted"))).all()
    views = {(v.code, v.person): v for v in _views(list(lines))}
    out = [views.get((r.event_code, r.person)) or _views([r])[0] for r in mine_rows]
    return c.SignupList(signups=out)
