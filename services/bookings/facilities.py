"""Facilities (施設・設備): staff create or replace them whole; anyone reads them. No NATS and no commits here: the
adapter owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings.models import bus, facilities
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import bookings as c
from towntip.kernel.db import aware

# The FacilityPut fields kept in the JSON `spec` column (the others are columns of their own).
SPEC_FIELDS = ("hours", "closed_weekdays", "closed_dates", "closed_yearly", "closed_on_holidays", "layout",
               "buffer_minutes", "rules")


def view(row: Any) -> c.Facility:
    return c.Facility.model_validate({
        "id": row.id, "name_ja": row.name_ja, "name_en": row.name_en, "kind": row.kind, "address": row.address,
        "lat": row.lat, "lon": row.lon, "capacity": row.capacity, "accessibility": row.accessibility,
        "note": row.note, **row.spec, "created_at": aware(row.created_at), "updated_at": aware(row.updated_at)})


def check(data: c.FacilityPut) -> None:
    """What the models cannot see field by field: hours that open before they close, fixed blocks in order, apart
    and inside the hours of at least one open day, and rules that do not contradict each other."""
    for day, hours in data.hours.items():
        if not hours.open < hours.close:
            raise c.FACILITY_INVALID(f"{day}: open {hours.open:%H:%M} is not before close {hours.close:%H:%M}")
    if isinstance(data.layout, c.Blocks):
        blocks = data.layout.blocks
        for block in blocks:
            if not block.start < block.end:
                raise c.FACILITY_INVALID(f"block {block.name_en}: its start is not before its end")
        for a, b in zip(blocks, blocks[1:], strict=False):
            if b.start < a.end:
                raise c.FACILITY_INVALID(f"blocks {a.name_en} and {b.name_en} are not in order of time, or overlap")
    open_days = [d for d in data.hours if d not in data.closed_weekdays]
    if not open_days:
        raise c.FACILITY_INVALID("the facility is open on no weekday: give hours for a day not in closed_weekdays")
    if isinstance(data.layout, c.Blocks):
        for block in data.layout.blocks:
            if not any(data.hours[d].open <= block.start and block.end <= data.hours[d].close for d in open_days):
                raise c.FACILITY_INVALID(f"block {block.name_en} ({block.start:%H:%M}-{block.end:%H:%M}) is outside "
                                         "the opening hours of every open day")
    if data.rules.max_minutes is not None and isinstance(data.layout, c.Grid) \
            and data.rules.max_minutes < data.layout.step_minutes:
        raise c.FACILITY_INVALID("max_minutes is shorter than one step of the grid: nothing could be booked")


async def put(session: AsyncSession, *, node: str, data: c.FacilityPut, now: datetime) -> c.Facility:
    if data.actor is not None and not data.actor.has("staff", "secretariat"):
        raise c.FACILITY_STAFF_ONLY("only staff create and change facilities")
    check(data)
    values = {
        "name_ja": data.name_ja, "name_en": data.name_en, "kind": data.kind, "address": data.address,
        "lat": data.lat, "lon": data.lon, "capacity": data.capacity, "accessibility": data.accessibility,
        "note": data.note, "spec": data.model_dump(mode="json", include=set(SPEC_FIELDS)), "active": True,
        "updated_at": now,
    }
    found = (await session.execute(select(facilities.c.id).where(facilities.c.id == data.id)
                                   .with_for_update())).first()
    if found is None:
        await session.execute(insert(facilities).values(id=data.id, created_at=now, **values))
    else:
        await session.execute(update(facilities).where(facilities.c.id == data.id).values(**values))
    await announce(session, bus, node=node, at=now, event=c.FacilityUpdated(
        facility_id=data.id, name_ja=data.name_ja, created=found is None, at=now))
    return await get(session, facility_id=data.id)


async def row_of(session: AsyncSession, facility_id: str) -> Any:
    row = (await session.execute(select(facilities).where(facilities.c.id == facility_id,
                                                          facilities.c.active.is_(True)))).first()
    if row is None:
        raise c.FACILITY_NOT_FOUND(f"no facility {facility_id!r} on this node")
    return row


async def get(session: AsyncSession, *, facility_id: str) -> c.Facility:
    return view(await row_of(session, facility_id))


async def list_(session: AsyncSession, *, q: c.FacilityListQuery) -> c.FacilityList:
    stmt = select(facilities).where(facilities.c.active.is_(True))
    if q.kind:
        stmt = stmt.where(facilities.c.kind == q.kind)
    rows = (await session.execute(stmt.order_by(facilities.c.id))).all()
    return c.FacilityList([view(r) for r in rows])
