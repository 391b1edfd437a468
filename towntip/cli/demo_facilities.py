"""The demo's facilities (`towntip demo seed`): the places the seed names where Tsurugashima's people meet:
市庁舎6F and 市民活動推進センター (中核拠点施設), 公民館, 女性センター and 農業交流センター (地域拠点施設).
The 公民館 are the two whose festivals are in the seed's event table (大橋公民館まつり, 南公民館まつり).

The names come from the seed; everything else (rooms, addresses, coordinates, hours, closed days, fees, rules) is a
SAMPLE VALUE made up for the demo, and each facility's `note` says so. A node that runs for real puts its own.
"""

from __future__ import annotations

from typing import Any

SAMPLE = "名称以外（部屋・住所・座標・時間・休館日・料金・規則）は見本の値です / all but the name are sample values"
CITY = "埼玉県鶴ヶ島市"
YEAR_END = ["12-29", "12-30", "12-31", "01-01", "01-02", "01-03"]  # 年末年始


WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hours(days: tuple[str, ...], open_: str, close: str) -> dict[str, dict[str, str]]:
    return {d: {"open": open_, "close": close} for d in days}


def _blocks(morning: int, afternoon: int, evening: int) -> dict[str, Any]:
    """The 公民館's three blocks, the fee of each for a city group (市外 twice, 営利 four times: sample rates)."""
    def fees(yen: int) -> dict[str, int]:
        return {"city_group": yen, "outside": yen * 2, "commercial": yen * 4}

    return {"kind": "blocks", "blocks": [
        {"name_ja": "午前", "name_en": "morning", "start": "09:00", "end": "12:00", "fees": fees(morning)},
        {"name_ja": "午後", "name_en": "afternoon", "start": "13:00", "end": "17:00", "fees": fees(afternoon)},
        {"name_ja": "夜間", "name_en": "evening", "start": "18:00", "end": "21:30", "fees": fees(evening)}]}


# Fees (sample rules): paid within 7 days of confirmation (and by the end of the day before), with local currency,
# a 公民館の施設使用料 coupon (coupon kind `kominkan-fee`, which staff offer on the coupon desk) or at the counter;
# a booker's cancellation keeps nothing up to 7 days before, half from the day before, all on the day.
CANCEL_FEES = [{"days_before": 7, "percent": 0}, {"days_before": 1, "percent": 50}, {"days_before": 0, "percent": 100}]
KOMINKAN_RULES = {"max_days_ahead": 90, "min_notice_minutes": 24 * 60, "max_per_month": 4, "pay_within_days": 7,
                  "cancel_fees": CANCEL_FEES, "coupon_types": ["kominkan-fee"]}

FACILITIES: list[dict[str, Any]] = [
    {"id": "shichosha-6f", "name_ja": "市庁舎6F会議室", "name_en": "City Hall 6F meeting room",
     "kind": "meeting_room", "address": f"{CITY}（市庁舎6階）", "capacity": 40,
     "accessibility": "エレベーターあり、車いす対応トイレ / lift, accessible toilet",
     "hours": _hours(WEEK[:5], "08:30", "17:00"), "closed_yearly": YEAR_END,
     "layout": {"kind": "grid", "step_minutes": 30, "fees_per_step": {"city_group": 0, "outside": 300,
                                                                      "commercial": 600}},
     "buffer_minutes": 15, "rules": {"max_days_ahead": 60, "min_notice_minutes": 60, "max_minutes": 240}},
    {"id": "katsudo-center", "name_ja": "市民活動推進センター 交流スペース",
     "name_en": "Civic Activity Promotion Center, meeting space", "kind": "meeting_room", "address": CITY,
     "capacity": 30, "accessibility": "段差なし / step-free",
     "hours": _hours(WEEK, "09:00", "21:00"), "closed_weekdays": ["mon"], "closed_yearly": YEAR_END,
     "layout": {"kind": "grid", "step_minutes": 60, "fees_per_step": {"city_group": 0, "outside": 200,
                                                                      "commercial": 500}},
     "rules": {"max_days_ahead": 60, "max_minutes": 180, "max_per_month": 8}},
    {"id": "ohashi-kominkan-hall", "name_ja": "大橋公民館 ホール", "name_en": "Ohashi Kominkan, hall", "kind": "hall",
     "address": CITY, "capacity": 100, "accessibility": "車いす対応 / wheelchair accessible",
     "hours": _hours(WEEK, "09:00", "21:30"), "closed_weekdays": ["mon"], "closed_yearly": YEAR_END,
     "layout": _blocks(800, 1000, 1000), "rules": KOMINKAN_RULES},
    {"id": "ohashi-kominkan-washitsu", "name_ja": "大橋公民館 和室", "name_en": "Ohashi Kominkan, tatami room",
     "kind": "tatami_room", "address": CITY, "capacity": 20, "accessibility": "靴を脱いで利用 / shoes off",
     "hours": _hours(WEEK, "09:00", "21:30"), "closed_weekdays": ["mon"], "closed_yearly": YEAR_END,
     "layout": _blocks(300, 400, 400), "rules": KOMINKAN_RULES},
    {"id": "minami-kominkan-koza", "name_ja": "南公民館 講座室", "name_en": "Minami Kominkan, lecture room",
     "kind": "lecture_room", "address": CITY, "capacity": 40, "accessibility": "エレベーターあり / lift",
     "hours": _hours(WEEK, "09:00", "21:30"), "closed_weekdays": ["mon"], "closed_yearly": YEAR_END,
     "layout": _blocks(400, 500, 500), "rules": KOMINKAN_RULES},
    {"id": "minami-kominkan-chori", "name_ja": "南公民館 調理室", "name_en": "Minami Kominkan, cooking room",
     "kind": "kitchen", "address": CITY, "capacity": 24, "accessibility": "",
     "hours": _hours(WEEK, "09:00", "21:30"), "closed_weekdays": ["mon"], "closed_yearly": YEAR_END,
     "layout": _blocks(500, 600, 600), "buffer_minutes": 0, "rules": KOMINKAN_RULES},
    {"id": "josei-center-kenshu", "name_ja": "女性センター 研修室", "name_en": "Women's Center, training room",
     "kind": "meeting_room", "address": CITY, "capacity": 30, "accessibility": "授乳室あり / nursing room",
     "hours": _hours(WEEK, "09:00", "21:30"), "closed_weekdays": ["mon"], "closed_yearly": YEAR_END,
     "layout": _blocks(400, 500, 500), "rules": {**KOMINKAN_RULES, "needs_approval": True}},  # staff approve
    {"id": "nogyo-koryu-kako", "name_ja": "農業交流センター 農産物加工室",
     "name_en": "Agricultural Exchange Center, food processing room", "kind": "kitchen", "address": CITY,
     "capacity": 15, "accessibility": "",
     "hours": _hours(WEEK, "09:00", "17:00"), "closed_weekdays": ["tue"], "closed_yearly": YEAR_END,
     "layout": {"kind": "blocks", "blocks": [
         {"name_ja": "午前", "name_en": "morning", "start": "09:00", "end": "12:00",
          "fees": {"city_group": 600, "outside": 1200, "commercial": 2400}},
         {"name_ja": "午後", "name_en": "afternoon", "start": "13:00", "end": "17:00",
          "fees": {"city_group": 800, "outside": 1600, "commercial": 3200}}]},
     "buffer_minutes": 0, "rules": {"max_days_ahead": 60, "min_notice_minutes": 24 * 60, "max_per_month": 4,
                                    "pay_within_days": 7, "cancel_fees": CANCEL_FEES}},
]
for _f in FACILITIES:
    _f["note"] = SAMPLE
