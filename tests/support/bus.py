"""Talking to services over the bus in tests: one endpoint call, and waiting until something has happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS

from towntip.kernel.bus import rpc, subjects

NODE = "testnode"  # the node id of conftest's nats_server


async def call(nc: NATS, endpoint: str, payload: Any = None, *, service: str = "points", node: str = NODE,
               timeout: float = 15.0) -> Any:
    """Calls `endpoint` of `service` on `node` (a dict or a pydantic model in, JSON out); a refusal raises the
    ServiceError rpc.call raises."""
    return await rpc.call(nc, subjects.svc(node, service, endpoint), payload, timeout=timeout)


async def wait_for(check: Callable[[], Awaitable[Any]], what: str | None = None, timeout: float = 20.0, *,
                   interval: float = 0.1, tolerate: tuple[type[BaseException], ...] = ()) -> Any:
    """Polls `check()` until it returns something truthy, and returns that. At the deadline it raises an
    AssertionError naming `what`, or, with no `what`, returns None (for `assert await wait_for(...), "why"`).
    Exceptions of the `tolerate` kinds count as "not yet" (a peer not reachable for a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = await check()
        except tolerate:
            got = None
        if got:
            return got
        if time.monotonic() >= deadline:
            assert what is None, f"timed out waiting for {what}"
            return None
        await asyncio.sleep(interval)
