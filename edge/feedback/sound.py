"""The terminal's tones: one short pattern per kind of outcome, played where a sound device exists.

- `AplaySound`: synthesises the tone as a WAV (16-bit mono PCM) and pipes it to ALSA's `aplay` (not waited for:
  the terminal never stalls on its speaker);
- `BellSound`: the terminal bell (BEL on stderr), one ring per beep of the pattern;
- `RecordingSound`: keeps the tones played (tests); `NullSound`: silent.
`make_sound("auto")` takes aplay when the binary and an ALSA playback device are there, else the bell.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path
from typing import Protocol, TextIO

log = logging.getLogger(__name__)

RATE = 16_000
# (frequency Hz, milliseconds) per beep, 0 Hz = a pause.
PATTERNS: dict[str, tuple[tuple[int, int], ...]] = {
    "success": ((1319, 70), (0, 30), (1760, 120)),  # rising double beep: points credited
    "notice": ((988, 120),),  # one beep: already counted
    "queued": ((880, 90), (0, 60), (880, 90)),  # two even beeps: kept on the device, sent later
    "error": ((330, 180), (0, 60), (330, 300)),  # low, long: not accepted
}


class Sound(Protocol):
    def play(self, tone: str) -> None:
        """Start playing the tone (one of PATTERNS); must not block."""


def tone_wav(tone: str, rate: int = RATE) -> bytes:
    """The tone as a WAV file: sine beeps with 5 ms fades (no clicks)."""
    frames = bytearray()
    fade = int(rate * 0.005)
    for freq, ms in PATTERNS[tone]:
        n = int(rate * ms / 1000)
        for i in range(n):
            if freq == 0:
                sample = 0.0
            else:
                env = min(1.0, i / fade, (n - 1 - i) / fade) if fade else 1.0
                sample = 0.5 * env * math.sin(2 * math.pi * freq * i / rate)
            frames += struct.pack("<h", int(sample * 32767))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return buf.getvalue()


class AplaySound:
    """Pipes each tone to `aplay -q` (ALSA). Earlier players are reaped as new tones start."""

    def __init__(self, binary: str = "aplay", device: str | None = None) -> None:
        found = shutil.which(binary)
        if found is None:
            raise FileNotFoundError(f"{binary} not found (Debian: apt-get install alsa-utils)")
        self.binary = found
        self.device = device
        self._cache: dict[str, bytes] = {}
        self._players: list[subprocess.Popen[bytes]] = []

    def play(self, tone: str) -> None:
        if tone not in PATTERNS:
            return
        data = self._cache.get(tone) or self._cache.setdefault(tone, tone_wav(tone))
        self._players = [p for p in self._players if p.poll() is None]
        argv = [self.binary, "-q"] + (["-D", self.device] if self.device else []) + ["-"]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            assert proc.stdin is not None
            proc.stdin.write(data)  # a few KB: fits the pipe, never blocks
            proc.stdin.close()
            self._players.append(proc)
        except OSError as exc:
            log.warning("cannot play a tone with %s: %s", self.binary, exc)


class BellSound:
    """The terminal bell: one BEL per beep of the pattern."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    def play(self, tone: str) -> None:
        beeps = sum(1 for freq, _ in PATTERNS.get(tone, ()) if freq)
        if beeps:
            out = self.out or sys.stderr
            out.write("\a" * beeps)
            out.flush()


class NullSound:
    def play(self, tone: str) -> None:
        pass


class RecordingSound:
    """Keeps every tone played, for tests."""

    def __init__(self) -> None:
        self.played: list[str] = []

    def play(self, tone: str) -> None:
        self.played.append(tone)


def alsa_playback_device() -> bool:
    """True when ALSA lists a playback device (/dev/snd/pcmC*D*p)."""
    snd = Path("/dev/snd")
    return snd.is_dir() and any(p.name.startswith("pcm") and p.name.endswith("p") for p in snd.iterdir())


def make_sound(name: str) -> Sound:
    """`auto` (aplay where a device exists, else the bell), `aplay`, `bell` or `none`."""
    if name == "auto":
        if shutil.which("aplay") and alsa_playback_device():
            return AplaySound()
        return BellSound()
    if name == "aplay":
        return AplaySound()
    if name == "bell":
        return BellSound()
    if name == "none":
        return NullSound()
    raise ValueError(f"unknown sound {name!r}: auto, aplay, bell or none")
