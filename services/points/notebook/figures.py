"""The staff's figures (svc.<node>.points.figures.*; an actor with the role "staff"): points issued per event with
the people who took part (the seed's table: イベント名 / ポイント / 人数), totals per month, per district and per field
(「地域全体や地区毎の状況を可視化」), each exportable as CSV (UTF-8 with BOM).

Counted from the same facts as the notebook (services/points/notebook/service.py): taps at events and confirmed
donations.
"People" are distinct holders: a person with all their cards, or a card bound to nobody. A holder's district comes from
the people directory; cards bound to nobody and people the directory cannot place count under '' (地区不明).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.notebook import service as nbk
from services.points.people.models import people
from services.points.taps.models import events
from towntip.kernel import categories
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notebook as c

UNKNOWN = {"ja": "（地区不明）", "en": "(district not known)"}
NO_FIELD = ("（分野未設定）", "(no field set)")


async def summary(session: AsyncSession) -> c.Figures:
    facts = await nbk.facts(session)
    ev_names = {r.code: r for r in await session.execute(select(events.c.code, events.c.name, events.c.field))}
    directory = (await session.execute(select(people.c.user_id, people.c.district))).all()
    district_of = {f"person:{r.user_id}": r.district for r in directory if r.user_id}

    per_event: dict[str, dict[str, Any]] = {code: {"points": 0, "n": 0, "who": set()} for code in ev_names}
    months: dict[str, dict[str, Any]] = defaultdict(lambda: {"c": 0, "d": 0, "n": 0, "who": set()})
    districts: dict[str, dict[str, Any]] = defaultdict(lambda: {"points": 0, "n": 0, "who": set(), "m": 0, "g": 0,
                                                                "k": 0})
    fields: dict[str | None, dict[str, Any]] = defaultdict(lambda: {"points": 0, "n": 0, "who": set()})
    for f in facts:
        if f.kind == "contribution":
            e = per_event[f.code]
            e["points"] += f.points
            e["n"] += 1
            e["who"].add(f.holder)
        m = months[nbk.jst(f.at).strftime("%Y-%m")]
        m["c" if f.kind == "contribution" else "d"] += f.points
        m["n"] += f.kind == "contribution"
        m["who"].add(f.holder)
        d = districts[district_of.get(f.holder, "")]
        d["points"] += f.points
        d["n"] += f.kind == "contribution"
        d["who"].add(f.holder)
        d["m"] += f.minutes or 0
        d["g"] += f.co2_g or 0
        d["k"] += f.kcal or 0
        k = fields[f.field]
        k["points"] += f.points
        k["n"] += f.kind == "contribution"
        k["who"].add(f.holder)

    registered: dict[str, int] = defaultdict(int)
    for r in directory:
        registered[r.district] += 1
    for name in registered:
        _ = districts[name]  # a district with people but no activity yet shows with zeros
    out_events = [c.EventFigure(code=code, name=ev_names[code].name, field=ev_names[code].field,
                                field_letter=nbk.SEED_LETTERS.get(ev_names[code].field or ""), points=v["points"],
                                people=len(v["who"]), participations=v["n"])
                  for code, v in per_event.items()]
    out_events.sort(key=lambda e: (-e.points, e.code))
    out_fields = []
    for code, v in fields.items():
        letter, ja, en = nbk.category(code)
        out_fields.append(c.FieldFigure(field=code, field_letter=letter, name_ja=ja or NO_FIELD[0],
                                        name_en=en or NO_FIELD[1], points=v["points"], participations=v["n"],
                                        people=len(v["who"])))
    order = {k.code: i for i, k in enumerate(categories.all_categories())}
    out_fields.sort(key=lambda f: order.get(f.field or "", 10_000))
    return c.Figures(
        events=out_events,
        months=[c.MonthFigure(month=k, points=v["c"] + v["d"], contribution=v["c"], donation=v["d"],
                              participations=v["n"], people=len(v["who"])) for k, v in sorted(months.items())],
        districts=[c.DistrictFigure(district=k, registered=registered.get(k, 0), active=len(v["who"]),
                                    points=v["points"], participations=v["n"], co2_kg=v["g"] / 1000,
                                    hours=round(v["m"] / 60, 2), kcal=v["k"])
                   for k, v in sorted(districts.items(), key=lambda kv: (kv[0] == "", kv[0]))],
        fields=out_fields,
        points=sum(f.points for f in facts),
        participations=sum(f.kind == "contribution" for f in facts),
        people=len({f.holder for f in facts}),
    )


HEADS = {
    "events": (("イベント名", "ポイント", "人数", "参加回数", "分野"),
               ("Event", "Points", "People", "Participations", "Field")),
    "months": (("月", "ポイント", "貢献", "寄付", "参加回数", "人数"),
               ("Month", "Points", "Contribution", "Donation", "Participations", "People")),
    "districts": (("地区", "登録者", "活動者", "ポイント", "参加回数", "負荷削減(kg-CO2)", "活動時間(h)",
                   "消費カロリー(kcal)"),
                  ("District", "Registered", "Active", "Points", "Participations", "CO2 reduction (kg)", "Hours",
                   "Calories (kcal)")),
    "fields": (("分野コード", "記号", "分野", "ポイント", "参加回数", "人数"),
               ("Field code", "Letter", "Field", "Points", "Participations", "People")),
}


def table(fig: c.Figures, name: str, lang: str) -> tuple[tuple[str, ...], list[list[Any]]]:
    en = lang == "en"
    head = HEADS[name][1 if en else 0]
    if name == "events":
        return head, [[e.name, e.points, e.people, e.participations, e.field or ""] for e in fig.events]
    if name == "months":
        return head, [[m.month, m.points, m.contribution, m.donation, m.participations, m.people] for m in fig.months]
    if name == "districts":
        return head, [[d.district or UNKNOWN[lang], d.registered, d.active, d.points, d.participations,
                       nbk._num(d.co2_kg), nbk._num(d.hours), d.kcal] for d in fig.districts]
    return head, [[f.field or "", f.field_letter or "", f.name_en if en else f.name_ja, f.points, f.participations,
                   f.people] for f in fig.fields]


def export(fig: c.Figures, q: c.FiguresExportIn) -> c.Export:
    head, rows = table(fig, q.table, q.lang)
    stamp = datetime.now(JST).date().isoformat()
    return c.Export(filename=f"figures-{q.table}-{stamp}.csv", content_type="text/csv; charset=utf-8",
                    base64=base64.b64encode(nbk.to_csv(head, rows)).decode())
