"""`python -m services.points`: run one instance of the points service (settings from TOWNTIP_* variables)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from services.points.app import PointsService
from towntip.kernel import runtime
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.telemetry import setup_tracing


async def _main() -> int:
    settings = ServiceSettings(service="points")
    setup_tracing("points", settings.trace_export, node_id=settings.node_id)
    svc = PointsService(settings)
    await svc.start()
    runtime.settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(stop.wait())
    failed = asyncio.ensure_future(svc.wait_failed())
    await asyncio.wait({waiter, failed}, return_when=asyncio.FIRST_COMPLETED)
    await svc.stop()
    return 1 if failed.done() and not waiter.done() else 0


def main() -> int:
    logging.basicConfig(
        level=ServiceSettings(service="points").log_level,
        format="%(asctime)s %(levelname)s points %(name)s: %(message)s",
    )
    return runtime.run(_main())


if __name__ == "__main__":
    sys.exit(main())
