"""The projects service's open data (svc.<node>.projects.open_data, public): the node's co-creation themes
(公民共創テーマ) as published, how many there are in each phase, and its published case studies (事例). No NATS and no
commits here.

What leaves is what `/themes` and `/cases` show anyone already: titles, phases, fields, months of publication, a
case's summary. Never drafts, proposals, scores, evaluators, the people who wrote them or the companies' staff.
Themes and cases of other towns (copies received through the federation) are theirs to publish: left out.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects.models import cases, themes
from towntip.kernel.clock import JST
from towntip.kernel.contracts import open_data as o
from towntip.kernel.contracts import projects as p


def _month(t: datetime | None) -> str:
    if t is None:
        return ""
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(JST).strftime("%Y-%m")


async def tables(session: AsyncSession, *, node: str) -> o.OpenData:
    t = themes.c
    published = (await session.execute(
        select(t.title, t.phase, t.fields, t.published_at, t.wide_area)
        .where(t.status == "published", t.origin_node == node).order_by(t.published_at, t.title))).all()
    k = cases.c
    shown = (await session.execute(
        select(k.title, k.summary, k.fields, k.published_at)
        .where(k.version > 0, k.origin_node == node).order_by(k.published_at, k.title))).all()
    phases = Counter(r.phase for r in published)
    return o.OpenData(tables=[
        o.OpenDataTable(
            name="themes", title_ja="公民共創テーマ", title_en="Co-creation themes",
            columns_ja=["テーマ", "フェーズ", "フェーズ名", "分野コード", "公開月", "広域連携"],
            columns_en=["Theme", "Phase", "Phase name", "Field codes", "Published (month)", "Wide-area"],
            rows=[[r.title, r.phase, p.PHASES[r.phase], " ".join(r.fields or []), _month(r.published_at),
                   "1" if r.wide_area else "0"] for r in published],
            notes_ja="公開中のテーマのみ（下書きは含みません）。",
            notes_en="Published themes only (no drafts)."),
        o.OpenDataTable(
            name="themes_by_phase", title_ja="フェーズ別のテーマ数", title_en="Themes per phase",
            columns_ja=["フェーズ", "フェーズ名", "テーマ数"], columns_en=["Phase", "Phase name", "Themes"],
            rows=[[n, p.PHASES[n], phases.get(n, 0)] for n in sorted(p.PHASES)]),
        o.OpenDataTable(
            name="cases", title_ja="事例", title_en="Case studies",
            columns_ja=["事例", "概要", "分野コード", "公開月"],
            columns_en=["Case", "Summary", "Field codes", "Published (month)"],
            rows=[[r.title, r.summary, " ".join(r.fields or []), _month(r.published_at)] for r in shown]),
    ])
