"""Readers: the simulated one, and the nfcpy one driven by a fake front end (no nfcpy or hardware needed)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from edge.readers import CardRead, SimulatedReader
from edge.readers.nfc import NfcReader


async def test_simulated_reader_from_a_list_and_a_count() -> None:
    reads = [r async for r in SimulatedReader(["0123456789abcdef", "FEDCBA9876543210"])]
    assert [r.idm for r in reads] == ["0123456789abcdef", "FEDCBA9876543210"]
    assert all(r.read_at.tzinfo is not None for r in reads)
    assert len([r async for r in SimulatedReader.repeat("0123456789ABCDEF", 5)]) == 5


async def test_simulated_reader_from_a_queue_until_none_or_close() -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    reader = SimulatedReader(queue)
    for item in ("0123456789ABCDEF", CardRead("1111111111111111"), None):
        queue.put_nowait(item)
    assert [r.idm for r in [r async for r in reader]] == ["0123456789ABCDEF", "1111111111111111"]

    reader = SimulatedReader(asyncio.Queue())
    task = asyncio.create_task(_collect(reader))
    await asyncio.sleep(0.05)
    await reader.close()
    assert await asyncio.wait_for(task, 1) == []


async def _collect(reader: SimulatedReader) -> list[CardRead]:
    return [r async for r in reader]


class FakeTag:
    def __init__(self, idm: bytes) -> None:
        self.idm = idm


class FakeFrontend:
    """Stands in for nfc.ContactlessFrontend: presents each scripted tag once, then waits for terminate."""

    def __init__(self, tags: list[Any]) -> None:
        self.tags = tags
        self.closed = threading.Event()

    def connect(self, *, rdwr: dict[str, Any], terminate: Any) -> Any:
        assert rdwr["targets"] == ["212F"]
        if self.tags:
            return rdwr["on-connect"](self.tags.pop(0))
        while not terminate():
            time.sleep(0.01)
        return None

    def close(self) -> None:
        self.closed.set()


async def test_nfc_reader_yields_felica_idms_and_skips_other_tags() -> None:
    frontend = FakeFrontend([FakeTag(bytes.fromhex("012e4cd8a30b5c7f")), object(), FakeTag(b"\x01" * 8)])
    reader = NfcReader("usb", frontend_factory=lambda path: frontend)
    got: list[str] = []
    async with reader:
        async for read in reader:
            got.append(read.idm)
            if len(got) == 2:
                break
    assert got == ["012E4CD8A30B5C7F", "0101010101010101"]
    assert await asyncio.to_thread(frontend.closed.wait, 2)


async def test_nfc_reader_reports_a_missing_nfcpy_or_device() -> None:
    def broken(path: str) -> Any:
        raise OSError(19, "No such device")

    with pytest.raises(OSError):
        async for _ in NfcReader("usb:054c:06c1", frontend_factory=broken):
            pass
