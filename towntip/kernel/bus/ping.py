"""Which of a node's services answer `$SRV.PING` (nats.micro's discovery): the one service ping that the gateway's
/healthz and the node's supervisor (readiness of the processes it starts) both use. Pure NATS, no FastAPI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

PING_WINDOW = 0.3  # seconds to collect $SRV.PING replies


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
        await nc.flush(timeout=window)  # type: ignore[arg-type]  # nats-py annotates int; it waits float seconds
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
