"""Profiles of people whose home is another node, kept current from that node's events.

When this node first links a person from node A (a federated login), it asks JetStream to source A's identity
events into FED_<this node> (over the leafnodes, through A's JetStream domain). This consumer applies them to the
linked local profiles: a public profile change at home reaches every node where the person is known, and a node
that was cut off catches up when the link returns (JetStream keeps each source's position). Applied once (the
kernel's inbox); a node may speak only for its own people (`name@A` changes only when A says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from identity.models import home_tokens, sessions, users
from towntip.kernel.bus.consumer import Delivery, Outcome, Rejected, peer_event
from towntip.kernel.bus.envelope import utcnow

PROFILE_EVENTS = ("UserRegistered", "ProfileChanged")
FIELDS = ("display_name", "nickname", "district", "interests")


class PeerProfileHandler:
    def __init__(self, node: str) -> None:
        self.node = node

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        key, peer, type_, data = peer_event(msg, self.node, "identity")
        handle = str(data.get("global_handle", "")) if isinstance(data, dict) else ""
        if not handle.endswith(f"@{peer}"):
            raise Rejected(f"{peer!r} may speak only for its own people, not {handle!r}", code=403)
        return f"{peer}:{key}", {"peer": peer, "type": type_, "handle": handle, "data": data}

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        out: list[Outcome] = []
        for d in deliveries:
            if d.duplicate:
                out.append(None)
                continue
            e = d.item
            where = (users.c.handle == e["handle"], users.c.home_node == e["peer"])
            if e["type"] in PROFILE_EVENTS:
                values = {k: e["data"][k] for k in FIELDS if k in e["data"]}
                values = _clip(values)
                # An event that repeats what the profile says changes nothing, not even `updated_at`: the person's
                # UserRegistered reaches this node after the first login here already linked the profile from the
                # ID token, and rewriting the row then would report a change that never happened.
                row = (await session.execute(select(*(users.c[k] for k in values)).where(*where))).first() \
                    if values else None
                if row is not None and any(getattr(row, k) != v for k, v in values.items()):
                    await session.execute(update(users).where(*where).values(**values, updated_at=utcnow()))
            elif e["type"] == "UserDeleted":
                row = (await session.execute(select(users.c.id).where(*where))).first()
                if row is not None:
                    await session.execute(delete(home_tokens).where(home_tokens.c.user_id == row.id))
                    await session.execute(delete(sessions).where(sessions.c.user_id == row.id))
                    await session.execute(delete(users).where(users.c.id == row.id))
            out.append(None)
        return out


def _clip(values: dict[str, Any]) -> dict[str, Any]:
    """What a peer says is checked like input: strings of the lengths our columns hold, a list of codes."""
    out: dict[str, Any] = {}
    for k, limit in (("display_name", 100), ("nickname", 50), ("district", 100)):
        if isinstance(values.get(k), str):
            out[k] = values[k][:limit]
    if isinstance(values.get("interests"), list):
        out["interests"] = [str(x)[:10] for x in values["interests"][:43]]
    return out
