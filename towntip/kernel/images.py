"""Pictures people upload (a facility's photos, later blogs and signage): checked by their content, never their
name, decoded with a limit on pixels, turned upright, stripped of every piece of metadata (EXIF with the camera and
the place it was taken, XMP, ICC comments) and resized, through Pillow.

What comes out is a new file encoded from the pixels alone: nothing of the upload's bytes survives, so a hidden
payload or a GPS position cannot ride along."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from towntip.kernel.errors import Refusal

ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # a phone's photo is 2-6 MB
MAX_PIXELS = 40_000_000  # a 40-megapixel camera; a "decompression bomb" claims far more
NOT_A_PICTURE = Refusal("image.not_a_picture", 422, "not a JPEG, PNG or WebP picture")
TOO_BIG = Refusal("image.too_big", 413, f"a picture may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
TOO_MANY_PIXELS = Refusal("image.too_many_pixels", 422, f"a picture may have at most {MAX_PIXELS:,} pixels")
REFUSALS: tuple[Refusal, ...] = (NOT_A_PICTURE, TOO_BIG, TOO_MANY_PIXELS)


@dataclass(frozen=True)
class Picture:
    data: bytes
    content_type: str
    width: int
    height: int


def _open(data: bytes) -> Image.Image:
    if len(data) > MAX_UPLOAD_BYTES:
        raise TOO_BIG(f"{len(data):,} bytes: a picture may be at most {MAX_UPLOAD_BYTES:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED:
                raise NOT_A_PICTURE(f"a {image.format or 'unknown'} file: send a JPEG, PNG or WebP picture")
            if image.width * image.height > MAX_PIXELS:
                raise TOO_MANY_PIXELS(f"{image.width}×{image.height} pixels")
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NOT_A_PICTURE("the file is not a picture that can be read") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TOO_MANY_PIXELS("the picture claims more pixels than any camera makes") from exc
    return image


def prepare(data: bytes, *, max_side: int = 1600, quality: int = 85) -> Picture:
    """The upload as a new JPEG (or PNG when it has transparency) at most `max_side` pixels on its longer side,
    upright, with no metadata. Refuses what is not a picture, too large a file, too many pixels."""
    image = ImageOps.exif_transpose(_open(data))  # upright as the camera meant; the orientation tag goes with EXIF
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    transparent = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    out = io.BytesIO()
    if transparent:
        clean = Image.new("RGBA", image.size)
        clean.paste(image.convert("RGBA"))
        clean.save(out, "PNG", optimize=True)
        return Picture(out.getvalue(), "image/png", clean.width, clean.height)
    clean = Image.new("RGB", image.size)
    clean.paste(image.convert("RGB"))
    clean.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return Picture(out.getvalue(), "image/jpeg", clean.width, clean.height)


def check_prepared(data: bytes, *, max_bytes: int, max_side: int) -> Picture:
    """A picture `prepare` made, checked again where it is stored (the service does not take the gateway's word):
    a JPEG or PNG within the sizes, with no metadata left."""
    if len(data) > max_bytes:
        raise TOO_BIG(f"{len(data):,} bytes: a prepared picture is at most {max_bytes:,}")
    image = _open(data)
    if image.format not in ("JPEG", "PNG") or max(image.size) > max_side:
        raise NOT_A_PICTURE(f"expected a JPEG or PNG of at most {max_side} pixels a side")
    if image.getexif() or image.info.get("exif") or image.info.get("xmp") or image.info.get("XML:com.adobe.xmp"):
        raise NOT_A_PICTURE("the picture still carries metadata")
    return Picture(data, ACCEPTED[image.format], image.width, image.height)
