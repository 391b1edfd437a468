"""A slide the node makes from its own data, on the glass: the points service's upcoming events become a data slide
(approved by a second staff member), the player syncs its JSON and the kiosk page lays it out with its template, in
Japanese with the player's webfont; when the data change, the slide on screen changes without anyone touching it.

Set TOWNTIP_SCREENSHOTS to a directory to keep the screenshot (docs/img/signage-data-slide.png came from there)."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.signage.screen import run_player
from services.signage import slides
from tests.edge.signage_node import LONG_AGO, signage_node
from tests.edge.test_signage_player_browser import shot
from tests.signage.helpers import CHIEF, CLERK
from tests.support.browser import run, screen_browser  # noqa: F401 - fixture
from tests.support.bus import wait_for
from tests.support.nodes import points_running
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import JST, utcnow
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import signage as c
from towntip.node.natsd import NatsServer, free_port

pytestmark = pytest.mark.browser
SCREEN = "hall-1f"


async def test_a_data_slide_on_the_screen_follows_its_data(
    nats_server: NatsServer,
    screen_browser: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    d = screen_browser
    today = utcnow().astimezone(JST).date()
    soon = datetime.combine(today + timedelta(days=2), time(14), JST)
    later = datetime.combine(today + timedelta(days=3), time(17), JST)
    async with points_running(nats_server.url, tmp_path / "points"), signage_node(nats_server.url, tmp_path) as node:

        async def event(code: str, name: str, at: Any, **more: Any) -> None:
            body = {"code": code, "name": name, "starts_at": at.isoformat(), **more}
            await rpc.call(node.nc, subjects.svc("testnode", "points", pc.EP_EVENT_PUT), body, timeout=10)

        await event("bosai", "防災講座", soon, venue_name="中央公民館", capacity=30)
        await node.register(SCREEN, "市役所 1F ロビー", ("市役所",))
        made = await node.call(c.EP_SLIDE_CREATE, c.SlideCreate(actor=CLERK, source="events", valid_from=LONG_AGO))
        item = made["item"]["id"]
        await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item))
        await node.call(c.EP_PLAYLIST_PUT, c.PlaylistPut(
            actor=CLERK, name="まちの情報", entries=(c.PlaylistEntry(item_id=item, duration_s=30),)))

        port = free_port()
        stop = asyncio.Event()
        players: list[Any] = []
        task = asyncio.create_task(run_player(
            url=nats_server.url, node="testnode", screen=SCREEN, cache_dir=tmp_path / "screen", port=port,
            stop=stop, started=players.append, screenshots=False))
        try:
            first = f"{slides.when(soon)} 防災講座 — 中央公民館 — 残り30席"
            await wait_for(lambda: _cached(players, item), "the player has the slide", 20)
            await run(d.get, f"http://127.0.0.1:{port}/")
            await wait_for(lambda: run(lambda: _lines(d) == [first]), "the data slide on screen", 15)
            page = await run(d.execute_script, """
                const s = document.querySelector('#stage article.slide');
                return {kicker: s.querySelector('.kicker').innerText, title: s.querySelector('h1').innerText,
                        font: document.fonts.check('48px "BIZ UDPGothic"', '防災講座'),
                        family: getComputedStyle(s).fontFamily, item: s.dataset.item};""")
            assert page["kicker"] == "イベント Events" and page["title"] == "これからのイベント"
            assert page["item"] == item and page["font"] and page["family"].startswith('"BIZ UDPGothic"'), page
            await shot(d, tmp_path, "signage-data-slide")

            # A new event: the next round renders new bytes, the player syncs them, the page shows them.
            await event("kodomo", "子ども食堂", later)
            node.svc.slides.wake()
            second = f"{slides.when(later)} 子ども食堂"
            await wait_for(lambda: run(lambda: _lines(d) == [first, second]), "the slide follows its data", 20)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)


def _lines(driver: Any) -> list[str]:
    return list(driver.execute_script(
        "return [...document.querySelectorAll('#stage article.slide li')].map(li => li.innerText)"))


async def _cached(players: list[Any], item: str) -> bool:
    if not players or players[0].manifest is None:
        return False
    found = [i for i in players[0].manifest.items if i.id == item]
    return bool(found) and players[0].cache.has(found[0].sha256)
