"""Registered groups (団体登録): a person applies as the group's representative; staff approve, reject, suspend or
reinstate; an approved group books as the group (the representative or the members they named).
No NATS and no commits here."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings.models import bus, group_members, groups
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_lottery as lc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware

# decision -> (the states it applies to, the state it leads to)
DECISIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "approve": (("pending",), "approved"),
    "reject": (("pending",), "rejected"),
    "suspend": (("approved",), "suspended"),
    "reinstate": (("suspended",), "approved"),
}


def is_staff(actor: Actor | None) -> bool:
    return actor is None or actor.has("staff", "secretariat")


def name_key(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


async def _members(session: AsyncSession, group_id: str) -> list[Any]:
    return list((await session.execute(select(group_members).where(group_members.c.group_id == group_id)
                                       .order_by(group_members.c.handle))).all())


async def view(session: AsyncSession, row: Any) -> lc.Group:
    members = await _members(session, row.id)
    return lc.Group(
        id=row.id, name=row.name, representative=row.representative, representative_name=row.representative_name,
        activity=row.activity, district=row.district, members=[m.handle for m in members],
        bookers=[m.handle for m in members if m.may_book], member_count=row.member_count, state=row.state,
        created_at=aware(row.created_at), decided_at=aware(row.decided_at), decided_by=row.decided_by,
        decision_note=row.decision_note)


async def row_of(session: AsyncSession, group_id: str, *, lock: bool = False) -> Any:
    stmt = select(groups).where(groups.c.id == group_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise lc.GROUP_NOT_FOUND(f"no group {group_id}")
    return row


async def may_book_for(session: AsyncSession, *, group_id: str, actor: Actor | None) -> Any:
    """The group's row when it is approved and the actor books for it (its representative, a named booker, or
    staff); else the refusal."""
    row = await row_of(session, group_id)
    if row.state != "approved":
        raise lc.GROUP_NOT_APPROVED(f"the group {row.name} is {row.state}: it books once staff approve it")
    if is_staff(actor):
        return row
    assert actor is not None
    if actor.global_handle == row.representative:
        return row
    member = (await session.execute(select(group_members.c.may_book).where(
        group_members.c.group_id == group_id, group_members.c.handle == actor.global_handle))).first()
    if member is None or not member.may_book:
        raise lc.GROUP_NOT_BOOKER(f"{actor.global_handle} is not named by the representative to book for {row.name}")
    return row


async def apply(session: AsyncSession, *, node: str, data: lc.GroupApply, now: datetime) -> lc.Group:
    rep = data.actor.global_handle
    members = list(dict.fromkeys(m for m in data.members if m != rep))
    strangers = [b for b in data.bookers if b not in members and b != rep]  # the representative books anyway
    if strangers:
        raise lc.GROUP_INVALID(f"bookers must be members of the group: {', '.join(strangers)}")
    if data.member_count < len(members) + 1:
        raise lc.GROUP_INVALID(f"member_count {data.member_count} is below the {len(members) + 1} people named "
                               "(the representative and the members)")
    key = name_key(data.name)
    taken = (await session.execute(select(groups.c.id).where(
        groups.c.name_key == key, groups.c.state.in_(("pending", "approved", "suspended"))))).first()
    if taken is not None:
        raise lc.GROUP_NAME_TAKEN(f"a group named {data.name!r} is registered or applying already")
    gid = new_id()
    await session.execute(insert(groups).values(
        id=gid, name=data.name, name_key=key, representative=rep, representative_user_id=data.actor.user_id,
        representative_name=data.actor.display_name, activity=data.activity, district=data.district,
        member_count=data.member_count, state="pending", created_at=now))
    if members:
        await session.execute(insert(group_members), [
            {"group_id": gid, "handle": m, "may_book": m in data.bookers} for m in members])
    await announce(session, bus, node=node, at=now, event=lc.GroupApplied(
        group_id=gid, name=data.name, representative=rep, at=now))
    return await view(session, await row_of(session, gid))


async def decide(session: AsyncSession, *, node: str, data: lc.GroupDecide, now: datetime) -> lc.Group:
    if not is_staff(data.actor):
        raise lc.GROUP_STAFF_ONLY("only staff approve, reject or suspend groups")
    row = await row_of(session, data.group_id, lock=True)
    before, after = DECISIONS[data.decision]
    if row.state not in before:
        raise lc.GROUP_BAD_DECISION(f"the group is {row.state}: {data.decision} applies to {' or '.join(before)}")
    by = data.actor.global_handle if data.actor is not None else c.OPERATOR
    await session.execute(update(groups).where(groups.c.id == row.id).values(
        state=after, decided_at=now, decided_by=by, decision_note=data.note or None))
    if data.decision == "approve":
        await announce(session, bus, node=node, at=now, event=lc.GroupRegistered(
            group_id=row.id, name=row.name, representative=row.representative, at=now))
    else:
        await announce(session, bus, node=node, at=now, event=lc.GroupStateChanged(
            group_id=row.id, name=row.name, representative=row.representative, state=after, note=data.note,
            at=now))
    return await view(session, await row_of(session, row.id))


async def get(session: AsyncSession, *, q: lc.GroupQuery) -> lc.Group:
    row = await row_of(session, q.group_id)
    if not is_staff(q.actor):
        assert q.actor is not None
        handles = {row.representative, *(m.handle for m in await _members(session, row.id))}
        if q.actor.global_handle not in handles:
            raise lc.GROUP_NOT_FOUND(f"no group {q.group_id}")
    return await view(session, row)


async def mine(session: AsyncSession, *, q: lc.GroupMineQuery) -> lc.GroupList:
    me = q.actor.global_handle
    member_of = select(group_members.c.group_id).where(group_members.c.handle == me)
    rows = (await session.execute(select(groups).where(or_(groups.c.representative == me, groups.c.id.in_(member_of)))
                                  .order_by(groups.c.created_at))).all()
    return lc.GroupList(groups=[await view(session, r) for r in rows])


async def list_(session: AsyncSession, *, q: lc.GroupListQuery) -> lc.GroupList:
    if not is_staff(q.actor):
        raise lc.GROUP_STAFF_ONLY("only staff list the groups")
    stmt = select(groups)
    if q.state is not None:
        stmt = stmt.where(groups.c.state == q.state)
    rows = (await session.execute(stmt.order_by(groups.c.created_at).limit(500))).all()
    return lc.GroupList(groups=[await view(session, r) for r in rows])



