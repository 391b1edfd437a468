"""The real reader path without hardware: a FeliCa card emulated with nfcpy's `udp` driver (card side: a
ContactlessFrontend listening as a Type 3 tag with the card's IDm, PMm and system code) is read by the production
reader (edge/readers/nfc.py, nfcpy's reader side on the same udp path), through the terminal agent, over a real
nats-server into the real points service, and credited. A card held on the reader is one read."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from edge.readers.nfc import NfcReader
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import Spool
from services.points.app import PointsService
from services.points.taps import service
from tests.edge.test_edge_agent import NODE
from tests.edge.test_edge_feedback import Panel
from tests.points.test_tap_path import CARD_KEY, define_event
from tests.support.nodes import points_running
from towntip.node.natsd import NatsServer

nfc = pytest.importorskip("nfc", reason="nfcpy is not installed (pip install nfcpy): the udp emulation needs it")

PMM = bytes.fromhex("0120220427674EFF")  # a FeliCa Standard's manufacture parameter
SYSTEM_CODE = bytes.fromhex("0003")  # 交通系 IC (Suica, PASMO, ICOCA …)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmulatedCard:
    """A transit IC card on nfcpy's udp driver: present(idm) holds it on the reader until remove()."""

    def __init__(self, port: int) -> None:
        self.path = f"udp:127.0.0.1:{port}"
        self.connected = threading.Event()
        self._remove = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def present(self, idm: str, *, timeout: float = 10.0) -> None:
        self.connected.clear()
        self._remove.clear()
        self._thread = threading.Thread(target=self._run, args=(bytes.fromhex(idm), timeout), daemon=True)
        self._thread.start()

    def _run(self, idm: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def on_startup(target: object) -> object:
            target.brty = "212F"  # type: ignore[attr-defined]
            target.sensf_res = b"\x01" + idm + PMM + SYSTEM_CODE  # type: ignore[attr-defined]
            return target

        def on_connect(tag: object) -> bool:
            self.connected.set()
            return True  # answer the reader (its presence checks) until removed

        try:
            clf = nfc.ContactlessFrontend(self.path)
            try:
                while not self.connected.is_set() and not self._remove.is_set() and time.monotonic() < deadline:
                    clf.connect(card={"on-startup": on_startup, "on-connect": on_connect},
                                terminate=lambda: self._remove.is_set() or time.monotonic() > deadline)
            finally:
                clf.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def remove(self) -> None:
        self._remove.set()
        if self._thread is not None:
            self._thread.join(5)
            assert not self._thread.is_alive(), "the emulated card did not go away"
        assert self.error is None, self.error


@pytest.fixture
async def points(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[PointsService]:
    async with points_running(nats_server.url, tmp_path) as svc:
        yield svc


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_an_emulated_felica_card_is_read_and_credited(
    nc: nats.NATS, points: PointsService, tmp_path: Path
) -> None:
    await define_event(nc, "ev")
    card = EmulatedCard(free_udp_port())
    shown = Panel()
    with Spool(tmp_path / "terminal.sqlite3") as spool:
        # No debounce: whatever the agent counts is what the reader reported.
        agent = TerminalAgent(nc, NODE, "hall-1", spool, "ev", debounce=0, feedback=shown, heartbeat_interval=0)
        reader = NfcReader(card.path)
        async with agent:
            reading = asyncio.create_task(agent.run(reader))
            touches = [("012E4CD8A30B5C7F", 1.0), ("0101050100000001", 0.1), ("012E4CD8A30B5C7F", 0.1)]
            for n, (idm, hold) in enumerate(touches, start=1):
                card.present(idm)
                await asyncio.to_thread(card.connected.wait, 10)
                assert card.connected.is_set(), "the reader never activated the emulated card"
                await until(lambda n=n: len(spool) == n)
                await asyncio.sleep(hold)  # held on the reader: still one read
                await asyncio.to_thread(card.remove)
            assert await agent.wait_settled(10)
            await reader.close()
            assert await asyncio.wait_for(reading, 5) == 3
        rows = spool.all()
    assert [r.tap.card_idm for r in rows] == [idm for idm, _ in touches]
    # The first card's second touch at the same event earns nothing: "already" (settled as credited, 0 points).
    assert [(r.outcome, r.points, r.balance) for r in rows] == [("credited", 1, 1), ("credited", 1, 1),
                                                                ("credited", 0, 1)]
    assert shown.last("credited") == ("1ポイント獲得（残高 1）", "1 point earned (balance 1)")
    assert shown.last("already")[0] == "チェックイン済みです（ポイントは1イベント1回）（残高 1）"
    assert shown.sound.played == ["success", "success", "notice"]
    async with points.sessions() as s:
        key = bytes.fromhex(CARD_KEY)
        assert (await service.get_card_balance(session=s, card_key=key, idm="012E4CD8A30B5C7F")).balance == 1
        assert (await service.get_card_balance(session=s, card_key=key, idm="0101050100000001")).balance == 1
