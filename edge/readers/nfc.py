"""A FeliCa (transit IC card) reader through nfcpy. nfcpy is imported lazily: it is not a hard dependency.

nfcpy is synchronous: `ContactlessFrontend.connect()` blocks until a card comes and goes, so it runs in a
thread and hands each Type3Tag's IDm to the event loop. Returning True from on-connect makes nfcpy wait until
the card is removed, so a card resting on the reader is one read. Not supported by nfcpy: the RC-S300.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from edge.readers.base import CardRead, CardReader, utcnow

log = logging.getLogger(__name__)


class NfcReader(CardReader):
    """Reads FeliCa IDms from a reader at `path` ("usb", "usb:054c:06c1", "udp:host:port", "tty:USB0")."""

    def __init__(
        self,
        path: str = "usb",
        *,
        targets: tuple[str, ...] = ("212F",),
        frontend_factory: Callable[[str], Any] | None = None,
    ) -> None:
        self.path = path
        self.targets = list(targets)
        self._factory = frontend_factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _open(self) -> Any:
        if self._factory is not None:
            return self._factory(self.path)
        try:
            import nfc  # optional dependency, imported where used
        except ImportError as exc:
            raise RuntimeError("the nfc reader needs nfcpy: pip install nfcpy") from exc
        return nfc.ContactlessFrontend(self.path)

    def _loop(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[CardRead | BaseException | None]) -> None:
        def deliver(item: CardRead | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone: nobody reads any more
                self._stop.set()

        def on_connect(tag: Any) -> bool:
            idm = getattr(tag, "idm", None)
            if isinstance(idm, bytes | bytearray) and len(idm) == 8:
                deliver(CardRead(idm=bytes(idm).hex().upper(), read_at=utcnow()))
            else:
                log.info("ignored a tag without a FeliCa IDm: %r", tag)
            return True  # hold until the card is removed: one touch, one read

        try:
            clf = self._open()
            try:
                while not self._stop.is_set():
                    result = clf.connect(
                        rdwr={"targets": self.targets, "on-connect": on_connect},
                        terminate=self._stop.is_set,
                    )
                    if result is None or result is False:  # terminated, or the frontend gave up
                        if not self._stop.is_set() and result is False:
                            raise RuntimeError(f"card reader {self.path} stopped")
                        break
            finally:
                clf.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the reading task
            deliver(exc)
        deliver(None)

    async def reads(self) -> AsyncIterator[CardRead]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[CardRead | BaseException | None] = asyncio.Queue()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(loop, queue), name=f"nfc-{self.path}", daemon=True)
        self._thread.start()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()

    async def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join, 2.0)
