"""The real tap path: JetStream edge stream -> points service -> ledger, against a real nats-server.

Malformed taps are refused with a NATS service error on the terminal's result inbox, dead-lettered, and credit
nothing. A points service killed with SIGKILL while taps stream in loses none and credits none twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.errors import APIError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.points.app import TAP_CONSUMER, PointsService
from services.points.ledger.models import journal, postings
from services.points.tables import bus
from services.points.taps import service
from services.points.taps.models import taps
from tests.support.nodes import CARD_KEY
from towntip.kernel import db, errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.streams import MAX_EDGE_BYTES, ensure_node_streams
from towntip.kernel.contracts import points as contract
from towntip.node.natsd import NatsServer

NODE = "testnode"
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 5, 3, 1, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]


def tap_body(tap_id: str, card: str, *, terminal: str = "term-1", event: str = "ev", role: Any = "participant",
             tapped_at: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"v": 1, "tap_id": tap_id, "terminal_id": terminal, "card_idm": card, "event": event, "role": role,
            "tapped_at": tapped_at or T0.isoformat(), **extra}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


async def define_event(nc: nats.NATS, code: str = "ev", *, proc: subprocess.Popen | None = None,
                       why: Any = lambda: "", timeout: float = 60.0) -> contract.EventOut:
    """events.put over NATS, retried until the service answers (it registers its endpoints once it is ready)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            assert proc.poll() is None, f"points exited with {proc.returncode}:\n{why()}"
        try:
            out = await rpc.call(nc, subjects.svc(NODE, contract.SERVICE, contract.EP_EVENT_PUT),
                                 contract.EventIn(code=code, name=f"Event {code}"), timeout=2)
            return contract.EventOut.model_validate(out)
        except errors.Unavailable:
            if time.monotonic() > deadline:
                raise AssertionError(f"the points service never answered events.put\n{why()}") from None
            await asyncio.sleep(0.1)


async def count(sessions: Sessions, table: Any) -> int:
    async with sessions() as s:
        return (await s.execute(select(func.count()).select_from(table))).scalar_one()


async def dead_letters(js: Any, want: int, timeout: float = 15.0) -> list[Msg]:
    """The DLQ stream's messages, once it holds `want` of them."""
    stream = subjects.dlq_stream(NODE)
    deadline = time.monotonic() + timeout
    while (info := await js.stream_info(stream)).state.messages < want:
        assert time.monotonic() < deadline, f"DLQ holds {info.state.messages} messages, want {want}"
        await asyncio.sleep(0.05)
    assert info.state.messages == want
    sub = await js.pull_subscribe(f"dlq.{NODE}.>", stream=stream)
    try:
        return await sub.fetch(want, timeout=5)
    finally:
        await sub.unsubscribe()


# ---- a) malformed taps ----------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    data: bytes
    code: int
    reason: str  # a fragment of the error the terminal hears
    terminal: str = "term-1"  # the subject it is published on
    msg_id: str | None = None
    tap_id: str | None = None  # what the error reply's body names, if the tap was readable enough
    inbox: str = ""  # the result inbox it was sent with


def malformed_cases() -> list[Case]:
    good = "0123456789ABCDEF"
    return [
        Case("unknown event", encode(tap_body("unknown-ev-1", "1000000000000001", event="no-such-event")), 404,
             "unknown event 'no-such-event'", msg_id="tap:term-1:unknown-ev-1", tap_id="unknown-ev-1"),
        Case("short idm", encode(tap_body("short-idm-1", "0123456789ABCDE")), 400, "card_idm",
             tap_id="short-idm-1"),
        Case("non-hex idm", encode(tap_body("nonhex-idm-1", "0123456789ABCDEG")), 400, "card_idm",
             tap_id="nonhex-idm-1"),
        Case("role 42", encode(tap_body("role-42-001", "1000000000000002", role=42)), 400, "role",
             tap_id="role-42-001"),
        Case("naive time", encode(tap_body("naive-time-1", "1000000000000003", tapped_at="2025-05-03T10:00:00")),
             400, "timezone", tap_id="naive-time-1"),
        Case("oversized", encode(tap_body("oversized-1", "1000000000000004", note="x" * 3000)), 413,
             f"at most {contract.MAX_TAP_BYTES}", tap_id="oversized-1"),
        Case("not json", b"\xff\xfe this is not JSON {", 400, "malformed tap"),
        Case("json array", b"[1, 2, 3]", 400, "malformed tap"),
        Case("extra field", encode(tap_body("extra-field-1", "1000000000000005", bonus=100)), 400, "bonus",
             tap_id="extra-field-1"),
        Case("other terminal", encode(tap_body("other-term-1", "1000000000000006", terminal="term-2")), 403,
             "term-2", terminal="term-1", msg_id="tap:term-2:other-term-1", tap_id="other-term-1"),
        Case("msg id mismatch", encode(tap_body("msgid-mis-1", "1000000000000007")), 400, "Nats-Msg-Id",
             msg_id="tap:term-1:some-other-tap", tap_id="msgid-mis-1"),
        Case("lower-case idm, unknown event", encode(tap_body("lower-idm-1", good.lower(), event="gone")), 404,
             "unknown event 'gone'", tap_id="lower-idm-1"),
    ]


async def test_malformed_taps_are_refused_dead_lettered_and_credit_nothing(
    nc: nats.NATS, points_service: PointsService
) -> None:
    js = nc.jetstream()
    await ensure_node_streams(js, NODE)
    await define_event(nc)
    cases = malformed_cases()
    replies: dict[str, Any] = {}
    for case in cases:
        inbox = nc.new_inbox()
        replies[inbox] = await nc.subscribe(inbox, max_msgs=1)
        headers = {subjects.HDR_RESULT_TO: inbox}
        if case.msg_id:
            headers[subjects.HDR_MSG_ID] = case.msg_id
        ack = await js.publish(subjects.edge(NODE, case.terminal, "tap"), case.data, headers=headers)
        assert ack.stream == subjects.edge_stream(NODE) and not ack.duplicate
        case.inbox = inbox

    # A well-formed tap after them all: it is credited, so the refusals above are not for want of a service.
    good_inbox = nc.new_inbox()
    good_sub = await nc.subscribe(good_inbox, max_msgs=1)
    good = tap_body("good-tap-01", "2000000000000001", role="volunteer")
    await js.publish(subjects.edge(NODE, "term-1", "tap"), encode(good),
                     headers={subjects.HDR_RESULT_TO: good_inbox, subjects.HDR_MSG_ID: "tap:term-1:good-tap-01"})

    for case in cases:
        reply = await replies[case.inbox].next_msg(timeout=10)
        hdrs = reply.headers or {}
        assert hdrs.get(subjects.HDR_SERVICE_ERROR_CODE) == str(case.code), (case.name, hdrs)
        assert case.reason in hdrs.get(subjects.HDR_SERVICE_ERROR, ""), (case.name, hdrs)
        assert "Traceback" not in hdrs[subjects.HDR_SERVICE_ERROR]
        assert json.loads(reply.data) == ({"tap_id": case.tap_id} if case.tap_id else {}), case.name
    outcome = contract.TapOutcome.model_validate_json((await good_sub.next_msg(timeout=10)).data)
    assert outcome == contract.TapOutcome(tap_id="good-tap-01", status="credited", points=5, balance=5)

    # Every refusal is in the dead-letter stream, with the original bytes and why.
    dead = await dead_letters(js, len(cases))
    by_inbox = {m.headers[subjects.HDR_RESULT_TO]: m for m in dead}
    assert set(by_inbox) == {c.inbox for c in cases}
    for case in cases:
        m = by_inbox[case.inbox]
        assert m.subject == subjects.dlq(NODE, "points", TAP_CONSUMER)
        assert m.data == case.data, case.name
        assert case.reason in m.headers[subjects.HDR_ERROR], (case.name, m.headers)
        assert m.headers[subjects.HDR_ERROR_CODE] == str(case.code), case.name
        assert m.headers[subjects.HDR_ORIGINAL_SUBJECT] == subjects.edge(NODE, case.terminal, "tap")
        assert m.headers[subjects.HDR_DELIVERIES] == "1"

    # Nothing was credited but the good tap; nothing is left waiting in the consumer.
    sessions = points_service.sessions
    key = bytes.fromhex(CARD_KEY)
    async with sessions() as s:
        for idm in ("1000000000000001", "1000000000000002", "1000000000000003", "1000000000000004",
                    "1000000000000005", "1000000000000006", "1000000000000007", "0123456789ABCDEF"):
            assert (await service.get_card_balance(session=s, card_key=key, idm=idm)).balance == 0, idm
        assert (await service.get_card_balance(session=s, card_key=key, idm="2000000000000001")).balance == 5
        assert await service.system_balance(s, service.ISSUANCE) == -5
        inboxed = (await s.execute(select(bus.inbox.c.message_id))).scalars().all()
    assert await count(sessions, taps) == 1 and await count(sessions, postings) == 2
    assert inboxed == ["tap:term-1:good-tap-01"]  # refused keys are not held: a corrected resend is judged afresh
    info = await js.consumer_info(subjects.edge_stream(NODE), TAP_CONSUMER)
    assert info.num_pending == 0 and info.num_ack_pending == 0 and info.num_redelivered == 0


async def test_a_tap_beyond_the_streams_limit_is_refused_at_publish(nc: nats.NATS) -> None:
    js = nc.jetstream()
    await ensure_node_streams(js, NODE)
    huge = encode(tap_body("huge-tap-01", "1000000000000001", note="x" * MAX_EDGE_BYTES))
    with pytest.raises(APIError):
        await js.publish(subjects.edge(NODE, "term-1", "tap"), huge)
    assert (await js.stream_info(subjects.edge_stream(NODE))).state.messages == 0


# ---- b) the service killed while taps stream in ---------------------------------------------------------------

N_TAPS = 1500
N_CARDS = 36
TERMINALS = ("term-1", "term-2", "term-3")


def crash_event(i: int) -> str:
    return "ev" if i < N_CARDS else f"ev-{i // N_CARDS}"


def crash_taps() -> list[contract.Tap]:
    out = []
    for i in range(N_TAPS):
        out.append(contract.Tap(
            tap_id=f"crash-{i:05d}", terminal_id=TERMINALS[i % len(TERMINALS)],
            card_idm=f"{0x0100000000000000 + (i * 7) % N_CARDS * 0x10001:016X}",
            # a card earns an event's points once: each block of N_CARDS taps (every card once) at its own event
            event=crash_event(i), role="volunteer" if i % 7 == 3 else "participant",
            tapped_at=T0 + timedelta(milliseconds=i),
        ))
    return out


class PointsProcess:
    """`python -m services.points` as a subprocess; its output goes to one file across restarts."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        with open(self.log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "services.points"], cwd=ROOT, env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def output(self) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "--- points output ---\n" + text[-6000:]

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


async def test_a_killed_service_loses_no_tap_and_credits_none_twice(
    nc: nats.NATS, nats_server: NatsServer, database: tuple[str, str | None], tmp_path: Path
) -> None:
    url, schema = database
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNTIP_")}
    env.update({
        "TOWNTIP_NODE_ID": NODE, "TOWNTIP_NATS_URL": nats_server.url, "TOWNTIP_DATA_DIR": str(tmp_path / "var"),
        "TOWNTIP_DATABASE_URL": url, "TOWNTIP_CARD_KEY": CARD_KEY, "TOWNTIP_TRACE_EXPORT": "none",
    })
    if schema:
        env["TOWNTIP_DATABASE_SCHEMA"] = schema
    points = PointsProcess(env, tmp_path / "points.log")
    engine = None
    js = nc.jetstream()
    all_taps = crash_taps()

    async def publish(batch: list[contract.Tap], *, burst: bool = False) -> int:
        """Publish as terminals do (one by one, or a burst of async publishes); returns how many were duplicates."""
        acks = []
        for t in batch:
            args = (subjects.edge(NODE, t.terminal_id, "tap"), t.model_dump_json().encode())
            headers = {subjects.HDR_MSG_ID: t.key}
            if burst:
                acks.append(await js.publish_async(*args, headers=headers))
            else:
                acks.append(await js.publish(*args, headers=headers))
        if burst:
            acks = await asyncio.wait_for(asyncio.gather(*acks), 10)
        return sum(bool(a.duplicate) for a in acks)

    try:
        await ensure_node_streams(js, NODE)
        first = points.start()
        event = await define_event(nc, proc=first, why=points.output)
        assert (event.participant_points, event.volunteer_points) == (1, 5)
        for code in sorted({crash_event(i) for i in range(N_TAPS)} - {"ev"}):
            await define_event(nc, code, proc=first, why=points.output)
        if schema is None:
            # Reads only, and without the kernel's BEGIN IMMEDIATE: under WAL they never wait for the service.
            engine = create_async_engine(url)
        else:
            engine = db.create_engine(url, schema=schema)
        sessions = db.sessionmaker(engine)

        # A burst the service works through in batches; it is killed as soon as the first batch is in.
        assert await publish(all_taps[:600], burst=True) == 0
        deadline = time.monotonic() + 20
        while await count(sessions, taps) == 0:
            assert first.poll() is None, points.output()
            assert time.monotonic() < deadline, f"no taps recorded in time\n{points.output()}"
            await asyncio.sleep(0.002)
        first.send_signal(signal.SIGKILL)
        first.wait()
        recorded_at_kill = await count(sessions, taps)
        in_flight = (await js.consumer_info(subjects.edge_stream(NODE), TAP_CONSUMER)).num_ack_pending
        assert 0 < recorded_at_kill < N_TAPS
        assert in_flight > 0, "the kill must catch taps in flight for this test to mean anything"

        assert await publish(all_taps[600:800]) == 0  # nobody consumes: the stream keeps them
        second = points.start()
        assert await publish(all_taps[800:1150]) == 0
        # A terminal that restarted re-sends what it had not seen settled, with the same ids.
        assert await publish(all_taps[100:400]) == 300
        assert await publish(all_taps[1150:]) == 0
        assert await publish(all_taps[-50:], burst=True) == 50

        # Until every tap is recorded and the consumer holds nothing back (the killed process's unacked taps
        # come back after the consumer's ack wait).
        deadline = time.monotonic() + 30
        while True:
            assert second.poll() is None, f"points exited with {second.returncode}\n{points.output()}"
            recorded = await count(sessions, taps)
            info = await js.consumer_info(subjects.edge_stream(NODE), TAP_CONSUMER)
            if recorded >= N_TAPS and info.num_pending == 0 and info.num_ack_pending == 0:
                break
            assert time.monotonic() < deadline, (
                f"{recorded} of {N_TAPS} taps recorded in time; consumer: {info.num_pending} pending, "
                f"{info.num_ack_pending} unacked\n{points.output()}"
            )
            await asyncio.sleep(0.1)
        # Every tap the killed process held unacked (committed or not) was delivered again.
        assert info.delivered.consumer_seq >= info.delivered.stream_seq + in_flight
        assert info.delivered.stream_seq == N_TAPS

        expected: dict[str, tuple[int, int]] = {}
        for t in all_taps:
            pts, n = expected.get(t.card_idm, (0, 0))
            expected[t.card_idm] = (pts + (5 if t.role == "volunteer" else 1), n + 1)
        assert len(expected) == N_CARDS
        total = sum(p for p, _ in expected.values())
        key = bytes.fromhex(CARD_KEY)
        async with sessions() as s:
            assert (await s.execute(select(func.count()).select_from(taps))).scalar_one() == N_TAPS
            assert set((await s.execute(select(taps.c.key))).scalars()) == {t.key for t in all_taps}
            assert (await s.execute(select(func.count()).select_from(journal))).scalar_one() == N_TAPS
            assert (await s.execute(select(func.coalesce(func.sum(postings.c.amount), 0)))).scalar_one() == 0
            assert await service.system_balance(s, service.ISSUANCE) == -total
            for idm, (pts, n) in expected.items():
                bal = await service.get_card_balance(session=s, card_key=key, idm=idm)
                assert (bal.balance, bal.taps) == (pts, n), f"card {idm}\n{points.output()}"
            inboxed = (await s.execute(select(func.count()).select_from(bus.inbox).where(
                bus.inbox.c.consumer == TAP_CONSUMER))).scalar_one()
        assert inboxed == N_TAPS
        assert (await js.stream_info(subjects.dlq_stream(NODE))).state.messages == 0, points.output()
        assert (await js.stream_info(subjects.edge_stream(NODE))).state.messages == N_TAPS
    finally:
        points.kill_all()
        if engine is not None:
            await engine.dispose()
