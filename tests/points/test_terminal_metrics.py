"""The terminals' spool lengths in the points service's metrics (svc.<node>.points.metrics), from each terminal's
last heartbeat. Real nats-server, real points service, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import nats

from services.points.app import PointsService
from tests.edge.test_edge_agent import NODE
from tests.kernel.test_metrics import scrape, value
from tests.points.test_terminal_status import listed, until
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import points as contract


async def beat(nc: nats.NATS, terminal: str, queue: int, unsettled: int) -> None:
    hb = contract.Heartbeat(terminal_id=terminal, sent_at=datetime.now(UTC), mode="checkin", queue=queue,
                            unsettled=unsettled, interval=30)
    await nc.publish(subjects.edge(NODE, terminal, "heartbeat"), hb.model_dump_json().encode())
    await nc.flush()


async def test_a_terminals_spool_is_in_the_points_metrics(nc: nats.NATS, points_service: PointsService) -> None:
    await beat(nc, "hall-7", queue=5, unsettled=2)

    async def spooled() -> bool:
        t = (await listed(nc)).get("hall-7")
        return t is not None and t.queue == 5

    await until(spooled)
    found = await scrape(nc, NODE, "points")
    assert value(found, "towntip_terminal_spool", terminal="hall-7") == 5
    assert value(found, "towntip_terminal_unsettled", terminal="hall-7") == 2
    assert value(found, "towntip_terminal_online", terminal="hall-7") == 1
    assert 0 <= (value(found, "towntip_terminal_silent_seconds", terminal="hall-7") or -1) < 30
    # the service's own parts are there too: its outbox and its tap consumer's lag
    assert value(found, "towntip_outbox_backlog") is not None
    assert any(k[0] == "towntip_consumer_pending" for k in found)

    # The spool emptied: the next heartbeat says so, and so do the metrics.
    await beat(nc, "hall-7", queue=0, unsettled=0)

    async def emptied() -> bool:
        return (await listed(nc))["hall-7"].queue == 0

    await until(emptied)
    found = await scrape(nc, NODE, "points")
    assert value(found, "towntip_terminal_spool", terminal="hall-7") == 0
