"""A facility's photos (issue 17, point 1): the upload comes out upright, resized and with no metadata (no GPS),
staff add and remove them, anyone lists and sees them; what is not a picture, too big, a picture with metadata
left (not prepared), a ninth photo or a resident's upload is refused and changes nothing."""

from __future__ import annotations

import base64
import inspect
import io
import json
import os

import pytest
from PIL import Image

from tests.bookings.helpers import CLERK, HALL, HANAKO, Node, a
from towntip.kernel import domain, errors, images
from towntip.kernel.contracts import bookings_photos as ph
from towntip.node.natsd import render_config

SERVICE = "bookings"


def camera_photo(width: int = 4000, height: int = 3000, *, noisy: bool = False) -> bytes:
    """A phone's JPEG lying on its side (orientation 6) with its GPS position and camera in EXIF. `noisy`: a scene
    full of detail (noise does not compress), as big as a real photo once prepared (~450 KB at 1280 px); a flat
    colour prepares to a few KB and hides any size limit on the way."""
    image = (Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)) if noisy
             else Image.new("RGB", (width, height), (200, 120, 40)))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (35.0, 56.0, 2.0), 3: "E", 4: (139.0, 23.0, 35.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=70)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def upload(raw: bytes, who=CLERK, alt: str = "ホール全景、舞台側から") -> dict:
    full = images.prepare(raw, max_side=ph.FULL_SIDE)
    thumb = images.prepare(raw, max_side=ph.THUMB_SIDE)
    return {"actor": a(who), "facility_id": HALL["id"], "image": b64(full.data), "thumb": b64(thumb.data),
            "alt_ja": alt}


def test_prepare_turns_upright_resizes_and_strips_everything() -> None:
    pic = images.prepare(camera_photo(), max_side=ph.FULL_SIDE)
    shown = Image.open(io.BytesIO(pic.data))
    assert (pic.content_type, shown.format) == ("image/jpeg", "JPEG")
    assert shown.size == (960, 1280), "orientation 6 applied, then the longer side at 1280"
    assert not shown.getexif() and "exif" not in shown.info, "no EXIF: no GPS, no camera"
    assert b"PhoneMaker" not in pic.data and len(pic.data) < ph.FULL_BYTES


@pytest.mark.parametrize(("data", "refusal"), [
    (b"%PDF-1.7 not a picture", images.NOT_A_PICTURE),
    (b"GIF89a" + b"\0" * 64, images.NOT_A_PICTURE),
    (b"\xff\xd8\xff" + b"\0" * (images.MAX_UPLOAD_BYTES + 1), images.TOO_BIG),
])
def test_prepare_refuses_what_is_not_a_picture_or_too_big(data: bytes, refusal: errors.Refusal) -> None:
    with pytest.raises(errors.ServiceError) as info:
        images.prepare(data)
    assert info.value.error_code == refusal.code


def test_prepare_refuses_a_decompression_bomb() -> None:
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")  # 400 megapixels in a small file
    with pytest.raises(errors.ServiceError) as info:
        images.prepare(out.getvalue())
    assert info.value.error_code == images.TOO_MANY_PIXELS.code


async def test_staff_add_list_see_and_remove_photos(node: Node) -> None:
    await node.put(HALL)
    added = await node.call(ph.EP_PHOTO_ADD, upload(camera_photo()))
    assert (added["width"], added["height"], added["position"]) == (960, 1280, 1)
    listed = await node.call(ph.EP_PHOTO_LIST, {"facility_id": HALL["id"]})
    assert [p["alt_ja"] for p in listed] == ["ホール全景、舞台側から"] and "image" not in listed[0]
    for size, side in (("full", 1280), ("thumb", 480)):
        got = await node.call(ph.EP_PHOTO_GET, {"photo_id": added["id"], "size": size})
        picture = Image.open(io.BytesIO(base64.b64decode(got["data"])))
        assert max(picture.size) == side and not picture.getexif()
    await node.call(ph.EP_PHOTO_REMOVE, {"actor": a(CLERK), "photo_id": added["id"]})
    assert await node.call(ph.EP_PHOTO_LIST, {"facility_id": HALL["id"]}) == []


async def test_refusals_change_nothing(node: Node) -> None:
    await node.put(HALL)

    async def refused(refusal: errors.Refusal, endpoint: str, payload: dict) -> None:
        before = await node.call(ph.EP_PHOTO_LIST, {"facility_id": HALL["id"]})
        await node.refused(refusal, endpoint, payload)
        assert await node.call(ph.EP_PHOTO_LIST, {"facility_id": HALL["id"]}) == before

    await refused(ph.PHOTO_STAFF_ONLY, ph.EP_PHOTO_ADD, upload(camera_photo(800, 600), who=HANAKO))
    raw = camera_photo(800, 600)  # the camera's file as it came, EXIF and all: not prepared
    await refused(ph.PHOTO_BAD, ph.EP_PHOTO_ADD, {**upload(raw), "image": b64(raw)})
    await refused(ph.PHOTO_BAD, ph.EP_PHOTO_ADD, {**upload(raw), "thumb": b64(b"<svg onload=alert(1)>")})
    for _ in range(ph.MAX_PHOTOS):
        await node.call(ph.EP_PHOTO_ADD, upload(camera_photo(640, 480)))
    await refused(ph.PHOTO_TOO_MANY, ph.EP_PHOTO_ADD, upload(camera_photo(640, 480)))
    await refused(ph.PHOTO_NOT_FOUND, ph.EP_PHOTO_REMOVE, {"actor": a(CLERK), "photo_id": "0" * 32})


async def test_a_real_phone_photo_is_stored_and_served(node: Node) -> None:
    await node.put(HALL)
    sent = upload(camera_photo(3000, 2000, noisy=True))
    full = base64.b64decode(sent["image"])
    assert len(full) > 200 * 1024 and len(json.dumps(sent)) > domain.MAX_REQUEST_BYTES, "as big as a real photo"
    added = await node.call(ph.EP_PHOTO_ADD, sent)
    assert (added["width"], added["height"]) == (853, 1280)
    assert [p["id"] for p in await node.call(ph.EP_PHOTO_LIST, {"facility_id": HALL["id"]})] == [added["id"]]
    for size in ("full", "thumb"):
        got = await node.call(ph.EP_PHOTO_GET, {"photo_id": added["id"], "size": size})
        assert got["data"] == sent["image" if size == "full" else "thumb"], f"the {size} picture as it was sent"
    assert not Image.open(io.BytesIO(full)).getexif() and b"PhoneMaker" not in full


def test_the_largest_photo_fits_the_request_limit_and_a_nats_message() -> None:
    """Both pictures at the most the service keeps, base64, with the longest alt texts, fit the add request's limit,
    and that limit fits one NATS message (the node's nats-server takes 1 MiB)."""
    alt = "あ" * 200
    largest = {"actor": a(CLERK), "facility_id": HALL["id"], "image": "A" * ((ph.FULL_BYTES * 4) // 3 + 4),
               "thumb": "A" * ((ph.THUMB_BYTES * 4) // 3 + 4), "alt_ja": alt, "alt_en": alt}
    assert len(json.dumps(largest).encode()) < ph.PHOTO_REQUEST_BYTES
    assert ph.PHOTO_REQUEST_BYTES + 4096 < inspect.signature(render_config).parameters["max_payload"].default
