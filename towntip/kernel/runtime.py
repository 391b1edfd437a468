"""How a service process runs its event loop: uvloop where it is installed (Linux, macOS), else asyncio's own.

uvloop cuts the loop's own overhead (socket writes, callbacks) that every NATS message and database round trip
pays; `TOWNTIP_EVENT_LOOP=asyncio` turns it off, for comparison or debugging.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    if os.environ.get("TOWNTIP_EVENT_LOOP", "auto") == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
