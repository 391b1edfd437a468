"""Health of a node as the gateway sees it: which services answer $SRV.PING, and what the supervisor says.

Pure NATS helpers (no FastAPI); the service ping itself is towntip/kernel/bus/ping.py, which the supervisor uses too.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from nats.aio.client import Client as NATS

from towntip.kernel.bus import subjects
from towntip.kernel.bus.ping import PING_WINDOW, ping_services  # shared with the node's supervisor

NODE_SERVICE = "node"  # the supervisor answers svc.<node>.node.status
STATUS_ENDPOINT = "status"


def node_status_subject(node: str) -> str:
    return subjects.svc(node, NODE_SERVICE, STATUS_ENDPOINT)


async def node_status(nc: NATS, node: str, *, timeout: float = PING_WINDOW) -> dict[str, Any] | None:
    """What the supervisor (`towntip node up`) says about its processes, or None if no supervisor answers."""
    if not nc.is_connected:
        return None
    try:
        msg = await nc.request(node_status_subject(node), b"", timeout=timeout)
        body = json.loads(msg.data)
    except Exception:  # noqa: BLE001 - no supervisor (production, tests): not an error
        return None
    return body if isinstance(body, dict) else None


async def check(nc: NATS | None, node: str, expected: list[str]) -> dict[str, Any]:
    """The health report: {"status": "ok"|"down", "node", "nats", "services", "down", ["processes"]}."""
    started = time.monotonic()
    connected = nc is not None and nc.is_connected
    if nc is not None and connected:
        pings, status = await asyncio.gather(ping_services(nc, expected, node), node_status(nc, node))
    else:
        pings, status = {name: [] for name in expected}, None
    down = [] if connected else ["nats"]
    down += [name for name in expected if not pings[name]]
    report: dict[str, Any] = {
        "status": "down" if down else "ok",
        "node": node,
        "nats": "connected" if connected else "disconnected",
        "services": {
            name: {"up": bool(pings[name]), "instances": len(pings[name]),
                   "versions": sorted({str(p.get("version", "")) for p in pings[name]})}
            for name in expected
        },
        "down": down,
    }
    if status is not None:
        report["processes"] = {
            p["name"]: {k: v for k, v in p.items() if k != "name"}
            for p in status.get("processes", []) if isinstance(p, dict) and "name" in p
        }
    report["checked_in_ms"] = round((time.monotonic() - started) * 1000, 1)
    return report
