"""A simulated reader: scripted IDms from a list, N touches of one card, or an asyncio queue fed by a test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from edge.readers.base import CardRead, CardReader, utcnow


class SimulatedReader(CardReader):
    """Yields scripted reads.

    - `SimulatedReader(["0123456789ABCDEF", ...])`: those IDms (or CardRead objects) in order, then ends;
    - `SimulatedReader.repeat(idm, count)`: the same card touched `count` times;
    - `SimulatedReader(queue)`: whatever is put on the asyncio queue (str or CardRead) until None is put
      or close() is called.
    `interval` waits between scripted reads, like a person walking up to the terminal.
    """

    def __init__(
        self,
        source: Iterable[str | CardRead] | asyncio.Queue[str | CardRead | None],
        *,
        interval: float = 0.0,
    ) -> None:
        self._source = source
        self._interval = interval
        self._closed = asyncio.Event()

    @classmethod
    def repeat(cls, idm: str, count: int, *, interval: float = 0.0) -> SimulatedReader:
        return cls((idm for _ in range(count)), interval=interval)

    @staticmethod
    def _as_read(item: str | CardRead) -> CardRead:
        return item if isinstance(item, CardRead) else CardRead(idm=item, read_at=utcnow())

    async def reads(self) -> AsyncIterator[CardRead]:
        if isinstance(self._source, asyncio.Queue):
            async for read in self._from_queue(self._source):
                yield read
            return
        first = True
        for item in self._source:
            if self._closed.is_set():
                return
            if self._interval and not first:
                await asyncio.sleep(self._interval)
            first = False
            yield self._as_read(item)

    async def _from_queue(self, queue: asyncio.Queue[str | CardRead | None]) -> AsyncIterator[CardRead]:
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            while not self._closed.is_set():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                item = getter.result()
                if item is None:
                    return
                yield self._as_read(item)
        finally:
            closed.cancel()

    async def close(self) -> None:
        self._closed.set()

