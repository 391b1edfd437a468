"""The screenshot a screen sends with its heartbeat: its own kiosk page rendered by a headless Chromium and shrunk.

A web page cannot capture itself, and reaching into the kiosk browser would need its DevTools port open on the
device; rendering the same page, in the same state (the player's), on the side shows staff what the glass shows
without either. The render opens the page with `?probe`, so it never confirms a slot: only the real kiosk browser
makes plays. No Chromium on the device: no screenshot, the heartbeat goes without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from towntip.kernel.contracts import signage as contract

log = logging.getLogger(__name__)
WIDTH = 480  # pixels across of the PNG sent: enough for staff to recognise the slide
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


async def capture(url: str, width: int, height: int, *, browser: str, timeout: float = 30.0) -> bytes | None:
    """A small PNG of the page at `url` laid out at width x height, or None if Chromium could not make one."""
    with tempfile.TemporaryDirectory(prefix="towntip-shot-", ignore_cleanup_errors=True) as tmp:
        out = Path(tmp) / "shot.png"
        args = [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--mute-audio",
            f"--user-data-dir={tmp}/profile",
            f"--window-size={width},{height}",
            "--virtual-time-budget=4000",
            f"--screenshot={out}",
            url,
        ]
        proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            log.info("screenshot: chromium did not finish within %.0fs", timeout)
            return None
        if not out.is_file():
            return None
        return shrink(out.read_bytes())


def shrink(png: bytes, max_bytes: int = contract.SCREENSHOT_MAX_BYTES) -> bytes | None:
    """The picture WIDTH pixels across in at most 256 colours; None if it is still too big for a heartbeat."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.thumbnail((WIDTH, WIDTH * img.height // max(img.width, 1)))
    buf = io.BytesIO()
    img.quantize(colors=256).save(buf, "PNG", optimize=True)
    data = buf.getvalue()
    return data if len(data) <= max_bytes else None
