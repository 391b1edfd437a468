"""Where the terminal's messages are shown: the console (a kiosk's text screen), nowhere, or a list (tests)."""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import Protocol, TextIO

from edge.feedback.messages import Message


class Screen(Protocol):
    def show(self, message: Message) -> None:
        """Show one message (it replaces what was shown)."""


class ConsoleScreen:
    """Prints each message as two lines (Japanese, then English) with the time, to stdout by default."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out
        self._lock = threading.Lock()

    def show(self, message: Message) -> None:
        out = self.out or sys.stdout
        stamp = datetime.now().strftime("%H:%M:%S")
        with self._lock:
            out.write(f"[{stamp}] {message.ja}\n           {message.en}\n")
            out.flush()


class NullScreen:
    def show(self, message: Message) -> None:
        pass


class RecordingScreen:
    """Keeps every message shown, for tests."""

    def __init__(self) -> None:
        self.shown: list[Message] = []

    def show(self, message: Message) -> None:
        self.shown.append(message)

    @property
    def kinds(self) -> list[str]:
        return [m.kind for m in self.shown]


def make_screen(name: str) -> Screen:
    if name == "console":
        return ConsoleScreen()
    if name == "none":
        return NullScreen()
    raise ValueError(f"unknown screen {name!r}: console or none")
