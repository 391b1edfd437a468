"""The points service's one transaction wrapper: every endpoint reads or writes through `Tx` (the tap consumer's
transactions are the kernel's IdempotentConsumer's). Until the kernel's unit of work takes its place.

A write runs in one transaction, one write at a time in this process (the ledger's batches never wait on each
other's row locks), again if a concurrent caller took one of its idempotency keys first (the second run sees that
entry and answers duplicate or conflict) or if PostgreSQL chose it as a deadlock or serialisation victim against
another process (a tap batch, another instance): nothing of a failed run was written. After the commit it wakes the
outbox relay (`on_commit`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from towntip.kernel import errors

T = TypeVar("T")
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure: PostgreSQL asks for a retry
_writer = asyncio.Lock()  # one write at a time per process (all instances of Tx share it)


def sqlstate(exc: DBAPIError) -> str | None:
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code:
            return str(code)
    return None


class Tx:
    """Transactions over `sessions` for the endpoints of one service instance."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], on_commit: Callable[[], None] = lambda: None,
                 *, attempts: int = 4) -> None:
        self.sessions = sessions
        self.on_commit = on_commit
        self.attempts = attempts

    async def read(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`fn` with a session and no transaction of its own to commit (it reads)."""
        async with self.sessions() as s:
            return await fn(s)

    async def write(self, fn: Callable[[AsyncSession], Awaitable[T]], *, clash: str | None = None) -> T:
        """`fn` in one transaction, committed, retried as the module says. An integrity error that a retry did not
        resolve is raised as it is, or, with `clash`, as a Conflict with that reason."""
        for attempt in range(self.attempts):
            try:
                async with _writer, self.sessions() as s, s.begin():
                    out = await fn(s)
                break
            except IntegrityError:
                if attempt:
                    if clash is not None:
                        raise errors.Conflict(clash) from None
                    raise
            except DBAPIError as exc:
                if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == self.attempts - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        else:
            raise AssertionError("unreachable")
        self.on_commit()
        return out

