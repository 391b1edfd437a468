"""The unit of work every service uses: one transaction holding the change, the inbox record and the outbox events;
a serialisation failure retried; the outbox relay (and whatever else waits on commits) woken after the commit.

    uow = UnitOfWork(sessions, on_commit=relay.wake, clock=clock)
    theme = await uow.write(lambda session, now: themes.publish(session=session, data=q, now=now, node=node))
    page = await uow.read(lambda session: themes.list_(session=session, q=q))

Service functions never commit: they get the session of the caller's transaction and stage their rows, their
events (`towntip.kernel.bus.outbox.announce`) and, in a consumer, the inbox record, so that all of it commits
together or none of it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.errors import Refusal

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL asks the client to run the transaction again: serialization failure, deadlock detected. Nothing of the
# failed run was written, so running it again cannot apply anything twice.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of a database error, from asyncpg (`sqlstate`) or psycopg (`pgcode`); None on SQLite."""
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code:
            return str(code)
    return None


def _nothing() -> None:
    return None


class UnitOfWork:
    """Runs changes of one service, each in its own transaction.

    `attempts`: how often a change runs at most when PostgreSQL reports a serialisation failure or a deadlock.
    `lock`: changes of this process that must not run at once (the points service's ledger writer) take it.
    `retry_integrity`: a unique-key conflict runs the change once more (a concurrent caller took one of its
    idempotency keys first: the second run sees that row and answers duplicate or conflict).
    A write's `clash`: a unique-key conflict that the run again did not resolve is answered as this refusal (409
    "changed by someone else at the same moment") rather than raised as the database's error.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, on_commit: Callable[[], None] = _nothing,
        clock: Callable[[], datetime] = utcnow, attempts: int = 4, lock: asyncio.Lock | None = None,
        retry_integrity: bool = False,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.sessions = sessions
        self.on_commit = on_commit
        self.clock = clock
        self.attempts = attempts
        self.lock = lock
        self.retry_integrity = retry_integrity
        self.retries = 0  # how many runs were repeated (for tests and logs)

    async def write(self, change: Callable[[AsyncSession, datetime], Awaitable[T]], *,
                    clash: Refusal | None = None) -> T:
        """Run `change(session, now)` in a transaction and commit; wake `on_commit` after the commit only."""
        for attempt in range(self.attempts):
            try:
                async with self.lock or contextlib.nullcontext(), self.sessions() as session, session.begin():
                    out = await change(session, self.clock())
                break
            except IntegrityError:
                if not self.retry_integrity or attempt or self.attempts == 1:
                    if clash is not None:
                        raise clash(clash.doc or "changed by someone else at the same moment: try again") from None
                    raise
                self.retries += 1
            except DBAPIError as exc:
                if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == self.attempts - 1:
                    raise
                self.retries += 1
                log.info("transaction runs again after SQLSTATE %s (attempt %d)", sqlstate(exc), attempt + 1)
                await asyncio.sleep(0.01 * (attempt + 1))
        self.on_commit()
        return out

    async def read(self, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `query(session)` in a session of its own that changes nothing."""
        async with self.sessions() as session:
            return await query(session)
