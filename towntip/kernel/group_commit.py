"""Group commit: requests that arrive while one batch is being written wait and are written together by the next.

For a database with one writer (SQLite: one connection per process, see db.create_engine): served one at a time,
every request holds the connection for its whole transaction — its statements, each a hop to the driver's thread
and back through a busy event loop, and the commit's fsync. Served as a batch, the batch pays those once and each
request only its own share of set-oriented statements. A request is answered only after its batch committed; if
the batch fails, every request in it gets the same exception and nothing of it was written (one transaction).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 - an item (a request)
R = TypeVar("R")  # its result


class GroupCommit(Generic[I, R]):
    """`await submit(item)` → its result. `serve(items)` is called with up to `max_batch` items in arrival order and
    returns one result per item, in the same order (in one transaction of its own); a result that is an exception
    is raised to that item's caller alone. Up to `concurrency` batches are served at once (1 for SQLite's one
    writer; more where the database takes several transactions at once and each waits on its round trips), each
    taking what is waiting when it starts."""

    def __init__(self, name: str, serve: Callable[[list[I]], Awaitable[list[R | BaseException]]], *,
                 max_batch: int = 64, concurrency: int = 1) -> None:
        self.name = name
        self._serve = serve
        self._max = max_batch
        self._concurrency = max(1, concurrency)
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._drainers: set[asyncio.Task[None]] = set()
        self.batches = 0  # served so far (for tests and the bench)
        self.items = 0

    async def submit(self, item: I) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._drainers) < self._concurrency:
            task = asyncio.create_task(self._drain(), name=f"group-commit:{self.name}")
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)  # also if it is cancelled before it starts
        # shield: a caller that gives up (a cancelled handler) does not cancel the batch others wait for
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            await self._drain_batches()
        finally:
            # at once, not in the done callback: between the last look at _waiting and the callback, a submit
            # would count this drainer as running and start none
            self._drainers.discard(asyncio.current_task())

    async def _drain_batches(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max], self._waiting[self._max:]
            try:
                results = await self._serve([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} requests")
            except asyncio.CancelledError:  # the service stops: nobody is left waiting for an answer
                for _, future in batch + self._waiting:
                    future.cancel()
                self._waiting = []
                raise
            except Exception as exc:  # noqa: BLE001 - the batch's transaction rolled back: each request hears why
                log.warning("%s: a batch of %d failed: %s: %s", self.name, len(batch), exc.__class__.__name__, exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):  # this request alone failed; the batch's writes stand
                    future.set_exception(result)
                else:
                    future.set_result(result)
