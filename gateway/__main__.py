"""`python -m gateway`: run the gateway with uvicorn (settings from TOWNTIP_* variables).

With `TOWNTIP_GATEWAY_WORKERS` above 1, uvicorn binds the port once and runs that many worker processes, each
building the app from the environment (`gateway.app:from_environment`): a node's pages use every core. The workers
share what must be shared through the node itself (sessions at identity, the portal key in the data dir) and the
throttles' counts through a file of the data dir (gateway/portal/session.py)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from gateway.app import create_app
from towntip.kernel.settings import GatewaySettings
from towntip.kernel.telemetry import setup_tracing


def main() -> int:
    settings = GatewaySettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s gateway %(name)s: %(message)s")
    if settings.gateway_workers > 1:
        uvicorn.run("gateway.app:from_environment", factory=True, workers=settings.gateway_workers,
                    host=settings.http_host, port=settings.http_port, log_level=settings.log_level.lower(),
                    timeout_graceful_shutdown=5, proxy_headers=False)
        return 0
    setup_tracing("gateway", settings.trace_export, node_id=settings.node_id)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=5, proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
