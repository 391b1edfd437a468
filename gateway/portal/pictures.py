"""Pictures for cards: one small flat illustration per category family (a book for 子ども・学び, a leaf for 環境・自然,
…), drawn here as SVG and served from /static/pictures/<family>.svg, so a list of twenty cards costs the page twenty
short <img> tags and the browser one download per family, kept for a year (the address carries a digest).

Communities and themes have no pictures of their own in their services today; a card takes the family of its first
category (a default for none). Templates call `card_picture(codes, lang)` (a global of the portal's templates)."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter
from fastapi.responses import Response

from towntip.kernel import categories

router = APIRouter(include_in_schema=False)  # a portal asset, not the API

FAMILY_COLOURS = {
    "learning": "#b3431f",
    "health": "#a3286a",
    "town": "#0b6e4f",
    "safety": "#a52a2a",
    "nature": "#2f6b1f",
    "culture": "#5b3f9e",
    "work": "#1f5c8f",
    "rights": "#7a4b00",
    "other": "#4a5560",
}

W = "#fff"
# The drawing of each family on a 64×64 tile, white (and the tile's colour, "{c}") on the family's colour.
DRAWINGS = {
    "learning": (  # an open book
        f'<path d="M11 19c7-3 14-3 20 1v27c-6-4-13-4-20-1z" fill="{W}"/>'
        f'<path d="M53 19c-7-3-14-3-20 1v27c6-4 13-4 20-1z" fill="{W}"/>'
        '<path d="M15 26c4-1 8-1 12 1M15 32c4-1 8-1 12 1M37 27c4-2 8-2 12-1M37 33c4-2 8-2 12-1" '
        'stroke="{c}" stroke-width="2" fill="none"/>'
    ),
    "health": (  # a heart with a cross
        f'<path d="M32 51 13 32a10.5 10.5 0 0 1 19-14 10.5 10.5 0 0 1 19 14z" fill="{W}"/>'
        '<path d="M32 25v14M25 32h14" stroke="{c}" stroke-width="4"/>'
    ),
    "town": (  # two houses on a street
        f'<path d="M9 49V31l12-10 12 10v18z" fill="{W}"/><path d="M33 49V25l11-9 11 9v24z" fill="{W}"/>'
        '<rect x="17" y="37" width="8" height="12" fill="{c}"/><rect x="39" y="29" width="5" height="5" fill="{c}"/>'
        '<rect x="46" y="29" width="5" height="5" fill="{c}"/><rect x="40" y="39" width="8" height="10" fill="{c}"/>'
        f'<path d="M6 51h52" stroke="{W}" stroke-width="3"/>'
    ),
    "safety": (  # a shield with a tick
        f'<path d="M32 9 51 16v14c0 12-8 21-19 25-11-4-19-13-19-25V16z" fill="{W}"/>'
        '<path d="m23 32 7 7 12-13" stroke="{c}" stroke-width="4" fill="none" stroke-linecap="round"/>'
    ),
    "nature": (  # a leaf
        f'<path d="M13 51C13 27 29 14 53 11c-2 24-15 40-40 40z" fill="{W}"/>'
        '<path d="M17 47 43 21M27 37h9M33 31v-8" stroke="{c}" stroke-width="3" stroke-linecap="round"/>'
    ),
    "culture": (  # a note of music
        f'<path d="M27 45V17l22-6v28" stroke="{W}" stroke-width="4" fill="none"/>'
        f'<path d="M27 24l22-6" stroke="{W}" stroke-width="4"/>'
        f'<circle cx="21" cy="45" r="6.5" fill="{W}"/><circle cx="43" cy="40" r="6.5" fill="{W}"/>'
    ),
    "work": (  # a bag of work
        f'<path d="M25 22v-5h14v5" stroke="{W}" stroke-width="4" fill="none"/>'
        f'<rect x="11" y="22" width="42" height="27" rx="4" fill="{W}"/>'
        '<rect x="11" y="33" width="42" height="3" fill="{c}"/><rect x="29" y="31" width="6" height="7" fill="{c}"/>'
    ),
    "rights": (  # the globe
        f'<circle cx="32" cy="32" r="19" fill="none" stroke="{W}" stroke-width="4"/>'
        f'<ellipse cx="32" cy="32" rx="8" ry="19" fill="none" stroke="{W}" stroke-width="3"/>'
        f'<path d="M13 32h38M16 22h32M16 42h32" stroke="{W}" stroke-width="3"/>'
    ),
    "other": (  # a star: cheering groups on
        f'<path d="m32 10 6.5 14 15 1.6-11.3 10 3.3 14.8L32 42.8l-13.5 7.6 3.3-14.8-11.3-10 15-1.6z" fill="{W}"/>'
    ),
}


def document(family: str) -> bytes:
    colour = FAMILY_COLOURS[family]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
        f'<rect width="64" height="64" rx="12" fill="{colour}"/>{DRAWINGS[family].replace("{c}", colour)}</svg>'
    ).encode()


DOCUMENTS = {family: document(family) for family in FAMILY_COLOURS}
VERSION = hashlib.sha256(b"".join(DOCUMENTS[f] for f in sorted(DOCUMENTS))).hexdigest()[:12]
FAMILY_OF = {cat.code: cat.family for cat in categories.all_categories()}
NAMES = {key: (ja, en) for key, ja, en in categories.FAMILIES}


def family_of(codes: list[str] | str | None) -> str:
    """The family of the first category (codes of the grid), "other" for none or an unknown one."""
    first = codes[0] if isinstance(codes, list) and codes else codes if isinstance(codes, str) else None
    return FAMILY_OF.get(first or "", "other")


def card_picture(codes: list[str] | str | None, lang: str) -> dict[str, str]:
    """What a card's <img> needs: its address, its alternative text in the page's language, the family."""
    family = family_of(codes)
    ja, en = NAMES[family]
    alt = f"Illustration: {en}" if lang == "en" else f"{ja}の絵"
    return {"url": f"/static/pictures/{family}.svg?v={VERSION}", "alt": alt, "family": family,
            "colour": FAMILY_COLOURS[family]}


@router.get("/static/pictures/{family}.svg")
async def picture_file(family: str) -> Response:
    """A family's illustration; 404 for a name that is none (the address never reaches the file system)."""
    body = DOCUMENTS.get(family)
    if body is None:
        return Response("no such picture", status_code=404, media_type="text/plain; charset=utf-8")
    return Response(body, media_type="image/svg+xml", headers={
        "Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{VERSION}"',
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        "X-Content-Type-Options": "nosniff"})
