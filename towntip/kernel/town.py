"""The town a node serves: its name in Japanese and English, its colour and emblem, and the districts residents
choose from.

The node's operator sets them (TOWNTIP_TOWN_NAME, TOWNTIP_TOWN_NAME_EN, TOWNTIP_DISTRICTS: names separated by `|`,
TOWNTIP_TOWN_COLOUR: `#rrggbb`, TOWNTIP_TOWN_EMBLEM: the path of an SVG or PNG file); where they do not, the
demo's table (towntip/kernel/towns.csv: the seed's RING towns in Japanese, and for Tsurugashima its
elementary-school districts, 小学校区) names the node's town, and a node not in it is called by its id with no
district list (the district is then free text). Without an emblem file the portal draws a plain one: the town's
first character on a disc of its colour.
"""

from __future__ import annotations

import csv
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache, cached_property
from html import escape
from pathlib import Path

from towntip.kernel.settings import NodeSettings

TOWNS = Path(__file__).resolve().parent / "towns.csv"
DEFAULT_COLOUR = "#0b6e4f"  # the portal's green: 6.4:1 against white
MIN_CONTRAST = 4.5  # WCAG 2.2 AA for normal text: white words on the town's colour (header, buttons)
EMBLEM_MAX_BYTES = 256 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_HEX = re.compile(r"#[0-9a-fA-F]{6}")
# What an SVG may not hold: it is served to browsers, and a script or an external reference in it would run or
# leak as the node's own origin if someone opened the emblem's address directly.
_SVG_FORBIDDEN = re.compile(
    r"<!DOCTYPE|<!ENTITY|<script|<foreignObject|\son[a-z]+\s*=|javascript:|https?://(?!www\.w3\.org/)", re.IGNORECASE
)


class TownError(ValueError):
    """The operator's town settings cannot be used (the message says which and why, for the CLI)."""


@dataclass(frozen=True)
class Emblem:
    data: bytes
    media_type: str  # image/svg+xml or image/png

    @cached_property  # in every page's header: hashed once
    def version(self) -> str:
        # In the emblem's URL so that browsers may keep it for a year and still see a new one at once.
        return hashlib.sha256(self.data).hexdigest()[:12]


@dataclass(frozen=True)
class Town:
    node_id: str
    name_ja: str
    name_en: str
    districts: tuple[str, ...] = ()
    primary: str = DEFAULT_COLOUR
    emblem: Emblem | None = field(default=None, compare=False)

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_ja

    @property
    def emblem_url(self) -> str:
        """The gateway's address of the emblem (gateway/portal/home.py serves it)."""
        emblem = self.emblem or drawn_emblem(self.name_ja, self.primary)
        return f"/town/emblem?v={emblem.version}"


def split(districts: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(d.strip() for d in districts.split("|") if d.strip()))


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def contrast_with_white(colour: str) -> float:
    """The WCAG contrast ratio of white text on `colour` (#rrggbb)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)
    return 1.05 / (luminance + 0.05)


def check_colour(value: str) -> str:
    """The colour as `#rrggbb` (lower case), or TownError: not a colour, or white text on it would be too faint."""
    value = value.strip()
    if not _HEX.fullmatch(value):
        raise TownError(f"the town colour must look like #0b6e4f (# and six hex digits), not {value!r}")
    ratio = contrast_with_white(value)
    if ratio < MIN_CONTRAST:
        raise TownError(
            f"the town colour {value} gives white text a contrast of {ratio:.2f}:1; WCAG AA needs at "
            f"least {MIN_CONTRAST}:1 (choose a darker colour)"
        )
    return value.lower()


def load_emblem(path: str | Path) -> Emblem:
    """The operator's emblem file, checked: an SVG without scripts or outside references, or a PNG, at most
    256 KB. TownError says what is wrong."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TownError(f"the town emblem {str(p)!r} cannot be read ({exc.strerror})") from None
    if len(data) > EMBLEM_MAX_BYTES:
        raise TownError(f"the town emblem {str(p)!r} is {len(data) // 1024} KB; at most {EMBLEM_MAX_BYTES // 1024} KB")
    if data.startswith(PNG_MAGIC):
        return Emblem(data, "image/png")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TownError(f"the town emblem {str(p)!r} is neither an SVG nor a PNG file") from None
    if _SVG_FORBIDDEN.search(text):
        raise TownError(
            f"the town emblem {str(p)!r} holds a script, an entity or an outside reference; give a plain SVG drawing"
        )
    try:
        root = ET.fromstring(text)  # no DOCTYPE is left, so no entity can expand
    except ET.ParseError as exc:
        raise TownError(f"the town emblem {str(p)!r} is not a well-formed SVG ({exc})") from None
    if root.tag not in ("svg", "{http://www.w3.org/2000/svg}svg"):
        raise TownError(f"the town emblem {str(p)!r} is neither an SVG nor a PNG file")
    return Emblem(data, "image/svg+xml")


@cache
def drawn_emblem(name_ja: str, colour: str) -> Emblem:
    """The emblem of a town whose operator gave none: its first character, white on a disc of its colour."""
    letter = escape(name_ja[:1] or "?")
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img">'
        f'<circle cx="32" cy="32" r="30" fill="{colour}"/>'
        '<circle cx="32" cy="32" r="26" fill="none" stroke="#fff" stroke-width="2"/>'
        f'<text x="32" y="43" font-size="30" text-anchor="middle" fill="#fff" font-weight="700" '
        f'font-family="sans-serif">{letter}</text></svg>'
    )
    return Emblem(svg.encode(), "image/svg+xml")


@cache
def demo_towns() -> dict[str, Town]:
    with open(TOWNS, encoding="utf-8", newline="") as f:
        return {
            r["node_id"]: Town(
                r["node_id"],
                r["name_ja"],
                r["name_en"],
                split(r["districts"]),
                check_colour(r.get("colour") or DEFAULT_COLOUR),
            )
            for r in csv.DictReader(f)
        }


def town_of(settings: NodeSettings) -> Town:
    """The node's town from its settings, the demo table filling what they leave empty (TownError: a colour or an
    emblem the portal cannot use)."""
    known = demo_towns().get(settings.node_id)
    name_ja = settings.town_name or (known.name_ja if known else settings.node_id)
    name_en = settings.town_name_en or (known.name_en if known else settings.node_id)
    districts = split(settings.districts) if settings.districts else (known.districts if known else ())
    primary = (
        check_colour(settings.town_colour) if settings.town_colour else (known.primary if known else DEFAULT_COLOUR)
    )
    emblem = load_emblem(settings.town_emblem) if settings.town_emblem else None
    return Town(settings.node_id, name_ja, name_en, districts, primary, emblem)


def emblem_of(town: Town) -> Emblem:
    """What the gateway serves at the emblem's address."""
    return town.emblem or drawn_emblem(town.name_ja, town.primary)
