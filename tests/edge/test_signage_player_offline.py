"""The signage player without its node: with nats-server stopped the screen plays on from its cache (and says it is
offline), its plays wait in its spool, and once the node is back each play reaches the service exactly once, even
when the screen sends them all again (a PubAck lost in a power cut). The service on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edge.signage.screen import run_player
from tests.edge.signage_node import MovableClock, morning_and_lunch, settled, signage_node
from tests.support.browser import run, screen_browser  # noqa: F401 - fixture
from tests.support.bus import wait_for
from towntip.kernel.clock import JST
from towntip.node.natsd import NatsServer, free_port

pytestmark = pytest.mark.browser
SCREEN = "kominkan-1"
MORNING = datetime(2026, 12, 7, 9, 30, tzinfo=JST)
SLOTS = "return [...document.querySelectorAll('#stage [data-slot]')].map(e => e.dataset.slot)[0] || null"


async def test_the_screen_plays_on_offline_and_its_plays_arrive_once(
    nats_server: NatsServer,
    screen_browser: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    database: tuple[str, str | None],
) -> None:
    d = screen_browser
    async with signage_node(nats_server.url, tmp_path, database=database) as node:
        await node.register(SCREEN, "中央公民館", ("公民館",))
        programme = await morning_and_lunch(node)
        port, stop, players = free_port(), asyncio.Event(), []
        task = asyncio.create_task(
            run_player(
                url=nats_server.url,
                node="testnode",
                screen=SCREEN,
                cache_dir=tmp_path / "screen",
                port=port,
                clock=MovableClock(MORNING),
                stop=stop,
                started=players.append,
                heartbeat_interval=1.0,
                backoff_max=0.5,
                screenshots=False,
            )
        )
        try:
            await wait_for(lambda: _has_manifest(players), "the first sync", 15)
            player = players[0]
            await run(d.get, f"http://127.0.0.1:{port}/")
            await wait_for(lambda: run(d.execute_script, SLOTS), "a slot on screen", 10)

            # The node goes away: the screen notices, and plays on from its cache.
            nats_server.stop()
            await wait_for(lambda: _offline(player), "the player offline", 10)
            text = await wait_for(
                lambda: run(d.execute_script, "return document.getElementById('link').innerText"),
                "the page saying it is offline",
                5,
            )
            assert "オフライン" in text
            offline_from = int(await run(d.execute_script, SLOTS))
            await wait_for(lambda: _slot_after(d, offline_from + 2), "two more slots played offline", 15)
            offline_plays = {p.play_id for p in player.spool.pending()}
            assert len(offline_plays) >= 2, player.spool.counts()
            items = set(programme.morning)
            assert {p.item_id for p in player.spool.pending()} <= items

            # Back online: every play the screen made arrives, once.
            nats_server.start()
            await wait_for(lambda: settled(node, player, tmp_path / "screen"), "the screen's plays all counted", 20)

            # The screen loses its record of the acks (a power cut before the spool's write) and sends all again.
            with sqlite3.connect(tmp_path / "screen" / "plays.sqlite3") as db:
                db.execute("UPDATE plays SET state = 'pending'")
            player.sender.wake.set()
            await wait_for(lambda: _all_acked(player), "the repeats acknowledged", 15)
            await asyncio.sleep(0.5)  # what the service would have counted twice has had time to arrive
            rows = await wait_for(lambda: settled(node, player, tmp_path / "screen"), "still each play once", 10)
            assert len(rows) == len({r.play_id for r in rows}) and offline_plays <= {r.play_id for r in rows}
            assert {r.item_id for r in rows} <= items and all(r.ended_at >= r.started_at for r in rows)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)


async def _has_manifest(players: list[Any]) -> bool:
    return bool(players) and players[0].syncs > 0


async def _offline(player: Any) -> bool:
    return not player.online


async def _all_acked(player: Any) -> bool:
    return player.spool.counts()["pending"] == 0


async def _slot_after(d: Any, slot: int) -> bool:
    now = await run(d.execute_script, SLOTS)
    return now is not None and int(now) >= slot
