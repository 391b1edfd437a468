"""Background loops of a service: rounds of work woken by a commit, with a poll as the fallback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def woken_rounds(name: str, round_: Callable[[], Awaitable[bool]], *, wake: asyncio.Event,
                       stop: asyncio.Event, poll_interval: float) -> None:
    """Runs `round_` until `stop`: again at once when it says more may be waiting, else when `wake` is set (after
    a commit) or `poll_interval` has passed. A failing round is retried with a backoff from 0.2 s to 5 s; what it
    was working on stays where it was (outbox rows, queued mail)."""
    backoff = 0.2
    while not stop.is_set():
        wake.clear()  # before the round: a commit during it leaves the flag set for the next
        try:
            more = await round_()
            backoff = 0.2
        except Exception as exc:  # noqa: BLE001 - any failure: keep the work, try again later
            log.warning("%s: %s: %s (retrying in %.1fs)", name, exc.__class__.__name__, exc, backoff)
            await sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        if more:
            continue
        waker = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waker, stopper}, timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED)
        waker.cancel()
        stopper.cancel()
