"""The seed's category grid (「17分野×公益認定23事業」): the NPO activity fields and the public-interest purposes.

Loaded from `towntip/data/` (copies of the team's shared/data). A category code is `npo-<n>` or `pib-<n>`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
GRIDS = (("npo", "npo_fields.csv"), ("pib", "public_interest_businesses.csv"))


@dataclass(frozen=True)
class Category:
    code: str
    name_ja: str
    name_en: str


@cache
def all_categories() -> tuple[Category, ...]:
    out = []
    for prefix, name in GRIDS:
        with open(DATA / name, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                out.append(Category(f"{prefix}-{int(row['code'])}", row["name_ja"], row["name_en"]))
    return tuple(out)


def codes() -> frozenset[str]:
    return frozenset(c.code for c in all_categories())
