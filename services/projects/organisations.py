"""Organisations (municipal departments, companies of any size or industry) and their members. No NATS, no commits.

Who may do what:
- a department is registered by municipal staff (role `staff`); a company by anyone logged in; the one who
  registers it becomes its admin;
- an organisation's admins change its profile and add or remove members (by global handle, name@home);
- its members, staff and the secretariat see who belongs to it; everyone sees its public profile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects.common import audit, aware, diff, new_uuid, roles_of
from services.projects.models import bus, memberships, organisations
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor

PROFILE = ("name", "size", "industry", "fields", "expertise", "website")


def _profile(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in PROFILE}


async def _row(session: AsyncSession, org_id: str) -> Any:
    row = (await session.execute(select(organisations).where(organisations.c.id == org_id))).first()
    if row is None:
        raise c.ORG_NOT_FOUND(f"no organisation {org_id}")
    return row


async def _members(session: AsyncSession, org_id: str) -> list[c.Member]:
    rows = await session.execute(
        select(memberships).where(memberships.c.org_id == org_id)
        .order_by(memberships.c.role, memberships.c.added_at, memberships.c.global_handle))
    return [c.Member(global_handle=r.global_handle, role=r.role, added_at=aware(r.added_at)) for r in rows]


async def _out(session: AsyncSession, row: Any, actor: Actor | None) -> c.Org:
    my_role = None
    members = None
    if actor is not None:
        my_role = (await roles_of(session, actor.global_handle)).get(row.id)
        if my_role is not None or actor.has("staff", "secretariat"):
            members = await _members(session, row.id)
    return c.Org(id=row.id, origin_node=row.origin_node, kind=row.kind, name=row.name, size=row.size,
                 industry=row.industry, fields=list(row.fields or []), expertise=row.expertise, website=row.website,
                 created_at=aware(row.created_at), updated_at=aware(row.updated_at), members=members,
                 my_role=my_role)


def _event(row: Any, cls: type[c.OrganisationRegistered]) -> c.OrganisationRegistered:
    return cls(id=row.id, origin_node=row.origin_node, kind=row.kind, name=row.name, size=row.size,
               industry=row.industry, fields=list(row.fields or []))


async def create(*, session: AsyncSession, data: c.OrgCreate, node: str, now: datetime | None = None) -> c.Org:
    actor = data.actor
    if data.kind == "department" and not actor.has("staff"):
        raise c.ORG_DEPARTMENT_STAFF_ONLY("only municipal staff register a department")
    now = now or utcnow()
    org_id = new_uuid()
    profile = data.model_dump(include=set(PROFILE))
    stmt = (
        db.insert_on_conflict(session, organisations)
        .values(id=org_id, origin_node=node, kind=data.kind, created_at=now, updated_at=now, **profile)
        .on_conflict_do_nothing(index_elements=["origin_node", "kind", "name"])
        .returning(organisations.c.id)
    )
    if (await session.execute(stmt)).first() is None:
        raise c.ORG_NAME_TAKEN(f"a {data.kind} named {data.name!r} is already registered here")
    await session.execute(memberships.insert().values(
        org_id=org_id, global_handle=actor.global_handle, role="admin", added_at=now, added_by=actor.global_handle))
    await audit(session, kind="org", subject_id=org_id, action="created", actor=actor, at=now,
                after={"kind": data.kind, **profile, "admin": actor.global_handle})
    row = await _row(session, org_id)
    await announce(session, bus, node=node, event=_event(row, c.OrganisationRegistered), at=now)
    return await _out(session, row, actor)


async def _require_admin(session: AsyncSession, org_id: str, actor: Actor) -> Any:
    row = await _row(session, org_id)
    if (await roles_of(session, actor.global_handle)).get(org_id) != "admin":
        raise c.ORG_ADMIN_ONLY(f"only an admin of {row.name!r} may change it")
    return row


async def update_profile(*, session: AsyncSession, data: c.OrgUpdate, node: str,
                         now: datetime | None = None) -> c.Org:
    row = await _require_admin(session, data.org_id, data.actor)
    now = now or utcnow()
    new = data.model_dump(include=set(PROFILE))
    before, after = diff(_profile(row), new)
    if not after:
        return await _out(session, row, data.actor)
    if "name" in after:
        taken = await session.execute(select(organisations.c.id).where(
            organisations.c.origin_node == row.origin_node, organisations.c.kind == row.kind,
            organisations.c.name == new["name"], organisations.c.id != row.id))
        if taken.first() is not None:
            raise c.ORG_NAME_TAKEN(f"a {row.kind} named {new['name']!r} is already registered here")
    await session.execute(update(organisations).where(organisations.c.id == row.id).values(updated_at=now, **new))
    await audit(session, kind="org", subject_id=row.id, action="updated", actor=data.actor, at=now,
                before=before, after=after)
    row = await _row(session, row.id)
    await announce(session, bus, node=node, event=_event(row, c.OrganisationChanged), at=now)
    return await _out(session, row, data.actor)


async def get(*, session: AsyncSession, org_id: str, actor: Actor | None) -> c.Org:
    return await _out(session, await _row(session, org_id), actor)


async def list_(*, session: AsyncSession, q: c.OrgListQuery) -> list[c.Org]:
    stmt = select(organisations).order_by(organisations.c.kind, organisations.c.name)
    if q.kind is not None:
        stmt = stmt.where(organisations.c.kind == q.kind)
    if q.member is not None:
        stmt = stmt.where(organisations.c.id.in_(
            select(memberships.c.org_id).where(memberships.c.global_handle == q.member.global_handle)))
    rows = [r for r in await session.execute(stmt) if q.field is None or q.field in (r.fields or [])]
    return [await _out(session, r, q.member) for r in rows]


async def add_member(*, session: AsyncSession, data: c.MemberAdd, now: datetime | None = None) -> c.Org:
    row = await _require_admin(session, data.org_id, data.actor)
    now = now or utcnow()
    stmt = (
        db.insert_on_conflict(session, memberships)
        .values(org_id=row.id, global_handle=data.global_handle, role=data.role, added_at=now,
                added_by=data.actor.global_handle)
        .on_conflict_do_nothing(index_elements=["org_id", "global_handle"])
        .returning(memberships.c.org_id)
    )
    if (await session.execute(stmt)).first() is None:
        raise c.ORG_ALREADY_MEMBER(f"{data.global_handle} is already a member of {row.name!r}")
    await audit(session, kind="org", subject_id=row.id, action="member_added", actor=data.actor, at=now,
                after={"member": data.global_handle, "role": data.role})
    return await _out(session, row, data.actor)


async def remove_member(*, session: AsyncSession, data: c.MemberRemove, now: datetime | None = None) -> c.Org:
    row = await _require_admin(session, data.org_id, data.actor)
    now = now or utcnow()
    roles = {m.global_handle: m.role for m in await _members(session, row.id)}
    if data.global_handle not in roles:
        raise c.ORG_NOT_MEMBER(f"{data.global_handle} is not a member of {row.name!r}")
    admins = sum(1 for r in roles.values() if r == "admin")
    if roles[data.global_handle] == "admin" and admins <= 1:
        raise c.ORG_LAST_ADMIN("an organisation keeps at least one admin: add another admin first")
    await session.execute(delete(memberships).where(memberships.c.org_id == row.id,
                                                    memberships.c.global_handle == data.global_handle))
    await audit(session, kind="org", subject_id=row.id, action="member_removed", actor=data.actor, at=now,
                before={"member": data.global_handle, "role": roles[data.global_handle]})
    return await _out(session, row, data.actor)


async def list_page(*, session: AsyncSession, q: c.OrgListQuery) -> c.OrgList:
    """The endpoint's answer: the list in its reply model."""
    return c.OrgList(orgs=await list_(session=session, q=q))
