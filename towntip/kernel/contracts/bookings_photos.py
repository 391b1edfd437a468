"""Contracts of a facility's photos (svc.<node>.bookings.facilities.photos.*, issue 17 point 1): staff add and remove
them, anyone sees them beside the facility.

The gateway turns an upload into a clean JPEG or PNG (towntip/kernel/images.py: checked by content, upright,
metadata stripped, resized) and sends that with a thumbnail, base64 in JSON, well under the bus's 1 MB message; the
service checks both again before it keeps them. Photos are of rooms and buildings: the staff page asks for no people
in them, and says so."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.bookings import FacilityId
from towntip.kernel.errors import Refusal

EP_PHOTO_ADD = "facilities.photos.add"  # PhotoAdd -> FacilityPhoto (staff)
EP_PHOTO_REMOVE = "facilities.photos.remove"  # PhotoRemove -> FacilityPhoto (staff)
EP_PHOTO_LIST = "facilities.photos.list"  # PhotoListQuery -> PhotoList (anyone)
EP_PHOTO_GET = "facilities.photos.get"  # PhotoQuery -> PhotoData (anyone)

MAX_PHOTOS = 8  # per facility
FULL_SIDE, FULL_BYTES = 1280, 600 * 1024  # what a phone shows full width
THUMB_SIDE, THUMB_BYTES = 480, 120 * 1024  # the facility list's cards
# The add request's limit on the bus (others: 64 KB, towntip/kernel/domain.py): both pictures at their largest,
# base64 (983,040 bytes), with the alt texts, under NATS's 1 MiB max_payload (towntip/node/natsd.py).
PHOTO_REQUEST_BYTES = 1_000_000

PHOTO_STAFF_ONLY = Refusal("photo.staff_only", 403, "only staff add and remove a facility's photos")
PHOTO_NOT_FOUND = Refusal("photo.not_found", 404, "no such photo")
PHOTO_TOO_MANY = Refusal("photo.too_many", 409, f"a facility has at most {MAX_PHOTOS} photos: remove one first")
PHOTO_BAD = Refusal("photo.bad", 422, "not a prepared JPEG or PNG picture of the allowed size")
REFUSALS: tuple[Refusal, ...] = (PHOTO_STAFF_ONLY, PHOTO_NOT_FOUND, PHOTO_TOO_MANY, PHOTO_BAD)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
PhotoId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Alt = Annotated[str, StringConstraints(max_length=200)]
B64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]+={0,2}$", max_length=(FULL_BYTES * 4) // 3 + 4)]


class PhotoAdd(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # staff; None: the node's operator
    facility_id: FacilityId
    image: B64  # the prepared picture (towntip.kernel.images.prepare at FULL_SIDE)
    thumb: B64  # the same at THUMB_SIDE
    alt_ja: Alt = Field(min_length=1)  # what the photo shows, for screen readers (「ホール全景、舞台側から」)
    alt_en: Alt = ""


class PhotoRemove(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    photo_id: PhotoId


class PhotoListQuery(BaseModel):
    model_config = _IN
    facility_id: FacilityId


class PhotoQuery(BaseModel):
    model_config = _IN
    photo_id: PhotoId
    size: Literal["full", "thumb"] = "full"


class FacilityPhoto(Frozen):
    id: str
    facility_id: str
    position: int
    alt_ja: str
    alt_en: str
    content_type: str
    width: int
    height: int
    created_at: datetime


class PhotoList(RootModel[list[FacilityPhoto]]):
    model_config = ConfigDict(frozen=True)


class PhotoData(Frozen):
    content_type: str
    data: str  # base64
    created_at: datetime
