"""The points service's open data (svc.<node>.points.open_data, public) and card members over time
(svc.<node>.points.usage.months, staff): events and the points issued, points per month, figures by district, and
people with a bound card (カード会員) per month. No NATS and no commits here.

Privacy: only aggregates leave: no handle, name, card or id. Every count of people under
towntip.kernel.open_data.SUPPRESS_BELOW is withheld with what was computed from those people (their points,
participations, hours), and a district column with one withheld cell has its next smallest withheld too (the
districts add up to figures published elsewhere). The staff's series (`usage`) needs the staff role.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.notebook import figures
from services.points.notebook import service as nbk
from services.points.taps.models import card_bindings
from towntip.kernel import open_data as od
from towntip.kernel.contracts import open_data as c
from towntip.kernel.contracts.actor import Actor


async def card_members(session: AsyncSession, *, now: datetime) -> c.Usage:
    """People with a bound card, by the month their first card was bound (a person with three cards counts once)."""
    first = (await session.execute(
        select(func.min(card_bindings.c.bound_at)).where(card_bindings.c.person_account.like("person:%"))
        .group_by(card_bindings.c.person_account))).scalars().all()
    return od.usage("card_members", [nbk.jst(t) for t in first], now=now)


async def usage(session: AsyncSession, *, actor: Actor, now: datetime) -> c.Usage:
    if not actor.has("staff"):
        raise c.USAGE_STAFF_ONLY("only the node's staff see the usage figures / 職員のみが見られます")
    return await card_members(session, now=now)


def _people(raw: list[int]) -> list[int | None]:
    """A column of people's counts as published: small ones withheld, and a lone withheld one covered (the events'
    and the months' sums meet in the points issued in all)."""
    return od.complementary([od.count(n) for n in raw], raw)


def _measures(people: int | None, *values: int | float) -> list[int | float | None]:
    return [None if people is None else v for v in values]


async def tables(session: AsyncSession, *, now: datetime) -> c.OpenData:
    fig = await figures.summary(session)
    ev_people = _people([e.people for e in fig.events])
    month_people = _people([m.people for m in fig.months])
    events = c.OpenDataTable(
        name="events_points", title_ja="イベント別のまちづくりポイント発行", title_en="Points issued per event",
        columns_ja=["イベント名", "分野", "発行ポイント", "人数", "参加回数"],
        columns_en=["Event", "Field", "Points issued", "People", "Participations"],
        rows=[[e.name, e.field or "", *_measures(n, e.points), n, *_measures(n, e.participations)]
              for e, n in zip(fig.events, ev_people, strict=True)])
    months = c.OpenDataTable(
        name="points_by_month", title_ja="月別のまちづくりポイント発行", title_en="Points issued per month",
        columns_ja=["月", "発行ポイント", "うち貢献", "うち寄付", "参加回数", "人数"],
        columns_en=["Month", "Points issued", "Contribution", "Donation", "Participations", "People"],
        rows=[[m.month, *_measures(n, m.points, m.contribution, m.donation, m.participations), n]
              for m, n in zip(fig.months, month_people, strict=True)])
    ds = fig.districts
    registered = od.complementary([od.count(d.registered) for d in ds], [d.registered for d in ds])
    active = od.complementary([od.count(d.active) for d in ds], [d.active for d in ds])
    rows: list[list[c.Cell]] = []
    for d, reg, act in zip(ds, registered, active, strict=True):
        shown = act is not None or d.active == 0
        rows.append([d.district or "（地区不明）", reg, act,
                     *[v if shown else None for v in (d.points, d.participations, round(d.co2_kg, 3),
                                                      round(d.hours, 2), d.kcal)]])
    districts = c.OpenDataTable(
        name="districts", title_ja="地区別の状況", title_en="Figures by district",
        columns_ja=["地区", "登録者", "活動者", "ポイント", "参加回数", "負荷削減(kg-CO2)", "活動時間(h)",
                    "消費カロリー(kcal)"],
        columns_en=["District", "Registered", "Active", "Points", "Participations", "CO2 reduction (kg)", "Hours",
                    "Calories (kcal)"],
        rows=rows,
        notes_ja="登録者は地区を設定した人の数、活動者はその地区で記録のある人の数です。",
        notes_en="Registered: people who set the district; active: of whom, people with any record.")
    return c.OpenData(tables=[events, months, districts],
                      usage=[od.published(await card_members(session, now=now))])

