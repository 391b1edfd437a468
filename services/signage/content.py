"""Content items (映像・画像): uploaded by staff in parts, checked by their bytes (never their name), images decoded
and re-encoded by Pillow (which drops EXIF, GPS and every other metadata) and fitted to the largest screen; videos
decoded, written again without metadata and scaled to the largest screen by PyAV (services/signage/video.py). An
item plays only once a second staff member approved it, and only inside its validity. No NATS, no commits."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import uuid
from datetime import datetime
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage import blobs, state, video
from services.signage.models import blobs as blob_table
from services.signage.models import bus, items, screens
from services.signage.screens import require_staff
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts.signage_federation import ContentOfferWithdrawn
from towntip.kernel.db import aware

IMAGE_PIXELS_MAX = 50_000_000  # a bigger image is refused before it is decoded (a decompression bomb)
DEFAULT_BOX = (1920, 1080)  # images are fitted into the largest registered screen, or this
JPEG_QUALITY = 85
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def _upload_key(upload_id: str) -> str:
    """Parts wait in the blobs table under this key (never a sha256: those are 64 hex digits)."""
    return f"upload:{upload_id}"


def sniff(head: bytes) -> tuple[c.ItemKind, str] | None:
    """(kind, MIME type) from a file's first bytes, or None for anything else."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    ):
        return "image", ""
    if head[4:8] == b"ftyp":
        return "video", "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:64]:
        return "video", "video/webm"
    return None


def view(row: Any) -> c.ContentItem:
    return c.ContentItem(
        id=row.id,
        kind=row.kind,
        title=row.title,
        mime=row.mime,
        sha256=row.sha256,
        bytes=row.bytes,
        duration_s=row.duration_s,
        width=row.width,
        height=row.height,
        valid_from=aware(row.valid_from),
        valid_until=aware(row.valid_until),
        status=row.status,
        source=row.source,
        created_by=row.created_by,
        created_at=aware(row.created_at),
        approved_by=row.approved_by,
        approved_at=aware(row.approved_at),
        origin_node=row.origin_node,
        offered=row.offered,
    )


async def upload_part(session: AsyncSession, *, data: c.UploadPart) -> c.UploadProgress:
    """Keep one part of a file being uploaded (sent again, it replaces itself)."""
    require_staff(data.actor)
    try:
        raw = base64.b64decode(data.data_b64, validate=True)
    except (binascii.Error, ValueError):
        raise c.UPLOAD_BROKEN("a part is not base64") from None
    if len(raw) > c.CHUNK_MAX:
        raise c.UPLOAD_TOO_LARGE(f"a part holds at most {c.CHUNK_MAX} bytes")
    key = _upload_key(data.upload_id)
    await session.execute(delete(blob_table).where(blob_table.c.sha256 == key, blob_table.c.seq == data.seq))
    await session.execute(blob_table.insert().values(sha256=key, seq=data.seq, data=raw))
    parts, size = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(func.length(blob_table.c.data)), 0)).where(
                blob_table.c.sha256 == key
            )
        )
    ).one()
    if size > c.VIDEO_MAX_BYTES:
        raise c.UPLOAD_TOO_LARGE(f"the upload is over {c.VIDEO_MAX_BYTES} bytes")
    return c.UploadProgress(upload_id=data.upload_id, parts=int(parts), bytes=int(size))


async def _screen_box(session: AsyncSession) -> tuple[int, int]:
    row = (await session.execute(select(func.max(screens.c.width), func.max(screens.c.height)))).one()
    return (row[0] or DEFAULT_BOX[0], row[1] or DEFAULT_BOX[1])


def clean_image(raw: bytes, box: tuple[int, int]) -> tuple[bytes, str, int, int]:
    """The image decoded, turned upright, fitted into `box` and encoded again with no metadata at all:
    (bytes, MIME type, width, height)."""
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            if probe.format not in IMAGE_TYPES:
                raise c.UPLOAD_TYPE(f"{probe.format} images are not taken")
            if probe.width * probe.height > IMAGE_PIXELS_MAX:
                raise c.UPLOAD_TOO_LARGE(f"{probe.width}x{probe.height} pixels is over {IMAGE_PIXELS_MAX}")
            probe.verify()
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise c.UPLOAD_BROKEN("the image could not be decoded") from None
    upright.thumbnail(box, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if upright.mode in ("RGBA", "LA") or (upright.mode == "P" and "transparency" in upright.info):
        upright.convert("RGBA").save(out, "PNG", optimize=True)
        mime = "image/png"
    else:
        upright.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        mime = "image/jpeg"
    return out.getvalue(), mime, upright.width, upright.height


async def create(session: AsyncSession, *, node: str, data: c.ContentCreate, now: datetime) -> c.ContentItem:
    """The uploaded file as a pending item (its parts removed)."""
    require_staff(data.actor)
    if data.valid_until is not None and data.valid_until <= data.valid_from:
        raise c.VALIDITY("valid_until must be after valid_from")
    key = _upload_key(data.upload_id)
    seqs = [r.seq for r in await session.execute(select(blob_table.c.seq).where(blob_table.c.sha256 == key))]
    if sorted(seqs) != list(range(data.parts)):
        raise c.UPLOAD_INCOMPLETE(f"expected parts 0..{data.parts - 1}, have {len(seqs)}")
    raw = await blobs.whole(session, key)
    await session.execute(delete(blob_table).where(blob_table.c.sha256 == key))
    sniffed = sniff(raw[:64])
    if sniffed is None:
        raise c.UPLOAD_TYPE("the bytes are not those of a JPEG, PNG, GIF or WebP image, nor an MP4 or WebM video")
    kind, mime = sniffed
    width = height = None
    if kind == "image":
        if len(raw) > c.IMAGE_MAX_BYTES:
            raise c.UPLOAD_TOO_LARGE(f"an image is at most {c.IMAGE_MAX_BYTES} bytes")
        raw, mime, width, height = clean_image(raw, await _screen_box(session))
    elif len(raw) > c.VIDEO_MAX_BYTES:
        raise c.UPLOAD_TOO_LARGE(f"a video is at most {c.VIDEO_MAX_BYTES} bytes")
    else:  # decoded and encoded off the event loop: other requests go on meanwhile
        raw, width, height = await asyncio.to_thread(video.clean, raw, mime, await _screen_box(session))
    digest = await blobs.put(session, raw)
    item_id = str(uuid.uuid4())
    await session.execute(
        items.insert().values(
            id=item_id,
            kind=kind,
            title=data.title,
            mime=mime,
            sha256=digest,
            bytes=len(raw),
            duration_s=data.duration_s,
            valid_from=data.valid_from,
            valid_until=data.valid_until,
            status="pending",
            source="upload",
            width=width,
            height=height,
            created_by=data.actor.global_handle if data.actor else None,
            created_at=now,
            updated_at=now,
            offered=data.offered,
        )
    )
    await announce(session, bus, c.ContentAdded(item_id=item_id, kind=kind, title=data.title), node=node, at=now)
    return await get(session, data=c.ItemAction(item_id=item_id, actor=data.actor))


async def _row(session: AsyncSession, item_id: str) -> Any:
    row = (await session.execute(select(items).where(items.c.id == item_id))).first()
    if row is None:
        raise c.ITEM_NOT_FOUND(f"no item {item_id}")
    return row


async def get(session: AsyncSession, *, data: c.ItemAction) -> c.ContentItem:
    require_staff(data.actor)
    return view(await _row(session, data.item_id))


async def list_(session: AsyncSession, *, data: c.ContentListQuery) -> c.ContentList:
    require_staff(data.actor)
    q = select(items).order_by(items.c.created_at.desc(), items.c.id)
    if data.status:
        q = q.where(items.c.status == data.status)
    return c.ContentList(items=tuple(view(r) for r in await session.execute(q)))


async def approve(session: AsyncSession, *, node: str, data: c.ItemAction, now: datetime) -> c.ContentItem:
    """A second staff member's approval: from then on the item plays inside its validity."""
    require_staff(data.actor)
    row = await _row(session, data.item_id)
    if row.status != "pending":
        raise c.ITEM_STATE(f"the item is {row.status}, not pending")
    who = data.actor.global_handle if data.actor else None
    if who is not None and who == row.created_by:
        raise c.SAME_APPROVER("the uploader cannot approve their own item: ask a colleague")
    await _set(session, row.id, now, status="approved", approved_by=who, approved_at=now)
    await announce(session, bus, c.ContentApproved(item_id=row.id, approved_by=who), node=node, at=now)
    return view(await _row(session, row.id))


async def reject(session: AsyncSession, *, data: c.ItemAction, now: datetime) -> c.ContentItem:
    require_staff(data.actor)
    row = await _row(session, data.item_id)
    if row.status != "pending":
        raise c.ITEM_STATE(f"the item is {row.status}, not pending")
    await _set(session, row.id, now, status="rejected")
    return view(await _row(session, row.id))


async def withdraw(session: AsyncSession, *, node: str, data: c.ItemAction, now: datetime) -> c.ContentItem:
    """Off every screen at once (the pusher tells them after the commit); an offer to other towns ends with it."""
    require_staff(data.actor)
    row = await _row(session, data.item_id)
    if row.status == "withdrawn":
        raise c.ITEM_STATE("the item is withdrawn already")
    await _set(session, row.id, now, status="withdrawn")
    if row.offered:  # services/signage/federation.py: the member towns are told
        await _set(session, row.id, now, offered=False)
        await announce(session, bus, ContentOfferWithdrawn(item_id=row.id, origin_node=node), node=node, at=now)
    return view(await _row(session, row.id))


async def _set(session: AsyncSession, item_id: str, now: datetime, **values: Any) -> None:
    await session.execute(update(items).where(items.c.id == item_id).values(updated_at=now, **values))
    await state.bump(session)
