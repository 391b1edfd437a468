"""The town a node serves: its name in Japanese and English and the districts residents choose from.

The node's operator sets them (TOWNTIP_TOWN_NAME, TOWNTIP_TOWN_NAME_EN, TOWNTIP_DISTRICTS: names separated by `|`);
where they do not, the demo's table (towntip/kernel/towns.csv: the seed's RING towns in Japanese, and for
Tsurugashima its elementary-school districts, 小学校区) names the node's town, and a node not in it is called by
its id with no district list (the district is then free text).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from towntip.kernel.settings import NodeSettings

TOWNS = Path(__file__).resolve().parent / "towns.csv"


@dataclass(frozen=True)
class Town:
    node_id: str
    name_ja: str
    name_en: str
    districts: tuple[str, ...] = ()

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_ja


def split(districts: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(d.strip() for d in districts.split("|") if d.strip()))


@cache
def demo_towns() -> dict[str, Town]:
    with open(TOWNS, encoding="utf-8", newline="") as f:
        return {r["node_id"]: Town(r["node_id"], r["name_ja"], r["name_en"], split(r["districts"]))
                for r in csv.DictReader(f)}


def town_of(settings: NodeSettings) -> Town:
    known = demo_towns().get(settings.node_id)
    name_ja = settings.town_name or (known.name_ja if known else settings.node_id)
    name_en = settings.town_name_en or (known.name_en if known else settings.node_id)
    districts = split(settings.districts) if settings.districts else (known.districts if known else ())
    return Town(settings.node_id, name_ja, name_en, districts)
