"""The bookings service's periodic jobs: one loop per instance that runs every registered job each round with the
service's clock (unpaid bookings cancelled at their deadline, refunds due; other features register theirs in
app.py). Each job is safe with several instances running it at once (conditional updates, idempotency keys), and a
job that fails is logged and run again the next round. Tests call the job functions directly with a fixed clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

log = logging.getLogger(__name__)
Job = Callable[[datetime], Awaitable[int]]  # called with the round's time; answers how many things it did


class Sweeper:
    def __init__(self, *, clock: Callable[[], datetime], every: float = 30.0) -> None:
        self.clock, self.every = clock, every
        self.jobs: list[tuple[str, Job]] = []

    def register(self, name: str, job: Job) -> None:
        self.jobs.append((name, job))

    async def round(self) -> dict[str, int]:
        """Run each job once; what each did (-1: it failed, logged)."""
        done: dict[str, int] = {}
        for name, job in self.jobs:
            try:
                done[name] = await job(self.clock())
            except Exception:  # one job's failure does not hold back the others; it runs again next round
                log.exception("bookings job %s failed; next try in %.0f s", name, self.every)
                done[name] = -1
        if any(n > 0 for n in done.values()):
            log.info("bookings jobs: %s", done)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
