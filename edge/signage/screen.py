"""A whole screen: the player, its kiosk page on 127.0.0.1 and its connection to the node, run until stopped.

The screen plays from its cache from the first second; the connection is made in the background (again and again
until the node answers: a screen may boot while the node is down) and then kept by nats-py, which reconnects for
ever. The screen connects with its own inbox prefix, the only inboxes its NATS user may read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import nats
import nats.errors
import uvicorn

from edge.signage.cache import Cache
from edge.signage.kiosk import create_app
from edge.signage.player import Player
from edge.signage.plays import PlaySpool
from edge.signage.snapshot import capture, find_browser
from towntip.kernel.clock import utcnow
from towntip.kernel.contracts import signage as contract

log = logging.getLogger(__name__)


def shifted_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that reads `start` now and runs on at the real pace (`--now`: trying a schedule's dayparts)."""
    offset = start - utcnow()
    return lambda: utcnow() + offset


async def connect_forever(url: str, screen: str, player: Player, *, retry: float = 2.0) -> Any:
    """Connect as the screen (trying again every `retry` seconds until the node answers), then hand the connection
    to the player."""

    async def quiet(exc: Exception) -> None:
        log.debug("nats: %r", exc)

    while True:
        try:
            nc = await nats.connect(
                url,
                name=f"screen {screen}",
                connect_timeout=2,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                error_cb=quiet,
                reconnected_cb=player.on_reconnected,
                disconnected_cb=player.on_disconnected,
                inbox_prefix=contract.screen_inbox_prefix(screen),
            )
            break
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.info("node not reachable yet (%s): playing from the cache", exc or type(exc).__name__)
            await asyncio.sleep(retry)
    await player.attach(nc)
    return nc


async def run_player(
    *,
    url: str,
    node: str,
    screen: str,
    cache_dir: Path,
    port: int,
    clock: Callable[[], datetime] = utcnow,
    stop: asyncio.Event | None = None,
    started: Callable[[Player], object] | None = None,
    screenshots: bool = True,
    **options: Any,
) -> None:
    """Runs a screen until `stop` is set (or SIGINT/SIGTERM, which uvicorn catches). `options` go to Player;
    `screenshots`: send one with a heartbeat every 5 minutes where Chromium is installed (snapshot.py)."""
    cache = Cache(cache_dir)
    spool = PlaySpool(Path(cache_dir) / "plays.sqlite3")
    browser = find_browser() if screenshots else None
    if browser is not None:
        options.setdefault("screenshot", partial(capture, f"http://127.0.0.1:{port}/?probe", browser=browser))
    player = Player(node, screen, cache, spool, clock=clock, **options)
    await player.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(player), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )  # SSE streams never end by themselves
    serving = asyncio.create_task(server.serve(), name="kiosk")
    connecting = asyncio.create_task(connect_forever(url, screen, player), name="connect")
    stopping = asyncio.create_task((stop or asyncio.Event()).wait(), name="stop")
    if started is not None:
        started(player)
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(serving, 10)
        await player.stop()
        await _close(connecting)
        spool.close()


async def _close(connecting: asyncio.Task[Any]) -> None:
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        return
    if connecting.exception() is None:
        with contextlib.suppress(nats.errors.Error, OSError):
            await connecting.result().close()
