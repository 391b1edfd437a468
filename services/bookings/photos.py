"""A facility's photos (issue 17, point 1): staff add them (pictures the gateway prepared, checked again here) and
remove them; anyone lists and sees them. No NATS and no commits here."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import facilities
from services.bookings.models import facility_photos
from towntip.kernel import images
from towntip.kernel.contracts import bookings_photos as ph
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware
from towntip.kernel.errors import ServiceError

COLUMNS = [c for c in facility_photos.c if c.name not in ("image", "thumb", "created_by")]


def _staff(actor: Actor | None) -> str | None:
    if actor is not None and not actor.has("staff", "secretariat"):
        raise ph.PHOTO_STAFF_ONLY("only staff add and remove a facility's photos")
    return None if actor is None else actor.global_handle


def _picture(text: str, *, max_bytes: int, max_side: int) -> images.Picture:
    try:
        data = base64.b64decode(text, validate=True)
        return images.check_prepared(data, max_bytes=max_bytes, max_side=max_side)
    except (binascii.Error, ValueError) as exc:
        raise ph.PHOTO_BAD("the picture is not valid base64") from exc
    except ServiceError as exc:
        raise ph.PHOTO_BAD(exc.reason) from None


def view(row: Any) -> ph.FacilityPhoto:
    return ph.FacilityPhoto(id=row.id, facility_id=row.facility_id, position=row.position, alt_ja=row.alt_ja,
                            alt_en=row.alt_en, content_type=row.content_type, width=row.width, height=row.height,
                            created_at=aware(row.created_at))


async def add(session: AsyncSession, *, data: ph.PhotoAdd, now: datetime) -> ph.FacilityPhoto:
    who = _staff(data.actor)
    await facilities.row_of(session, data.facility_id)
    full = _picture(data.image, max_bytes=ph.FULL_BYTES, max_side=ph.FULL_SIDE)
    thumb = _picture(data.thumb, max_bytes=ph.THUMB_BYTES, max_side=ph.THUMB_SIDE)
    p = facility_photos.c
    count, last = (await session.execute(select(func.count(), func.max(p.position))
                                         .where(p.facility_id == data.facility_id))).one()
    if count >= ph.MAX_PHOTOS:
        raise ph.PHOTO_TOO_MANY(f"{data.facility_id} has {count} photos already (at most {ph.MAX_PHOTOS})")
    pid = uuid.uuid4().hex
    await session.execute(facility_photos.insert().values(
        id=pid, facility_id=data.facility_id, position=(last or 0) + 1, alt_ja=data.alt_ja, alt_en=data.alt_en,
        content_type=full.content_type, width=full.width, height=full.height, image=full.data, thumb=thumb.data,
        created_by=who, created_at=now))
    return view((await session.execute(select(*COLUMNS).where(p.id == pid))).one())


async def remove(session: AsyncSession, *, data: ph.PhotoRemove) -> ph.FacilityPhoto:
    _staff(data.actor)
    p = facility_photos.c
    row = (await session.execute(select(*COLUMNS).where(p.id == data.photo_id))).first()
    if row is None:
        raise ph.PHOTO_NOT_FOUND(f"no photo {data.photo_id}")
    await session.execute(delete(facility_photos).where(p.id == data.photo_id))
    return view(row)


async def list_(session: AsyncSession, *, q: ph.PhotoListQuery) -> ph.PhotoList:
    p = facility_photos.c
    rows = (await session.execute(select(*COLUMNS).where(p.facility_id == q.facility_id)
                                  .order_by(p.position))).all()
    return ph.PhotoList([view(r) for r in rows])


async def get(session: AsyncSession, *, q: ph.PhotoQuery) -> ph.PhotoData:
    p = facility_photos.c
    column = p.image if q.size == "full" else p.thumb
    row = (await session.execute(select(column.label("data"), p.content_type, p.created_at)
                                 .where(p.id == q.photo_id))).first()
    if row is None:
        raise ph.PHOTO_NOT_FOUND(f"no photo {q.photo_id}")
    return ph.PhotoData(content_type=row.content_type if q.size == "full" else "image/jpeg",
                        data=base64.b64encode(row.data).decode(), created_at=aware(row.created_at))
