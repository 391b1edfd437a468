"""The terminal agent against a real nats-server: spool, publish, outcomes, restart, debounce, backoff.

`Responder` plays the points service's side of the tap protocol: it consumes the EDGE stream, applies each
tap once by its key and publishes the outcome to Towntip-Result-To.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from edge.readers import CardRead, SimulatedReader
from edge.terminal.agent import Feedback, TerminalAgent
from edge.terminal.spool import Spool
from towntip.kernel.bus import subjects
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts.points import Tap, TapOutcome

NODE = "testnode"
CARD = "012E4CD8A30B5C7F"


class Responder:
    """A tiny stand-in for the points service: exactly once per tap key, rejects unknown events with 404."""

    def __init__(self, nc: nats.NATS, events: dict[str, int] | None = None) -> None:
        self.nc = nc
        self.events = events if events is not None else {"ev": 1}
        self.seen: set[str] = set()
        self.balances: dict[str, int] = {}
        self.delivered = 0
        self._sub = None

    async def start(self) -> Responder:
        js = self.nc.jetstream()
        self._sub = await js.subscribe(
            subjects.edge_kind(NODE, "tap"), cb=self._on_tap, manual_ack=True,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL),
        )
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _on_tap(self, msg: nats.aio.msg.Msg) -> None:
        self.delivered += 1
        tap = Tap.model_validate_json(msg.data)
        result_to = (msg.headers or {}).get(subjects.HDR_RESULT_TO)
        assert (msg.headers or {}).get(subjects.HDR_MSG_ID) == tap.key
        if tap.event not in self.events:
            if result_to:
                await self.nc.publish(result_to, json.dumps({"tap_id": tap.tap_id}).encode(), headers={
                    subjects.HDR_SERVICE_ERROR: f"unknown event {tap.event}",
                    subjects.HDR_SERVICE_ERROR_CODE: "404",
                })
            await msg.ack()
            return
        points = self.events[tap.event] * (5 if tap.role == "volunteer" else 1)
        if tap.key in self.seen:
            status = "duplicate"
        else:
            self.seen.add(tap.key)
            self.balances[tap.card_idm] = self.balances.get(tap.card_idm, 0) + points
            status = "credited"
        if result_to:
            out = TapOutcome(tap_id=tap.tap_id, status=status, points=points, balance=self.balances[tap.card_idm])
            await self.nc.publish(result_to, out.model_dump_json().encode())
        await msg.ack()


async def stream_taps(nc: nats.NATS) -> list[Tap]:
    """Every tap message in the EDGE stream (raw, duplicates included)."""
    js = nc.jetstream()
    info = await js.stream_info(subjects.edge_stream(NODE))
    taps = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
        msg = await js.get_msg(subjects.edge_stream(NODE), seq)
        taps.append(Tap.model_validate_json(msg.data))
    return taps


def agent_for(nc: nats.NATS, spool: Spool, **kw: object) -> TerminalAgent:
    kw.setdefault("event", "ev")
    return TerminalAgent(nc, NODE, "term-1", spool, backoff_initial=0.05, backoff_max=0.2, **kw)  # type: ignore[arg-type]


async def test_taps_are_settled_from_the_result_inbox(nc: nats.NATS, tmp_path: Path) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    responder = await Responder(nc).start()
    told: list[Feedback] = []
    with Spool(tmp_path / "t.sqlite3") as spool:
        async with agent_for(nc, spool, role="volunteer", feedback=told.append) as agent:
            reader = SimulatedReader([CARD, "1111111111111111", CARD.lower()], interval=0)
            assert await agent.run(reader) == 2  # the third read is the first card again: debounced
            assert await agent.wait_settled(5)
        rows = spool.all()
        assert [(r.state, r.outcome, r.points) for r in rows] == [("settled", "credited", 5)] * 2
        assert rows[0].balance == 5
        assert spool.queue_length() == 0
    assert responder.delivered == 2
    assert [f.kind for f in told].count("credited") == 2 and "ignored" in [f.kind for f in told]
    taps = await stream_taps(nc)
    assert {t.tap_id for t in taps} == {r.tap_id for r in rows} and taps[0].role == "volunteer"
    await responder.stop()


async def test_a_rejection_is_recorded_with_its_reason(nc: nats.NATS, tmp_path: Path) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    responder = await Responder(nc, events={}).start()
    with Spool(tmp_path / "t.sqlite3") as spool:
        async with agent_for(nc, spool, event="no-such-event") as agent:
            tap = await agent.tap(CARD)
            assert tap is not None
            assert await agent.wait_settled(5, [tap.tap_id])
        row = spool.get(tap.tap_id)
        assert row is not None
        assert (row.state, row.outcome, row.error_code) == ("settled", "rejected", 404)
        assert row.reason == "unknown event no-such-event"
    await responder.stop()


async def test_a_bad_idm_from_the_reader_is_refused_not_spooled(nc: nats.NATS, tmp_path: Path) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    told: list[Feedback] = []
    with Spool(tmp_path / "t.sqlite3") as spool:
        async with agent_for(nc, spool, feedback=told.append) as agent:
            assert await agent.tap("not-an-idm") is None
            assert await agent.tap("0123") is None
            assert await agent.tap_many(["ZZZZZZZZZZZZZZZZ"]) == []
        assert len(spool) == 0
    assert [f.kind for f in told] == ["refused"] * 3
    assert await stream_taps(nc) == []


async def test_debounce_counts_a_repeat_touch_once(nc: nats.NATS, tmp_path: Path) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    t0 = datetime.now(UTC)
    with Spool(tmp_path / "t.sqlite3") as spool:
        async with agent_for(nc, spool, debounce=3.0) as agent:
            assert await agent.tap(CardRead(CARD, t0)) is not None
            assert await agent.tap(CardRead(CARD, t0 + timedelta(seconds=1))) is None
            assert await agent.tap(CardRead(CARD, t0 + timedelta(seconds=2.9))) is None
            assert await agent.tap(CardRead("1111111111111111", t0 + timedelta(seconds=1))) is not None
            assert await agent.tap(CardRead(CARD, t0 + timedelta(seconds=3.5))) is not None
            assert await agent.tap(CardRead(CARD, t0 + timedelta(seconds=3.6)), debounce=False) is not None
        assert len(spool) == 4
    async with agent_for(nc, Spool(tmp_path / "u.sqlite3"), debounce=0) as agent:
        assert len([await agent.tap(CardRead(CARD, t0)) for _ in range(3)]) == 3
        assert len(agent.spool) == 3
        agent.spool.close()


async def test_restart_resends_pending_taps_with_the_same_ids(nats_server, tmp_path: Path) -> None:
    """Taps spooled while JetStream was unreachable go out after a restart, once each in the stream."""
    path = tmp_path / "t.sqlite3"
    first = await nats.connect(nats_server.url)
    # Run 1: no stream yet, so nothing is accepted; the agent backs off and the taps stay pending.
    with Spool(path) as spool:
        async with agent_for(first, spool, debounce=0, publish_timeout=0.3) as agent:
            made = [await agent.tap(CARD) for _ in range(3)]
            assert not await agent.wait_settled(0.5)
        assert spool.queue_length() == 3 and all(r.attempts >= 1 for r in spool.pending())
    await first.close()

    # Run 2 ("after a reboot"): the stream exists; the same taps are re-sent and settled.
    nc = await nats.connect(nats_server.url)
    await ensure_node_streams(nc.jetstream(), NODE)
    responder = await Responder(nc).start()
    with Spool(path) as spool:
        async with agent_for(nc, spool) as agent:
            assert agent.responsible == {t.tap_id for t in made if t}
            assert await agent.wait_settled(5)
        assert [r.outcome for r in spool.all()] == ["credited"] * 3
        # Run 3: the same pending taps published again (e.g. the PubAck was lost) are deduplicated by the stream.
        await agent.js.publish(agent.subject, made[0].model_dump_json().encode(),  # type: ignore[union-attr]
                               headers={subjects.HDR_MSG_ID: made[0].key})  # type: ignore[union-attr]
    taps = await stream_taps(nc)
    assert sorted(t.tap_id for t in taps) == sorted(t.tap_id for t in made if t)
    assert responder.balances[CARD] == 3
    await responder.stop()
    await nc.close()


async def test_sends_when_jetstream_comes_back(nc: nats.NATS, tmp_path: Path) -> None:
    with Spool(tmp_path / "t.sqlite3") as spool:
        async with agent_for(nc, spool, publish_timeout=0.3) as agent:
            tap = await agent.tap(CARD)
            await asyncio.sleep(0.3)
            assert spool.queue_length() == 1
            await ensure_node_streams(nc.jetstream(), NODE)
            responder = await Responder(nc).start()
            agent.connection_back()
            assert await agent.wait_settled(5)
        assert spool.get(tap.tap_id).outcome == "credited"  # type: ignore[union-attr]
    await responder.stop()


async def test_accepted_without_an_outcome_stays_accepted(nc: nats.NATS, tmp_path: Path) -> None:
    """The points service is down: the bus holds the tap (accepted), the terminal keeps waiting for nothing."""
    await ensure_node_streams(nc.jetstream(), NODE)
    with Spool(tmp_path / "t.sqlite3") as spool:
        async with agent_for(nc, spool) as agent:
            await agent.tap(CARD)
            assert not await agent.wait_settled(0.5)
        assert spool.counts() == {"pending": 0, "accepted": 1, "settled": 0}
    assert len(await stream_taps(nc)) == 1
