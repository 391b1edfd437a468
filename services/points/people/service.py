"""The people directory (services/points/models_notebook.py): kept from the identity service's events, and linked to
user ids by the people the gateway vouches for.

The consumer (durable `points-people` on EVT_<NODE>_IDENTITY, applied once through the kernel's inbox) takes this
node's own identity events: UserRegistered and ProfileChanged carry the public profile (global handle, display name,
district); UserDeleted drops the person. An event older than the one already applied to a person changes nothing
(a redelivery after a failure may come late). identity's public profile has no user id: the directory learns it
from an `Actor` (link_actor), i.e. the first time the person uses a page that asks the points service about them.
If a later identity version puts `user_id` into its events, the consumer takes it from there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.people.models import people
from towntip.kernel import db
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, own_event
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware as _aware

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
        for d in deliveries:
            if d.duplicate or d.item["type"] == "ignored":
                continue
            e = d.item
            row = (await session.execute(select(people.c.profile_at).where(
                people.c.global_handle == e["handle"]).with_for_update())).first()
            if row is not None and row.profile_at is not None and _aware(row.profile_at) >= e["at"]:
                continue  # an older event than what the directory already holds
            if e["type"] == "UserDeleted":
                await session.execute(delete(people).where(people.c.global_handle == e["handle"]))
                continue
            values = {"display_name": e["display_name"], "district": e["district"], "profile_at": e["at"]}
            if e["user_id"]:
                await _free_user_id(session, e["user_id"], e["handle"])
                values["user_id"] = e["user_id"]
            if row is None:
                await session.execute(people.insert().values(global_handle=e["handle"], **values))
            else:
                await session.execute(update(people).where(people.c.global_handle == e["handle"]).values(**values))
        return [None] * len(deliveries)


async def _free_user_id(session: AsyncSession, user_id: str, handle: str) -> None:
    """A user id belongs to one handle: a stale row holding it (an old link) lets go."""
    await session.execute(update(people).where(people.c.user_id == user_id, people.c.global_handle != handle)
                          .values(user_id=None))


async def link_actor(session: AsyncSession, actor: Actor) -> None:
    """The gateway vouches that `actor.user_id` is `actor.global_handle`: the directory records the link (and the
    person, if identity's event has not arrived yet). Runs in the caller's transaction."""
    now = utcnow()
    await _free_user_id(session, actor.user_id, actor.global_handle)
    ins = db.insert_on_conflict(session, people).values(
        global_handle=actor.global_handle, user_id=actor.user_id, display_name=actor.display_name, district="",
        profile_at=None, seen_at=now)
    await session.execute(ins.on_conflict_do_update(index_elements=["global_handle"],
                                                    set_={"user_id": actor.user_id, "seen_at": now}))


async def person(session: AsyncSession, user_id: str) -> Any:
    return (await session.execute(select(people).where(people.c.user_id == user_id))).first()
