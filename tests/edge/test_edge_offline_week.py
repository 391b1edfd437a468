"""A terminal offline for a week: taps made while the node is out of reach are kept on the device, sent when it
comes back and credited exactly once; sent again after JetStream's duplicate window has passed, the stream takes
them as new messages and the points service answers "duplicate" from its database (the tap key is kept for
ever), so no point is issued twice. The agent's clock is injected: a week passes without sleeping."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from sqlalchemy import func, select

from edge.readers import CardRead
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import Spool
from services.points.app import PointsService
from services.points.ledger.models import journal, postings
from services.points.taps import service
from services.points.taps.models import taps
from tests.edge.test_edge_agent import NODE
from tests.edge.test_edge_feedback import Clock, Panel
from tests.points.test_tap_path import CARD_KEY, define_event
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import points as contract
from towntip.node.natsd import NatsServer

CARDS = [f"0A{i:014X}" for i in range(1, 6)]
WINDOW = 1.0  # the EDGE stream's duplicate window in this test (the node's default is 10 minutes)



async def test_a_week_offline_then_every_tap_credited_once(
    nc: nats.NATS, nats_server: NatsServer, points_service: PointsService, tmp_path: Path
) -> None:
    await define_event(nc, "ev")
    for day in range(7):  # one event a day: a card earns an event's points once
        await define_event(nc, f"ev-{day}")
    js = nc.jetstream()
    info = await js.stream_info(subjects.edge_stream(NODE))
    short = copy.copy(info.config)
    short.duplicate_window = WINDOW
    await js.update_stream(short)

    monday = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(monday)
    shown = Panel()
    spool = Spool(tmp_path / "terminal.sqlite3")
    agent = TerminalAgent(None, NODE, "hall-1", spool, "ev", clock=clock, feedback=shown, heartbeat_interval=0,
                          backoff_initial=0.05, backoff_max=0.3)
    tnc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1,
                             reconnected_cb=agent.on_reconnected)
    await agent.attach(tnc)
    await agent.start()

    # The link goes down; for seven days people touch their cards (each card once a day, a few seconds apart).
    nats_server.stop()
    for _ in range(200):
        if not tnc.is_connected:
            break
        await asyncio.sleep(0.02)
    assert not tnc.is_connected
    made = []
    for day in range(7):
        agent.set_mode("checkin", f"ev-{day}")
        for card in CARDS:
            clock.advance(seconds=5)
            tap = await agent.tap(CardRead(card, clock()))
            assert tap is not None
            made.append(tap)
        clock.advance(days=1, seconds=-5 * len(CARDS))
    assert clock() == monday + timedelta(days=7)
    assert len(made) == 35 and spool.queue_length() == 35
    assert shown.kinds == ["accepted", "queued"] * 35 and set(shown.sound.played) == {"queued"}
    status = agent.status()
    assert (status.queue, status.unsettled, status.last_tap_at) == (35, 0, made[-1].tapped_at)

    # A week later the node is back: the terminal sends everything; each tap is credited once.
    nats_server.start()
    assert await agent.wait_settled(60), f"{spool.counts()}"
    rows = spool.all()
    assert [r.outcome for r in rows] == ["credited"] * 35 and spool.queue_length() == 0
    key = bytes.fromhex(CARD_KEY)
    async with points_service.sessions() as s:
        for card in CARDS:
            bal = await service.get_card_balance(session=s, card_key=key, idm=card)
            assert (bal.balance, bal.taps) == (7, 7), card
        recorded = {r.key: r.tapped_at for r in await s.execute(select(taps.c.key, taps.c.tapped_at))}
    assert set(recorded) == {t.key for t in made}
    # The time of each touch is the terminal's (days ago), not the time it reached the node.
    first = recorded[made[0].key]
    assert (first if first.tzinfo else first.replace(tzinfo=UTC)) == made[0].tapped_at

    # After JetStream's duplicate window, the same taps sent again (a terminal restored from a backup, a copy of
    # its spool) enter the stream as new messages; the service answers each from its database: duplicate.
    await asyncio.sleep(WINDOW + 0.5)
    inbox = nc.new_inbox()
    answers = await nc.subscribe(inbox)
    for tap in made:
        ack = await js.publish(subjects.edge(NODE, "hall-1", "tap"), tap.model_dump_json().encode(),
                               headers={subjects.HDR_MSG_ID: tap.key, subjects.HDR_RESULT_TO: inbox})
        assert not ack.duplicate, "JetStream's window has passed: the stream takes the repeat"
    outcomes = [contract.TapOutcome.model_validate_json((await answers.next_msg(timeout=10)).data)
                for _ in made]
    assert {o.tap_id for o in outcomes} == {t.tap_id for t in made}
    assert {o.status for o in outcomes} == {"duplicate"}
    assert {(o.points, o.balance) for o in outcomes} == {(1, 7)}
    assert (await js.stream_info(subjects.edge_stream(NODE))).state.messages == 70
    async with points_service.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(taps))).scalar_one() == 35
        assert (await s.execute(select(func.count()).select_from(journal))).scalar_one() == 35
        assert (await s.execute(select(func.coalesce(func.sum(postings.c.amount), 0)))).scalar_one() == 0
        assert await service.system_balance(s, service.ISSUANCE) == -35
        for card in CARDS:
            assert (await service.get_card_balance(session=s, card_key=key, idm=card)).balance == 7

    await agent.stop()
    spool.close()
    await tnc.close()
