"""An ASGI app served by uvicorn inside a test's event loop, on a port of the test's choosing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


async def serve(app: Any, host: str, port: int) -> tuple[uvicorn.Server, asyncio.Task]:
    """Starts serving `app`; returns once uvicorn listens (the caller sets `should_exit` and awaits the task)."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            return server, task
        await asyncio.sleep(0.05)
    raise RuntimeError(f"uvicorn did not start on {host}:{port}")


@contextlib.asynccontextmanager
async def served(app: Any, host: str, port: int) -> AsyncIterator[None]:
    """`app` served on host:port for the block; uvicorn is told to exit after it and awaited (10 s at most)."""
    server, task = await serve(app, host, port)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
