"""The seed's category grid (「17分野×公益認定23事業」): the NPO activity fields and the public-interest purposes.

Loaded from `towntip/data/` (copies of the team's shared/data). A category code is `npo-<n>` or `pib-<n>`.
Besides the statute's wording (`name_ja`, kept as the detail), each has a short everyday label (`short_ja`: 「子ども」
「まちづくり」「環境」) and a family (FAMILIES) that pages group them by (towntip/kernel/category_labels.csv): a
resident picks among eight groups of short words rather than 43 clauses of law.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
GRIDS = (("npo", "npo_fields.csv"), ("pib", "public_interest_businesses.csv"))


LABELS = Path(__file__).resolve().parent / "category_labels.csv"  # ours, beside the shared grids
# The families pages group categories by, in the order shown: (key, Japanese, English).
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("learning", "子ども・学び", "Children and learning"),
    ("health", "福祉・健康", "Welfare and health"),
    ("town", "まちづくり", "Town-making"),
    ("safety", "防災・安全", "Safety and disasters"),
    ("nature", "環境・自然", "Environment and nature"),
    ("culture", "文化・スポーツ・観光", "Culture, sport and tourism"),
    ("work", "仕事・くらし・経済", "Work, living and the economy"),
    ("rights", "人権・国際・平和", "Rights, the world and peace"),
    ("other", "団体の応援・その他", "Supporting groups, and more"),
)


@dataclass(frozen=True)
class Category:
    code: str
    name_ja: str  # the statute's wording
    name_en: str
    short_ja: str = ""  # the everyday label pages show
    short_en: str = ""
    family: str = "other"

    def label(self, lang: str) -> str:
        return (self.short_en or self.name_en) if lang == "en" else (self.short_ja or self.name_ja)

    def statute(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_ja


@cache
def all_categories() -> tuple[Category, ...]:
    with open(LABELS, encoding="utf-8", newline="") as f:
        labels = {row["code"]: row for row in csv.DictReader(f)}
    out = []
    for prefix, name in GRIDS:
        with open(DATA / name, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                code = f"{prefix}-{int(row['code'])}"
                label = labels[code]
                out.append(Category(code, row["name_ja"], row["name_en"], label["short_ja"], label["short_en"],
                                    label["family"]))
    return tuple(out)


def grouped() -> tuple[tuple[str, str, str, tuple[Category, ...]], ...]:
    """(family key, Japanese, English, its categories) in FAMILIES' order, each family's categories by code."""
    cats = all_categories()
    return tuple((key, ja, en, tuple(c for c in cats if c.family == key)) for key, ja, en in FAMILIES)


def labels(lang: str) -> dict[str, str]:
    """code → the everyday label in `lang` (what pages print beside a theme, a community, a person)."""
    return {c.code: c.label(lang) for c in all_categories()}


def codes() -> frozenset[str]:
    return frozenset(c.code for c in all_categories())
