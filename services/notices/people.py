"""The people the service delivers to: this node's residents, from the identity service's events (UserRegistered,
ProfileChanged, UserDeleted on EVT_<NODE>_IDENTITY), applied once through the kernel's inbox. A deleted account's
inbox, messages and life-stage answers are deleted with it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices import calendar_tokens, life, towns
from services.notices.models import inbox_entries, items, people
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, own_event
from towntip.kernel.contracts import identity as ic
from towntip.kernel.db import insert_on_conflict

CONSUMER = "notices-people"
JOINED = (ic.UserRegistered.type_name(), ic.ProfileChanged.type_name())


def consumer_spec(node: str, service: str) -> ConsumerSpec:
    return ConsumerSpec(stream=subjects.evt_stream(node, "identity"), durable=CONSUMER,
                        filter_subject=subjects.evt_all(node, "identity"), service=service, node=node)


async def join(session: AsyncSession, *, handle: str, user_id: str | None, at: datetime) -> None:
    stmt = insert_on_conflict(session, people).values(global_handle=handle, user_id=user_id, joined_at=at)
    await session.execute(stmt.on_conflict_do_update(index_elements=["global_handle"], set_={"user_id": user_id}))


async def forget(session: AsyncSession, handle: str) -> None:
    """Everything of the person here: their inbox rows, the messages addressed to them alone, their answers."""
    mine = select(inbox_entries.c.item_id).where(inbox_entries.c.person == handle,
                                                 inbox_entries.c.kind == "message")
    own_items = list((await session.execute(mine)).scalars())
    await session.execute(delete(inbox_entries).where(inbox_entries.c.person == handle))
    if own_items:
        await session.execute(delete(items).where(items.c.id.in_(own_items), items.c.kind == "message"))
    await life.forget(session, handle)
    await calendar_tokens.forget(session, handle)  # the private calendar URL (issue 18 point 5)
    await towns.forget(session, handle)  # the towns they followed (issue 18 point 3)
    await session.execute(delete(people).where(people.c.global_handle == handle))


class PeopleHandler:
    """This node's own identity events only: a node speaks for its own people."""

    def __init__(self, node: str) -> None:
        self.node = node

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        key, type_, data, at = own_event(msg, self.node, "identity")
        key = f"identity:{key}"
        try:
            if type_ in JOINED:
                joined = ic.UserRegistered.parse(data)
                item: dict[str, Any] = {"join": joined.global_handle, "user_id": joined.user_id, "at": at}
            elif type_ == ic.UserDeleted.type_name():
                item = {"forget": ic.UserDeleted.parse(data).global_handle}
            else:
                return key, {}
        except ValidationError:
            raise Rejected(f"{type_} that does not fit its contract") from None
        handle = item.get("join") or item.get("forget") or ""
        if not handle.endswith(f"@{self.node}") or len(handle) > 64:
            raise Rejected(f"identity of {self.node} names a person of another node: {handle!r}", code=403)
        return key, item

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        for d in deliveries:
            if d.duplicate:
                continue
            if d.item.get("join"):
                await join(session, handle=d.item["join"], user_id=d.item["user_id"], at=d.item["at"])
            elif d.item.get("forget"):
                await forget(session, d.item["forget"])
        return [None] * len(deliveries)
