"""What one bookings process saw of a facility and of a day's held ranges a moment ago, to refuse an attempt at a
slot already held without a database round trip.

Under a race for a popular slot (the opening morning of a 公民館's month) almost every attempt asks for a slot that
is already held. Each used to read the facility and the slot's held ranges from the database before it was refused.
Here a facility and the held ranges of one day are read once, kept for at most `FRESH_S` seconds, and dropped the
moment this process commits any write to its database (a cancellation, a rejection, a lapse, a released no-show may
have freed something; whichever endpoint, consumer or job wrote it, the session's after-commit event counts it).

Only a refusal is answered from what is kept: a range it holds was held in the database at most `FRESH_S` ago, the
same staleness as an availability page a person looked at a second before. A slot seen free is never booked from
here: `bookings.create` checks again under its lock in the writing transaction, so nothing kept can make a double
booking. Another instance's cancellation is seen after at most `FRESH_S`."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from services.bookings import facilities
from services.bookings.models import bookings
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.db import aware

# Runs a query in a session it opens: only when nothing fresh is kept does an attempt take a connection.
Reader = Callable[[Callable[[AsyncSession], Awaitable[Any]]], Awaitable[Any]]

FRESH_S = 0.5  # how old what is kept may be
MAX_DAYS = 64  # days kept at most (a race is about a few days; more would be a scan of the month)


@dataclass
class Kept:
    """What was read, when (monotonic), and at which count of this process's commits."""

    value: Any
    at: float
    commits: int


@dataclass
class Seen:
    """One process's recent reads of one database (one per engine: a test's two services keep apart)."""

    clock: Callable[[], float] = time.monotonic
    commits: int = 0  # transactions committed on the engine so far
    facilities: dict[str, Kept] = field(default_factory=dict)
    days: dict[tuple[str, date], Kept] = field(default_factory=dict)
    # Reads under way: the 32 attempts that find what was kept stale after a commit wait for one read, not 32.
    reading: dict[Any, asyncio.Future[Kept]] = field(default_factory=dict)
    # One writer at a time per facility and day in this process: the attempts that raced a winner wait here, without
    # a connection, then see its booking in one shared read and are refused without a write transaction of their own.
    writers: weakref.WeakValueDictionary[tuple[str, date], asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary)

    def writer(self, fid: str, day: date) -> asyncio.Lock:
        lock = self.writers.get((fid, day))
        if lock is None:
            lock = self.writers[(fid, day)] = asyncio.Lock()
        return lock

    async def once(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Kept:
        """A fresh read of `key`: the one under way if there is one, else a new one."""
        at, commits = self.clock(), self.commits  # before the read: a commit during it makes it stale
        key = (key, commits)  # a read that started before a commit this attempt has seen is not joined
        pending = self.reading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Kept] = asyncio.get_running_loop().create_future()
        self.reading[key] = future
        try:
            kept = Kept(await load(), at, commits)
            future.set_result(kept)
            return kept
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self.reading[key]

    def fresh(self, kept: Kept | None) -> bool:
        return kept is not None and kept.commits == self.commits and self.clock() - kept.at < FRESH_S

    async def facility(self, read: Reader, fid: str) -> c.Facility | None:
        """The active facility, or None when there is none (left to `create` to refuse)."""
        kept = self.facilities.get(fid)
        if not self.fresh(kept):
            t = facilities.facilities.c
            stmt = select(facilities.facilities).where(t.id == fid, t.active.is_(True))

            async def load() -> c.Facility | None:
                row = await read(lambda session: _first(session, stmt))
                return None if row is None else facilities.view(row)
            kept = self.facilities[fid] = await self.once(("facility", fid), load)
        assert kept is not None
        return kept.value

    async def held(self, read: Reader, fid: str, start: datetime, until: datetime) -> bool:
        """True when a booking holds any of [start, until) of the facility."""
        day = start.astimezone(JST).date()
        first = datetime.combine(day, datetime.min.time(), tzinfo=JST)
        last = first + timedelta(days=2)  # ranges of the day and the next: an ask with its buffer past midnight
        if until > last:
            return await read(lambda session: self.read_held(session, fid, start, until)) != []
        kept = self.days.get((fid, day))
        if not self.fresh(kept):
            if len(self.days) >= MAX_DAYS:
                self.days.clear()
            kept = self.days[(fid, day)] = await self.once(
                ("day", fid, day), lambda: read(lambda session: self.read_held(session, fid, first, last)))
        return any(s < until and start < u for s, u in kept.value)  # type: ignore[union-attr]

    @staticmethod
    async def read_held(session: AsyncSession, fid: str, start: datetime, until: datetime
                        ) -> list[tuple[datetime, datetime]]:
        b = bookings.c
        rows = (await session.execute(
            select(b.starts_at, b.held_until)
            .where(b.facility_id == fid, b.state.in_(c.HOLDING_STATES),
                   b.starts_at < until.astimezone(UTC), b.held_until > start.astimezone(UTC)))).all()
        return [(aware(r.starts_at), aware(r.held_until)) for r in rows]


async def _first(session: AsyncSession, stmt: Any) -> Any:
    return (await session.execute(stmt)).first()


_SEEN: weakref.WeakKeyDictionary[Any, Seen] = weakref.WeakKeyDictionary()


def _committed(session: Session) -> None:
    # After the commit, not before it: a read that starts once the count has moved sees what was committed.
    seen = _SEEN.get(session.bind)
    if seen is not None:
        seen.commits += 1


def of(engine: AsyncEngine) -> Seen:
    """The reads kept of this engine's database, counting its sessions' commits from the first call on."""
    seen = _SEEN.get(engine.sync_engine)
    if seen is None:
        if not event.contains(Session, "after_commit", _committed):
            event.listen(Session, "after_commit", _committed)
        seen = _SEEN[engine.sync_engine] = Seen()
    return seen
