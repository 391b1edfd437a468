"""The reader interface: an async source of card reads. The agent never knows which hardware sits behind it."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CardRead:
    """One touch of a card: its IDm as the reader saw it (not validated here) and when it was read."""

    idm: str
    read_at: datetime = field(default_factory=utcnow)


class CardReader(abc.ABC):
    """An async iterator of CardRead. `async for read in reader` until the reader is closed or runs dry.

    Use as `async with reader:` so hardware is released; close() ends the iteration from another task.
    """

    @abc.abstractmethod
    def reads(self) -> AsyncIterator[CardRead]:
        """Yield each touch as it happens."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop reading; the iteration ends soon after."""

    def __aiter__(self) -> AsyncIterator[CardRead]:
        return self.reads()

    async def __aenter__(self) -> CardReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
