"""`towntip demo seed` puts the demo facilities into the bookings service (after the seed's events into points):
every one valid and bookable, put again unchanged when seeding again; without the bookings service the events are
still put and the command says the facilities were not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest

from services.bookings.app import BookingsService
from tests.bookings.conftest import settings
from tests.bookings.helpers import NODE, NOW, Node
from tests.edge.test_cli_edge import cli
from tests.node.test_cli_demo import events_service
from towntip.cli.demo_facilities import FACILITIES
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts.points import EventIn


@pytest.fixture
async def sqlite_node(nats_server, tmp_path) -> AsyncIterator[Node]:
    svc = BookingsService(settings(nats_server.url, (f"sqlite+aiosqlite:///{tmp_path}/b.sqlite3", None), tmp_path),
                          clock=lambda: NOW)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_demo_seed_puts_the_facilities(sqlite_node: Node, nats_server, capsys) -> None:
    node = sqlite_node
    store: dict[str, EventIn] = {}
    points = await events_service(node.nc, store, [])
    try:
        args = ("demo", "seed", "--nats-url", nats_server.url, "--node", NODE)
        assert await cli(*args) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(store) == 26 and out[-1].startswith(f"{len(FACILITIES)} facilities put on")
        assert "shichosha-6f\t市庁舎6F会議室" in out
        first = await node.call(c.EP_FACILITY_LIST, {})
        assert await cli(*args) == 0  # again: the same facilities, replaced in place
        again = await node.call(c.EP_FACILITY_LIST, {})
    finally:
        await points.stop()
    assert [f["id"] for f in again] == [f["id"] for f in first] == sorted(f["id"] for f in FACILITIES)
    names = {f["name_ja"] for f in again}
    for place in ("市庁舎6F", "市民活動推進センター", "公民館", "女性センター", "農業交流センター"):
        assert any(place in n for n in names), place
    assert all("sample values" in f["note"] for f in again)
    # Each has free slots on an ordinary open day (a Thursday a week ahead), none on a public holiday.
    for f in again:
        day = await node.day(f["id"], "2026-11-05")
        assert any(s["free"] for s in day["slots"]), f["id"]
        assert not any(s["free"] for s in (await node.day(f["id"], "2026-11-23"))["slots"])  # 勤労感謝の日


async def test_demo_seed_without_the_bookings_service_says_so(nats_server, capsys) -> None:
    nc = await nats.connect(nats_server.url)
    store: dict[str, EventIn] = {}
    points = await events_service(nc, store, [])
    try:
        assert await cli("demo", "seed", "--nats-url", nats_server.url, "--node", NODE) == 0
    finally:
        await points.stop()
        await nc.close()
    captured = capsys.readouterr()
    assert len(store) == 26 and "the demo facilities were not put" in captured.err
