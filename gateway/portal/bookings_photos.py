"""A facility's photos on the portal (issue 17, point 1): the pictures themselves (cached: a photo never changes
under its id), and the staff's page to add them (prepared here: checked by content, upright, metadata stripped,
resized; towntip/kernel/images.py) and remove them."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from gateway.deps import CsrfForm, CsrfUpload, StaffUser
from gateway.portal import session as ps
from gateway.portal.bookings import bookings_page, facility, photos_of, refusal_page
from gateway.portal.common import actor_of, bad_status, call, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors, images
from towntip.kernel.contracts import bookings_photos as ph
from towntip.kernel.contracts import identity as ic

router = APIRouter(include_in_schema=False)

add_words({
    "bp_photos": ("写真", "Photos"),
    "bp_title": ("施設の写真", "Facility photos"),
    "bp_add": ("写真を追加", "Add a photo"),
    "bp_file": ("写真のファイル（JPEG・PNG・WebP、10MBまで）", "Photo file (JPEG, PNG or WebP, up to 10 MB)"),
    "bp_alt_ja": ("写真の説明（音声読み上げ用、例: ホール全景、舞台側から）",
                  "What the photo shows, in Japanese (read aloud to blind visitors)"),
    "bp_alt_en": ("写真の説明（英語、任意）", "What the photo shows, in English (optional)"),
    "bp_privacy": ("人が写っていない写真を使ってください。位置情報などのデータは取り除いて保存します。",
                   "Use photos without people in them. Location and camera data are removed before saving."),
    "bp_none": ("写真はまだありません。", "No photos yet."),
    "bp_remove": ("削除", "Remove"),
    "bp_added": ("写真を追加しました。", "The photo was added."),
    "bp_removed": ("写真を削除しました。", "The photo was removed."),
    "bp_no_file": ("写真のファイルを選んでください。", "Choose a photo file."),
    "bp_of_max": ("枚（最大{n}枚）", " (at most {n})"),
})


@router.get("/facilities/{facility_id}/photos/{photo_id}")
async def photo(facility_id: str, photo_id: str, request: Request) -> Response:
    """One photo's picture (`?size=thumb` for the small one). Public: they are photos of public buildings."""
    size = "thumb" if request.query_params.get("size") == "thumb" else "full"
    try:
        got = ph.PhotoData.model_validate(await call(request, "bookings", ph.EP_PHOTO_GET,
                                                     ph.PhotoQuery(photo_id=photo_id, size=size)))
    except ValidationError:
        return Response(status_code=404)
    except errors.ServiceError as exc:
        return Response(status_code=bad_status(exc))
    return Response(base64.b64decode(got.data), media_type=got.content_type, headers={
        "Cache-Control": "public, max-age=604800, immutable", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'"})


async def _page(request: Request, user: ic.User, fid: str, *, status: int = 200, notice: str | None = None,
                error: str | None = None) -> Response:
    try:
        f = await facility(request, fid)
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user, link=("/staff/bookings", t("bs_title", ps.lang(request))))
    return bookings_page(request, "staff_photos.html", user=user, status=status, f=f,
                         photos=await photos_of(request, f.id), most=ph.MAX_PHOTOS, notice=notice, error=error)


@router.get("/staff/bookings/facility/photos", response_class=HTMLResponse)
async def photos_page(request: Request, user: StaffUser) -> Response:
    added = request.query_params.get("added") == "1"
    return await _page(request, user, request.query_params.get("id", ""),
                       notice=t("bp_added", ps.lang(request)) if added else None)


def _prepare(raw: bytes) -> tuple[str, str]:
    full = images.prepare(raw, max_side=ph.FULL_SIDE)
    thumb = images.prepare(raw, max_side=ph.THUMB_SIDE)
    return base64.b64encode(full.data).decode(), base64.b64encode(thumb.data).decode()


@router.post("/staff/bookings/facility/photos")
async def photo_add(request: Request, form: CsrfUpload, user: StaffUser) -> Response:
    lang = ps.lang(request)
    fid = str(form.get("facility_id", ""))
    upload = form.get("photo")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _page(request, user, fid, status=400, error=t("bp_no_file", lang))
    try:
        raw = await upload.read(images.MAX_UPLOAD_BYTES + 1)
        # Decoding and resizing take a few hundred ms of CPU: off the event loop, so other pages keep answering.
        image, thumb = await asyncio.to_thread(_prepare, raw)
        data: dict[str, Any] = {"actor": actor_of(user).model_dump(mode="json"), "facility_id": fid,
                                "image": image, "thumb": thumb, "alt_ja": str(form.get("alt_ja", "")),
                                "alt_en": str(form.get("alt_en", ""))}
        await call(request, "bookings", ph.EP_PHOTO_ADD, ph.PhotoAdd.model_validate(data))
    except ValidationError as exc:
        return await _page(request, user, fid, status=400, error=why(exc, lang))
    except errors.ServiceError as exc:
        return await _page(request, user, fid, status=bad_status(exc), error=why(exc, lang))
    return RedirectResponse(f"/staff/bookings/facility/photos?id={fid}&added=1", status_code=303)


@router.post("/staff/bookings/facility/photos/remove")
async def photo_remove(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    fid = str(form.get("facility_id", ""))
    try:
        await call(request, "bookings", ph.EP_PHOTO_REMOVE, ph.PhotoRemove(
            actor=actor_of(user), photo_id=str(form.get("photo_id", ""))))
    except ValidationError as exc:
        return await _page(request, user, fid, status=400, error=why(exc, lang))
    except errors.ServiceError as exc:
        return await _page(request, user, fid, status=bad_status(exc), error=why(exc, lang))
    return await _page(request, user, fid, notice=t("bp_removed", lang))
