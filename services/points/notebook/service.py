"""まちづくり手帳 (the activity notebook): each person's activity as the seed's sample page shows it — date, field,
activity, points, contribution (貢献: taps at events) vs donation (寄付: confirmed donations), 共感 (not counted until
the SNS exists), CO2 reduction, hours, calories — with totals, compared with their district's and the region's
average per person; exported as CSV (UTF-8 with BOM) or PDF.

Where the facts come from:
- taps (`taps`) of every card bound to the person (`card_bindings`; a card's taps before it was bound count too, as
  its points moved to the person), with the event's facts per participation (`events`: field, activity, minutes,
  co2_g, kcal — set by staff with the event);
- confirmed donations (`donations`, services/points/donations/) with their points and the project's field;
- the people directory (`people`, services/points/people/) for the district.

No NATS and no commits in the domain functions; the endpoints at the bottom own the transactions.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.documents import notebook as notebook_document
from services.points.donations.models import donation_projects, donations
from services.points.people import service as directory
from services.points.people.models import people
from services.points.taps.models import card_bindings, events, taps
from towntip.kernel import categories
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notebook as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware as _aware

# The seed's sample page marks each line with a letter: A 子育て研究会・子育てNPO, C
# ３R推進勉強会・資源回収・環境家計簿, D 高校演劇発表会. Those three fields can be told from it; its E (公園ゴミ拾い and
# 国際交流イベント alike) and B (not on the page) cannot, so they get no letter.
SEED_LETTERS = {"npo-13": "A", "npo-7": "C", "npo-6": "D"}
ACTIVITIES = {
    "participate": ("参加", "Took part"), "carry_out": ("実施", "Carried out"), "learn": ("受講", "Studied"),
    "volunteer": ("ボランティア", "Volunteered"), "donate": ("寄付", "Donated"),
}
NO_EMPATHY = "—"


def category(code: str | None) -> tuple[str | None, str | None, str | None]:
    """(letter, name_ja, name_en) of a category code."""
    if code is None:
        return None, None, None
    names = {k.code: k for k in categories.all_categories()}
    cat = names.get(code)
    return SEED_LETTERS.get(code), cat.name_ja if cat else code, cat.name_en if cat else code


def jst(t: datetime) -> datetime:
    return _aware(t).astimezone(JST)


def staff_only(actor: Actor) -> None:
    if not actor.has("staff"):
        raise c.FIGURES_STAFF_ONLY("only the node's staff may see the figures / 集計は職員のみが見られます")


# ---- the facts -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One participation or one confirmed donation, as the notebook and the figures count it."""

    holder: str  # person:<user id>, or card:<hash> for a card bound to nobody
    at: datetime
    kind: str  # contribution | donation
    code: str  # the event's or the project's code
    title: str
    field: str | None
    activity: str
    points: int
    minutes: int | None
    co2_g: int | None
    kcal: int | None


def _holder():
    return func.coalesce(card_bindings.c.person_account, taps.c.account_id)


def _tap_query():
    return (select(taps.c.tapped_at, taps.c.points, taps.c.role, taps.c.event_code, events.c.name, events.c.field,
                   events.c.activity, events.c.minutes, events.c.co2_g, events.c.kcal, _holder().label("holder"))
            .select_from(taps.join(events, events.c.code == taps.c.event_code)
                         .outerjoin(card_bindings, card_bindings.c.card_account == taps.c.account_id)))


def _donation_query():
    return (select(donations.c.confirmed_at, donations.c.points, donations.c.person, donations.c.project_code,
                   donation_projects.c.title, donation_projects.c.field)
            .select_from(donations.join(donation_projects, donation_projects.c.code == donations.c.project_code))
            .where(donations.c.status == "confirmed"))


async def facts(session: AsyncSession, *, person: str | None = None) -> list[Fact]:
    """Every participation and confirmed donation (of one person: their user id), oldest first."""
    tq, dq = _tap_query(), _donation_query()
    if person is not None:
        tq = tq.where(card_bindings.c.person_account == f"person:{person}")
        dq = dq.where(donations.c.person == person)
    out = [Fact(holder=r.holder, at=_aware(r.tapped_at), kind="contribution", code=r.event_code, title=r.name,
                field=r.field, activity="volunteer" if r.role == "volunteer" else (r.activity or "participate"),
                points=r.points, minutes=r.minutes, co2_g=r.co2_g, kcal=r.kcal)
           for r in await session.execute(tq)]
    out += [Fact(holder=f"person:{r.person}", at=_aware(r.confirmed_at), kind="donation", code=r.project_code,
                 title=r.title, field=r.field, activity="donate", points=r.points, minutes=None, co2_g=None,
                 kcal=None)
            for r in await session.execute(dq)]
    out.sort(key=lambda f: (f.at, f.kind, f.code))
    return out


@dataclass
class Sums:
    entries: int = 0
    points: int = 0
    contribution: int = 0
    donation: int = 0
    minutes: int = 0
    co2_g: int = 0
    kcal: int = 0

    def add(self, *, entries: int, points: int, kind: str, minutes: int | None, co2_g: int | None,
            kcal: int | None) -> None:
        self.entries += entries
        self.points += points
        if kind == "donation":
            self.donation += points
        else:
            self.contribution += points
        self.minutes += minutes or 0
        self.co2_g += co2_g or 0
        self.kcal += kcal or 0

    def totals(self) -> c.Totals:
        return c.Totals(entries=self.entries, points=self.points, contribution=self.contribution,
                        donation=self.donation, co2_kg=self.co2_g / 1000, hours=round(self.minutes / 60, 2),
                        kcal=self.kcal)


async def sums_per_person(session: AsyncSession) -> dict[str, Sums]:
    """Totals per holder (person:<id> or an unbound card), summed by the database."""
    holder = _holder()
    out: dict[str, Sums] = {}
    rows = await session.execute(
        select(holder.label("holder"), func.count().label("n"), func.coalesce(func.sum(taps.c.points), 0).label("p"),
               func.sum(events.c.minutes).label("m"), func.sum(events.c.co2_g).label("g"),
               func.sum(events.c.kcal).label("k"))
        .select_from(taps.join(events, events.c.code == taps.c.event_code)
                     .outerjoin(card_bindings, card_bindings.c.card_account == taps.c.account_id))
        .group_by(holder))
    for r in rows:
        out.setdefault(r.holder, Sums()).add(entries=r.n, points=int(r.p), kind="contribution", minutes=r.m,
                                             co2_g=r.g, kcal=r.k)
    rows = await session.execute(
        select(donations.c.person, func.count().label("n"), func.coalesce(func.sum(donations.c.points), 0).label("p"))
        .where(donations.c.status == "confirmed").group_by(donations.c.person))
    for r in rows:
        out.setdefault(f"person:{r.person}", Sums()).add(entries=r.n, points=int(r.p), kind="donation", minutes=None,
                                                         co2_g=None, kcal=None)
    return out


def average(scope: str, name: str, members: list[str], per_person: dict[str, Sums]) -> c.Average:
    n = len(members)
    s = Sums()
    for uid in members:
        one = per_person.get(f"person:{uid}")
        if one is not None:
            for k in ("entries", "points", "contribution", "donation", "minutes", "co2_g", "kcal"):
                setattr(s, k, getattr(s, k) + getattr(one, k))

    def per(v: float) -> float:
        return round(v / n, 2) if n else 0.0

    return c.Average(scope=scope, name=name, people=n, entries=per(s.entries), points=per(s.points),
                     contribution=per(s.contribution), donation=per(s.donation),
                     co2_kg=round(s.co2_g / 1000 / n, 3) if n else 0.0, hours=per(s.minutes / 60), kcal=per(s.kcal))


def entry(f: Fact) -> c.Entry:
    letter, ja, en = category(f.field)
    return c.Entry(on=jst(f.at).date(), kind=f.kind, title=f.title, field=f.field, field_letter=letter,
                   field_ja=ja, field_en=en, activity=f.activity, points=f.points,
                   co2_kg=None if f.co2_g is None else f.co2_g / 1000,
                   hours=None if f.minutes is None else round(f.minutes / 60, 2), kcal=f.kcal)


async def notebook(session: AsyncSession, *, actor: Actor, node: str, empathy: int | None = None) -> c.Notebook:
    """The person's notebook. Records who they are (the gateway vouches for the actor) in the directory first.
    `empathy`: the 共感 they received, as the gateway counted it at the sns and projects services (None: not
    counted, shown as "—")."""
    await directory.link_actor(session, actor)
    me = await directory.person(session, actor.user_id)
    mine = await facts(session, person=actor.user_id)
    total = Sums()
    for f in mine:
        total.add(entries=1, points=f.points, kind=f.kind, minutes=f.minutes, co2_g=f.co2_g, kcal=f.kcal)
    linked = (await session.execute(select(people.c.user_id, people.c.district)
                                    .where(people.c.user_id.is_not(None)))).all()
    per_person = await sums_per_person(session)
    region = average("region", node, [r.user_id for r in linked], per_person)
    district = me.district if me is not None else ""
    near = (average("district", district, [r.user_id for r in linked if r.district == district], per_person)
            if district else None)
    return c.Notebook(global_handle=actor.global_handle, display_name=me.display_name if me else actor.display_name,
                      district=district, entries=[entry(f) for f in mine],
                      totals=total.totals().model_copy(update={"empathy": empathy}),
                      district_average=near, region_average=region, empathy_counted=empathy is not None)


# ---- exports ---------------------------------------------------------------------------------------------------

HEAD = {
    "ja": ("実施日", "分野", "内容", "活動", "獲得ポイント", "貢献", "寄付", "共感", "負荷削減(kg-CO2)", "活動時間(h)",
           "消費カロリー(kcal)"),
    "en": ("Date", "Field", "Activity", "Kind", "Points", "Contribution", "Donation", "Empathy", "CO2 reduction (kg)",
           "Hours", "Calories (kcal)"),
}
WORDS = {
    "ja": {"total": "合計", "district": "地区平均（{name}・{n}人）", "region": "地域全体の平均（{n}人）",
           "empathy": "共感: SNS機能の公開まで集計していません（—）", "title": "まちづくり手帳",
           "empathy_counted": "共感: 投稿・コメント・テーマ・事例に受け取った共感の数（合計欄）",
           "printed": "作成日"},
    "en": {"total": "Total", "district": "District average ({name}, {n} people)",
           "region": "Region average ({n} people)",
           "empathy": "Empathy: not counted until the portal's SNS opens (—)", "title": "Activity notebook",
           "empathy_counted": "Empathy: received on your posts, comments, themes and cases (in the total)",
           "printed": "Printed"},
}


def _num(v: float | int | None) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if v % 1 else str(int(v))
    return str(v)


def field_label(e: c.Entry, lang: str) -> str:
    if e.field is None:
        return ""
    name = e.field_en if lang == "en" else e.field_ja
    return f"{e.field_letter} {name}" if e.field_letter else str(name)


def table_rows(nb: c.Notebook, lang: str) -> tuple[list[list[str]], list[list[str]]]:
    """(the lines, the summary lines: total, district and region averages) as text cells."""
    w = WORDS[lang]
    rows = []
    for e in nb.entries:
        act = ACTIVITIES.get(e.activity, (e.activity, e.activity))[1 if lang == "en" else 0]
        rows.append([e.on.isoformat(), field_label(e, lang), e.title, act, str(e.points),
                     str(e.points) if e.kind == "contribution" else "", str(e.points) if e.kind == "donation" else "",
                     NO_EMPATHY, _num(e.co2_kg), _num(e.hours), _num(e.kcal)])
    t = nb.totals
    summary = [[w["total"], "", f"{t.entries}", "", str(t.points), str(t.contribution), str(t.donation),
                NO_EMPATHY if t.empathy is None else str(t.empathy),
                _num(t.co2_kg), _num(t.hours), str(t.kcal)]]
    for a in (nb.district_average, nb.region_average):
        if a is None:
            continue
        label = w[a.scope].format(name=a.name, n=a.people)
        summary.append([label, "", _num(a.entries), "", _num(a.points), _num(a.contribution), _num(a.donation),
                        NO_EMPATHY, _num(a.co2_kg), _num(a.hours), _num(a.kcal)])
    return rows, summary


def to_csv(header: Iterable[str], rows: Iterable[Iterable[Any]], notes: Iterable[str] = ()) -> bytes:
    """CSV as Excel opens Japanese text: UTF-8 with a BOM, CRLF line ends; notes as rows of one cell at the end."""
    buf = io.StringIO()
    header = list(header)
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(header)
    out.writerows(rows)
    for note in notes:
        out.writerow([note] + [""] * (len(header) - 1))
    return buf.getvalue().encode("utf-8-sig")


def notebook_csv(nb: c.Notebook, lang: str) -> bytes:
    rows, summary = table_rows(nb, lang)
    return to_csv(HEAD[lang], rows + summary, [empathy_note(nb, lang)])


def empathy_note(nb: c.Notebook, lang: str) -> str:
    return WORDS[lang]["empathy_counted" if nb.empathy_counted else "empathy"]


def notebook_pdf(nb: c.Notebook, lang: str, *, printed: str) -> bytes:
    """The notebook on A4 landscape pages (services/points/documents/notebook.py): the table, totals, comparison."""
    w = WORDS[lang]
    rows, summary = table_rows(nb, lang)
    district = f" / {nb.district}" if nb.district else ""
    return notebook_document.notebook_pdf(
        title=f"{w['title']} {nb.global_handle}", heading=f"{w['title']}  {nb.display_name} ({nb.global_handle})",
        subheading=f"{w['printed']} {printed}{district}", head=HEAD[lang], rows=rows, summary=summary,
        note=empathy_note(nb, lang))


def export(nb: c.Notebook, q: c.NotebookExportIn) -> c.Export:
    today = datetime.now(JST).date().isoformat()
    stem = f"machizukuri-techo-{nb.global_handle.split('@')[0]}-{today}"
    if q.format == "csv":
        return c.Export(filename=f"{stem}.csv", content_type="text/csv; charset=utf-8",
                        base64=base64.b64encode(notebook_csv(nb, q.lang)).decode())
    return c.Export(filename=f"{stem}.pdf", content_type="application/pdf",
                    base64=base64.b64encode(notebook_pdf(nb, q.lang, printed=today)).decode())
