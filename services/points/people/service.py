"""The people directory (services/points/people/models.py): kept from the identity service's events, and linked to
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

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.people.models import people
from services.points.volunteers import service as volunteers
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware as _aware


async def apply_identity_events(session: AsyncSession, items: Sequence[dict[str, Any]]) -> None:
    """Apply identity's events (as IdentityEventsHandler decoded them, none applied before) to the directory."""
    for e in items:
        if e["type"] == "ignored":
            continue
        row = (await session.execute(select(people.c.profile_at).where(
            people.c.global_handle == e["handle"]).with_for_update())).first()
        if row is not None and row.profile_at is not None and _aware(row.profile_at) >= e["at"]:
            continue  # an older event than what the directory already holds
        if e["type"] == "UserDeleted":
            await session.execute(delete(people).where(people.c.global_handle == e["handle"]))
            await volunteers.forget(session, e["handle"])
            continue
        values = {"display_name": e["display_name"], "district": e["district"], "profile_at": e["at"]}
        if e["user_id"]:
            await _free_user_id(session, e["user_id"], e["handle"])
            values["user_id"] = e["user_id"]
        if row is None:
            await session.execute(people.insert().values(global_handle=e["handle"], **values))
        else:
            await session.execute(update(people).where(people.c.global_handle == e["handle"]).values(**values))


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
