"""Health of a node as the gateway sees it: which services answer $SRV.PING, and what the supervisor says.

Pure NATS helpers (no FastAPI), so the supervisor can use the same service ping for readiness.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from towntip.kernel.bus import subjects

PING_WINDOW = 0.3  # seconds to collect $SRV.PING replies
NODE_SERVICE = "node"  # the supervisor answers svc.<node>.node.status
STATUS_ENDPOINT = "status"


def node_status_subject(node: str) -> str:
    return subjects.svc(node, NODE_SERVICE, STATUS_ENDPOINT)


async def ping_services(
    nc: NATS, names: list[str], node: str, *, window: float = PING_WINDOW
) -> dict[str, list[dict[str, Any]]]:
    """Ping each named service; returns {name: [ping replies of this node's instances]}.

    Replies are collected on one new inbox for up to `window` seconds, or until every name has answered once.
    Instances whose metadata names another node (a federation shares one subject space) are ignored.
    """
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    if not names or not nc.is_connected:
        return found
    wanted = set(names)
    all_seen = asyncio.Event()

    async def on_reply(msg: Msg) -> None:
        try:
            info = json.loads(msg.data)
        except ValueError:
            return
        if not isinstance(info, dict):
            return
        name = info.get("name")
        meta = info.get("metadata") or {}
        if name not in found or (isinstance(meta, dict) and meta.get("node", node) != node):
            return
        found[name].append(info)
        if all(found[n] for n in wanted):
            all_seen.set()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        for name in names:
            await nc.publish(f"$SRV.PING.{name}", b"", reply=inbox)
        await nc.flush(timeout=window)
        try:
            await asyncio.wait_for(all_seen.wait(), timeout=window)
        except TimeoutError:
            pass
    except Exception:  # noqa: BLE001 - a connection problem means: nobody answered
        pass
    finally:
        try:
            await sub.unsubscribe()
        except Exception:  # noqa: BLE001
            pass
    return found


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
    if connected:
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
