"""`python -m gateway`: run the gateway with uvicorn (settings from TOWNTIP_* variables).

With `TOWNTIP_GATEWAY_WORKERS` above 1, uvicorn binds the port once and runs that many worker processes, each
building the app from the environment (`gateway.app:from_environment`): a node's pages use every core. The workers
share what must be shared through the node itself (sessions at identity, the portal key in the data dir) and the
throttles' counts through a file of the data dir (gateway/portal/session.py)."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from towntip.kernel.settings import GatewaySettings


def uvicorn_options(settings: GatewaySettings) -> dict[str, Any]:
    """uvicorn's options for the gateway: X-Forwarded-* believed from the trusted proxies only (none by default)."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {"host": settings.http_host, "port": settings.http_port, "log_level": settings.log_level.lower(),
            "timeout_graceful_shutdown": 5, "proxy_headers": bool(proxies),
            **({"forwarded_allow_ips": proxies} if proxies else {})}


def main() -> int:
    settings = GatewaySettings()
    serve = uvicorn_options(settings)
    if settings.gateway_workers > 1:  # each worker builds the app (uvicorn's factory)
        uvicorn.run("gateway.app:from_environment", factory=True, workers=settings.gateway_workers, **serve)
    else:
        from gateway.app import from_environment  # not in the workers' parent: it only watches them (~100 MB less)

        uvicorn.run(from_environment(), **serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
