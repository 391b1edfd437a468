"""What the terminal shows and plays, and its modes: the words and tones per outcome, against a real nats-server
and the real points service for credited / duplicate / rejected / offline-queued, and the stand-in responder of
test_edge_agent for the modes the service does not take yet (the taps' mode and ref as they reach the stream)."""

from __future__ import annotations

import asyncio
import io
import re
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest

from edge.feedback import (
    BellSound,
    FeedbackPanel,
    RecordingScreen,
    RecordingSound,
    make_screen,
    make_sound,
    render,
    tone_wav,
)
from edge.feedback.messages import Feedback
from edge.readers import CardRead
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import Spool
from services.points.app import PointsService
from tests.edge.test_edge_agent import CARD, NODE, Responder, stream_taps
from tests.points.test_tap_path import CARD_KEY, define_event
from tests.support.nodes import points_running
from towntip.kernel.bus import subjects
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.node.natsd import NatsServer


class Clock:
    """An injected clock: the agent's notion of now, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class Panel:
    """The recording screen and sound behind a real FeedbackPanel."""

    def __init__(self) -> None:
        self.screen = RecordingScreen()
        self.sound = RecordingSound()
        self.panel = FeedbackPanel(self.screen, self.sound)

    def __call__(self, fb: Feedback) -> None:
        self.panel(fb)

    @property
    def kinds(self) -> list[str]:
        return self.screen.kinds

    def last(self, kind: str) -> tuple[str, str]:
        m = [m for m in self.screen.shown if m.kind == kind][-1]
        return m.ja, m.en


# ---- words and tones ----------------------------------------------------------------------------------------


def test_the_words_for_each_outcome_japanese_first() -> None:
    cases = [
        (Feedback("credited", points=5, balance=12), "5ポイント獲得（残高 12）", "5 points earned (balance 12)",
         "success"),
        (Feedback("duplicate", points=1, balance=3), "このタッチは受付済みです（残高 3）",
         "This touch was already counted (balance 3)", "notice"),
        (Feedback("rejected", detail="unknown event 'nope'"), "受け付けられませんでした：unknown event 'nope'",
         "Not accepted: unknown event 'nope'", "error"),
        (Feedback("refused", "0123"), "カードを読み取れませんでした。もう一度タッチしてください",
         "Could not read the card. Please touch again", "error"),
        (Feedback("queued"), "受け付けました（オフライン：接続が戻りしだい送信します）",
         "Accepted (offline: it will be sent when the connection is back)", "queued"),
        (Feedback("ignored"), "読み取り済みです", "Already read", "notice"),
        (Feedback("needs_ref", mode="coupon"), "係員がクーポンの番号を入力してからタッチしてください",
         "Staff must enter the coupon number before the touch", "error"),
        (Feedback("credited", mode="register", display="K7Q2-9MXD"),
         "登録コード：K7Q2-9MXD（10分以内にマイページで入力してください）",
         "Registration code: K7Q2-9MXD (enter it on the portal within 10 minutes)", "success"),
        (Feedback("credited", mode="donation", points=10, balance=40),
         "寄附を確認しました。ありがとうございます。10ポイント獲得（残高 40）",
         "Donation confirmed, thank you. 10 points earned (balance 40)", "success"),
        (Feedback("credited", mode="coupon", points=0, balance=0), "クーポンを利用しました", "Coupon redeemed",
         "success"),
        (Feedback("accepted"), "読み取りました。送信中…", "Card read. Sending…", None),
    ]
    for fb, ja, en, tone in cases:
        m = render(fb)
        assert (m.ja, m.en, m.tone) == (ja, en, tone), fb
        assert m.text == f"{ja}\n{en}"


def test_tones_are_real_wav_files_and_the_bell_rings_per_beep() -> None:
    for tone, beeps, ms in (("success", 2, 220), ("notice", 1, 120), ("queued", 2, 240), ("error", 2, 540)):
        data = tone_wav(tone)
        with wave.open(io.BytesIO(data)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16_000)
            assert abs(w.getnframes() / 16_000 * 1000 - ms) < 2, tone
            frames = w.readframes(w.getnframes())
        assert max(abs(int.from_bytes(frames[i:i + 2], "little", signed=True)) for i in range(0, len(frames), 2)) > 8000
        out = io.StringIO()
        BellSound(out).play(tone)
        assert out.getvalue() == "\a" * beeps
    assert type(make_sound("none")).__name__ == "NullSound"
    assert type(make_sound("bell")).__name__ == "BellSound"
    assert type(make_sound("auto")).__name__ in ("AplaySound", "BellSound")
    with pytest.raises(ValueError):
        make_sound("trumpet")
    screen = make_screen("console")
    out = io.StringIO()
    screen.out = out  # type: ignore[attr-defined]
    FeedbackPanel(screen, make_sound("none"))(Feedback("credited", points=1, balance=1))
    assert "1ポイント獲得（残高 1）" in out.getvalue() and "1 point earned (balance 1)" in out.getvalue()


# ---- against the real points service --------------------------------------------------------------------------


@pytest.fixture
async def points(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[PointsService]:
    async with points_running(nats_server.url, tmp_path) as svc:
        yield svc


async def test_what_the_person_sees_and_hears(nats_server: NatsServer, points: PointsService, tmp_path: Path) -> None:
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    await define_event(nc, "ev")
    await nc.request(subjects.svc(NODE, "points", "events.put"),
                     b'{"code": "fest", "name": "Fest", "participant_points": 2, "volunteer_points": 5}')
    shown = Panel()
    with Spool(tmp_path / "t.sqlite3") as spool:
        agent = TerminalAgent(nc, NODE, "term-1", spool, "fest", "volunteer", feedback=shown, heartbeat_interval=0,
                              outcome_timeout=20, backoff_initial=0.05, backoff_max=0.2)
        # credited: 5 points for a volunteer, balance 5; then 10.
        async with agent:
            first = await agent.tap(CardRead(CARD, datetime.now(UTC)))
            assert first is not None and await agent.wait_settled(10)
            assert shown.last("credited") == ("5ポイント獲得（残高 5）", "5 points earned (balance 5)")
            assert shown.sound.played == ["success"]
            # refused: not an IDm; nothing spooled.
            assert await agent.tap("0123") is None
            assert shown.kinds[-1] == "refused" and shown.sound.played[-1] == "error"
            # ignored: the same card again at once counts once.
            assert await agent.tap(CardRead(CARD, datetime.now(UTC))) is None
            assert shown.last("ignored") == ("読み取り済みです", "Already read")
            # already: the same card touches the same event again later: an event's points are earned once.
            later = await agent.tap(CardRead(CARD, datetime.now(UTC) + timedelta(seconds=5)))
            assert later is not None and await agent.wait_settled(10)
            assert shown.last("already") == ("チェックイン済みです（ポイントは1イベント1回）（残高 5）",
                                             "Already checked in (an event's points are earned once) (balance 5)")
            assert shown.sound.played[-1] == "notice"
            # rejected: an unknown event, with the service's reason.
            agent.set_mode("checkin", "nope")
            bad = await agent.tap(CardRead("1111111111111111", datetime.now(UTC)))
            assert bad is not None and await agent.wait_settled(10)
            assert shown.last("rejected") == ("受け付けられませんでした：unknown event 'nope'",
                                              "Not accepted: unknown event 'nope'")
            assert shown.sound.played[-1] == "error"

        # duplicate: the same tap reached the node before this terminal sent it (e.g. a copy of its spool sent by
        # a replacement device): the node answers from its database.
        await nc.request(subjects.svc(NODE, "points", "events.put"),
                         b'{"code": "fest2", "name": "Fest 2", "participant_points": 2, "volunteer_points": 5}')
        agent.set_mode("checkin", "fest2", "volunteer")  # another event: the card earns its points again
        again = await agent.tap(CardRead(CARD, datetime.now(UTC) + timedelta(seconds=10)))
        assert again is not None
        js = nc.jetstream()
        ack = await js.publish(agent.subject, again.model_dump_json().encode())  # no Nats-Msg-Id: not deduped
        assert not ack.duplicate
        for _ in range(200):
            async with points.sessions() as s:
                from services.points.taps import service
                bal = await service.get_card_balance(session=s, card_key=bytes.fromhex(CARD_KEY), idm=CARD)
            if bal.balance == 10:
                break
            await asyncio.sleep(0.05)
        assert bal.balance == 10
        async with agent:
            assert await agent.wait_settled(10)
        assert shown.last("duplicate") == ("このタッチは受付済みです（残高 10）",
                                           "This touch was already counted (balance 10)")
        assert shown.sound.played[-1] == "notice"
        assert spool.get(again.tap_id).outcome == "duplicate"  # type: ignore[union-attr]

        # registration: the node answers with a one-time code, shown for the person to type on the portal.
        agent.set_mode("register")
        async with agent:
            reg = await agent.tap(CardRead("5555555555555555", datetime.now(UTC)))
            assert reg is not None and await agent.wait_settled(10)
        ja, en = shown.last("credited")
        assert re.fullmatch(r"登録コード：[2-9A-Z]{4}-[2-9A-Z]{4}（10分以内にマイページで入力してください）", ja), ja
        assert en.startswith("Registration code: ") and shown.sound.played[-1] == "success"
        agent.set_mode("checkin", "fest", "volunteer")

        # offline: the node is out of reach; the tap is kept and "queued" is shown at once, then it is credited
        # once the node is back (the screen has moved on: nothing more is shown for it).
        async with agent:
            nats_server.stop()
            for _ in range(100):
                if not nc.is_connected:
                    break
                await asyncio.sleep(0.02)
            before = len(shown.kinds)
            late = await agent.tap(CardRead("2222222222222222", datetime.now(UTC)))
            assert late is not None
            assert shown.kinds[before:] == ["accepted", "queued"]
            assert shown.last("queued")[0] == "受け付けました（オフライン：接続が戻りしだい送信します）"
            assert shown.sound.played[-1] == "queued"
            assert spool.get(late.tap_id).state == "pending"  # type: ignore[union-attr]
            nats_server.start()
            assert await agent.wait_settled(20)
        assert spool.get(late.tap_id).outcome == "credited"  # type: ignore[union-attr]
        assert shown.kinds[before:] == ["accepted", "queued"]
    await nc.close()


# ---- modes --------------------------------------------------------------------------------------------------


async def test_modes_put_mode_and_ref_in_each_tap(nc: nats.NATS, tmp_path: Path) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    responder = await Responder(nc, events={"ev": 1}).start()
    clock = Clock(datetime(2025, 6, 1, 1, 0, tzinfo=UTC))
    shown = Panel()
    with Spool(tmp_path / "t.sqlite3") as spool:
        agent = TerminalAgent(nc, NODE, "term-1", spool, mode="coupon", feedback=shown, clock=clock,
                              heartbeat_interval=0, ref_ttl=60)
        async with agent:
            # No reference yet: refused and shown; nothing spooled.
            assert await agent.tap(CARD) is None
            assert shown.kinds == ["needs_ref"] and shown.sound.played == ["error"]
            # Staff enters the coupon's code; the next touch carries it, the one after needs a new one.
            agent.set_pending_ref("BUS-2025-0001")
            t1 = await agent.tap(CARD)
            assert t1 is not None and (t1.mode, t1.ref, t1.event) == ("coupon", "BUS-2025-0001", None)
            assert agent.pending_ref is None
            clock.advance(seconds=1)
            assert await agent.tap("1111111111111111") is None  # used once
            # The same card with another coupon is another touch (the debounce is per card and reference).
            agent.set_pending_ref("HALL-0002")
            t2 = await agent.tap(CARD)
            assert t2 is not None and t2.ref == "HALL-0002"
            # The same card and reference again at once counts once.
            assert await agent.tap(CARD, ref="HALL-0002") is None
            # A reference left waiting expires.
            agent.set_pending_ref("HALL-0003")
            clock.advance(seconds=61)
            assert agent.pending_ref is None and await agent.tap(CARD) is None
            with pytest.raises(ValueError):
                agent.set_pending_ref("x!")

            # Donation: the reference passed with the read (a counter UI that reads and confirms in one step).
            agent.set_mode("donation")
            t3 = await agent.tap(CardRead(CARD, clock()), ref="DON-77")
            assert t3 is not None and (t3.mode, t3.ref) == ("donation", "DON-77")
            # Registration: no event, no reference.
            agent.set_mode("register")
            t4 = await agent.tap(CardRead("3333333333333333", clock()))
            assert t4 is not None and (t4.mode, t4.ref, t4.event) == ("register", None, None)
            # Check-in as a volunteer.
            agent.set_mode("checkin", "ev", "volunteer")
            t5 = await agent.tap(CardRead("4444444444444444", clock()))
            assert t5 is not None and (t5.mode, t5.event, t5.role) == ("checkin", "ev", "volunteer")
            with pytest.raises(ValueError):
                agent.set_mode("checkin")  # a check-in names its event
            with pytest.raises(ValueError):
                agent.set_pending_ref("DON-78")  # not in a reference mode
            assert await agent.wait_settled(10)  # the stand-in answers each (404 but for the check-in)
        assert [r.outcome for r in spool.all()] == ["rejected"] * 4 + ["credited"]
        in_stream = {t.tap_id: t for t in await stream_taps(nc)}
        for t in (t1, t2, t3, t4, t5):
            assert in_stream[t.tap_id] == t  # type: ignore[union-attr]
        assert len(in_stream) == 5 and len(spool) == 5
    await responder.stop()
