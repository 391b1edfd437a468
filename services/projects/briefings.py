"""Briefings (説明会) of a theme and their registrations. No NATS, no commits here.

- the theme's managers (owner department's staff, the secretariat) schedule a briefing while the theme is
  published and in phase 2 (対話形成): a title, start and end, a venue or an online address (or both), a capacity;
- anyone sees a published theme's briefings and the seats left; the online address only those registered and the
  managers; the managers see who registered;
- a member of a company registers, for that company, one seat per person, before the briefing starts; they may
  cancel their own registration before it starts.

Capacity is kept by the database: a registration inserts its row and then raises `registered` with ONE conditional
UPDATE (`WHERE registered < capacity`). On PostgreSQL concurrent registrations queue on that row's lock and each
re-reads the count when it gets it (READ COMMITTED re-checks the WHERE on the newest row); SQLite has one writer.
An UPDATE that matches nothing means the briefing is full: the transaction is rolled back, the inserted row with
it. The CHECK (registered <= capacity) is the backstop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects import themes as theme_domain
from services.projects.common import audit, aware, new_uuid, roles_of
from services.projects.models import briefing_registrations, briefings, bus, organisations
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor


async def _registrations(session: AsyncSession, briefing_id: str) -> list[c.BriefingRegistration]:
    rows = await session.execute(
        select(briefing_registrations, organisations.c.name.label("org_name"))
        .join(organisations, organisations.c.id == briefing_registrations.c.org_id)
        .where(briefing_registrations.c.briefing_id == briefing_id)
        .order_by(briefing_registrations.c.registered_at, briefing_registrations.c.global_handle))
    return [_registration(r) for r in rows]


def _registration(r: Any) -> c.BriefingRegistration:
    return c.BriefingRegistration(global_handle=r.global_handle, display_name=r.display_name, org_id=r.org_id,
                                  org_name=r.org_name, registered_at=aware(r.registered_at))


async def _out(session: AsyncSession, row: Any, actor: Actor | None, manager: bool) -> c.Briefing:
    mine = None
    if actor is not None:
        found = (await session.execute(
            select(briefing_registrations, organisations.c.name.label("org_name"))
            .join(organisations, organisations.c.id == briefing_registrations.c.org_id)
            .where(briefing_registrations.c.briefing_id == row.id,
                   briefing_registrations.c.global_handle == actor.global_handle))).first()
        mine = _registration(found) if found is not None else None
    return c.Briefing(
        id=row.id, origin_node=row.origin_node, theme_id=row.theme_id, title=row.title,
        starts_at=aware(row.starts_at), ends_at=aware(row.ends_at), venue=row.venue, online=bool(row.online_url),
        online_url=row.online_url if (manager or mine is not None) else "", capacity=row.capacity,
        registered=row.registered, seats_left=row.capacity - row.registered, created_at=aware(row.created_at),
        my_registration=mine, registrations=await _registrations(session, row.id) if manager else None)


def _event(row: Any) -> c.BriefingSeatsChanged:
    return c.BriefingSeatsChanged(briefing_id=row.id, theme_id=row.theme_id, origin_node=row.origin_node,
                                  registered=row.registered, capacity=row.capacity)


async def create(*, session: AsyncSession, data: c.BriefingCreate, node: str,
                 now: datetime | None = None) -> c.Briefing:
    theme = await theme_domain._managed_row(session, data.theme_id, data.actor)
    now = now or utcnow()
    if theme.status != "published" or theme.phase != 2:
        raise c.THEME_WRONG_PHASE(f"briefings belong to phase 2 ({c.PHASES[2]}) of a published theme; the theme is in "
                              f"phase {theme.phase}")
    if data.starts_at <= now:
        raise c.BRIEFING_NOT_IN_FUTURE("a briefing is scheduled in the future")
    briefing_id = new_uuid()
    values = {"title": data.title, "starts_at": data.starts_at, "ends_at": data.ends_at, "venue": data.venue,
              "online_url": data.online_url, "capacity": data.capacity}
    await session.execute(insert(briefings).values(
        id=briefing_id, origin_node=node, theme_id=theme.id, registered=0, created_at=now,
        created_by=data.actor.global_handle, **values))
    await audit(session, kind="theme", subject_id=theme.id, action="briefing_scheduled", actor=data.actor, at=now,
                after={"briefing_id": briefing_id, **values})
    row = await _row(session, briefing_id)
    await announce(session, bus, node=node, at=now, event=c.BriefingScheduled(
        id=row.id, theme_id=row.theme_id, origin_node=row.origin_node, title=row.title,
        starts_at=aware(row.starts_at), ends_at=aware(row.ends_at), venue=row.venue, online=bool(row.online_url),
        capacity=row.capacity))
    return await _out(session, row, data.actor, True)


async def _row(session: AsyncSession, briefing_id: str) -> Any:
    row = (await session.execute(select(briefings).where(briefings.c.id == briefing_id))).first()
    if row is None:
        raise c.BRIEFING_NOT_FOUND(f"no briefing {briefing_id}")
    return row


async def _visible(session: AsyncSession, briefing_id: str, actor: Actor | None) -> tuple[Any, Any]:
    """The briefing and its theme, if the theme is there for this actor (a draft's briefing is not)."""
    row = await _row(session, briefing_id)
    try:
        theme = await theme_domain._theme_row(session, row.theme_id, actor)
    except errors.NotFound:
        raise c.BRIEFING_NOT_FOUND(f"no briefing {briefing_id}") from None
    return row, theme


async def list_(*, session: AsyncSession, theme_id: str, actor: Actor | None) -> c.BriefingList:
    theme = await theme_domain._theme_row(session, theme_id, actor)
    manager = await theme_domain.may_manage(session, actor, theme.owner_department_id)
    rows = await session.execute(
        select(briefings).where(briefings.c.theme_id == theme.id).order_by(briefings.c.starts_at, briefings.c.id))
    return c.BriefingList(theme_id=theme.id, may_manage=manager,
                          briefings=[await _out(session, r, actor, manager) for r in rows])


async def register(*, session: AsyncSession, data: c.BriefingRegister, node: str,
                   now: datetime | None = None) -> c.Briefing:
    row, theme = await _visible(session, data.briefing_id, data.actor)
    now = now or utcnow()
    org = (await session.execute(select(organisations).where(organisations.c.id == data.org_id))).first()
    if org is None or org.kind != "company" or data.org_id not in await roles_of(session, data.actor.global_handle):
        raise c.BRIEFING_NOT_A_MEMBER("register for a company or organisation you are a member of")
    if aware(row.starts_at) <= now:
        raise c.BRIEFING_STARTED("the briefing has already started: registration is closed")
    inserted = await session.execute(
        db.insert_on_conflict(session, briefing_registrations)
        .values(briefing_id=row.id, global_handle=data.actor.global_handle, display_name=data.actor.display_name,
                org_id=org.id, registered_at=now)
        .on_conflict_do_nothing(index_elements=["briefing_id", "global_handle"])
        .returning(briefing_registrations.c.briefing_id))
    if inserted.first() is None:
        raise c.BRIEFING_ALREADY_REGISTERED("you are already registered for this briefing")
    taken = await session.execute(
        update(briefings).where(briefings.c.id == row.id, briefings.c.registered < briefings.c.capacity)
        .values(registered=briefings.c.registered + 1).returning(briefings.c.registered))
    if taken.first() is None:
        # The inserted registration goes with the rollback of this transaction.
        raise c.BRIEFING_FULL(f"the briefing is full ({row.capacity} seats)")
    await audit(session, kind="briefing", subject_id=row.id, action="registered", actor=data.actor, at=now,
                after={"member": data.actor.global_handle, "org": org.name})
    row = await _row(session, row.id)
    await announce(session, bus, node=node, at=now, event=_event(row))
    return await _out(session, row, data.actor, await theme_domain.may_manage(session, data.actor,
                                                                              theme.owner_department_id))


async def cancel(*, session: AsyncSession, data: c.BriefingCancel, node: str,
                 now: datetime | None = None) -> c.Briefing:
    row, theme = await _visible(session, data.briefing_id, data.actor)
    now = now or utcnow()
    if aware(row.starts_at) <= now:
        raise c.BRIEFING_STARTED("the briefing has already started")
    gone = await session.execute(
        delete(briefing_registrations).where(briefing_registrations.c.briefing_id == row.id,
                                             briefing_registrations.c.global_handle == data.actor.global_handle)
        .returning(briefing_registrations.c.org_id))
    if gone.first() is None:
        raise c.BRIEFING_NOT_REGISTERED("you are not registered for this briefing")
    await session.execute(update(briefings).where(briefings.c.id == row.id)
                          .values(registered=briefings.c.registered - 1))
    await audit(session, kind="briefing", subject_id=row.id, action="cancelled", actor=data.actor, at=now,
                before={"member": data.actor.global_handle})
    row = await _row(session, row.id)
    await announce(session, bus, node=node, at=now, event=_event(row))
    return await _out(session, row, data.actor, await theme_domain.may_manage(session, data.actor,
                                                                              theme.owner_department_id))

