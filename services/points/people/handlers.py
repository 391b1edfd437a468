"""NATS adapter of the people directory: the durable consumer of this node's identity events (points-people on
EVT_<NODE>_IDENTITY, applied once through the kernel's inbox)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.people import service
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, own_event

CONSUMER = "points-people"
PROFILE_EVENTS = ("UserRegistered", "ProfileChanged")
EVENTS = (*PROFILE_EVENTS, "UserDeleted")


def consumer_spec(node: str, service: str) -> ConsumerSpec:
    return ConsumerSpec(stream=subjects.evt_stream(node, "identity"), durable=CONSUMER,
                        filter_subject=subjects.evt_all(node, "identity"), service=service, node=node, batch=64)


class IdentityEventsHandler:
    """Applies identity's events about this node's own people to the directory."""

    def __init__(self, node: str) -> None:
        self.node = node

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        key, type_, data, at = own_event(msg, self.node, "identity")
        if type_ not in EVENTS:
            return f"identity:{key}", {"type": "ignored"}
        handle = data.get("global_handle") if isinstance(data, dict) else None
        if not isinstance(handle, str) or not handle.endswith(f"@{self.node}") or len(handle) > 64:
            raise Rejected(f"{type_} names no person of this node: {handle!r}", code=403)
        item = {"type": type_, "handle": handle, "at": at}
        if type_ in PROFILE_EVENTS:
            name = data.get("display_name")
            district = data.get("district") or ""
            uid = data.get("user_id")
            if not isinstance(name, str) or not isinstance(district, str):
                raise Rejected(f"{type_} without a display name or with a malformed district")
            item |= {"display_name": name[:100] or handle, "district": district.strip()[:100],
                     "user_id": uid if isinstance(uid, str) and 8 <= len(uid) <= 64 else None}
        return f"identity:{key}", item

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        await service.apply_identity_events(session, [d.item for d in deliveries if not d.duplicate])
        return [None] * len(deliveries)
