"""Which companies fit a theme, and which themes fit a company (企業リスト化). No NATS, no commits here.

A company fits a theme by the fields they share (the category grid) and by the words of the theme's "where
companies can help" (企業連携ポイント) found in the company's expertise. Japanese is written without spaces, so a
text's words are taken as runs of one script: kanji, katakana, Latin letters and digits; hiragana (particles,
okurigana) and punctuation separate them ("配車システム、車両と運行" -> 配車, システム, 車両, 運行). A word needs two
characters at least (three for Latin), and is looked for in the other text after NFKC normalisation, ignoring case.

Score: 2 per shared field + 1 per word found; only those with a score above zero are listed, best first, then by
name. The list is for the theme's managers (the owner department's staff, the secretariat); a company's members
see the themes that fit it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects import themes as theme_domain
from services.projects.common import aware, roles_of
from services.projects.models import organisations, themes
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor

FIELD_WEIGHT = 2
_RUNS = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf々〆ヵヶ]+|[\u30a0-\u30ffー]+|[a-z0-9][a-z0-9+#.\-]*")


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def words_of(text: str) -> list[str]:
    """The words of a text, once each, in order."""
    out: list[str] = []
    for run in _RUNS.findall(_norm(text)):
        run = run.strip(".-")
        ascii_ = run.isascii()
        if (ascii_ and len(run) >= 3) or (not ascii_ and len(run) >= 2):
            if run not in out and run != "ー" * len(run):
                out.append(run)
    return out


def fit(theme_fields: list[str], words: list[str], org_fields: list[str], expertise: str) -> tuple[int, list[str],
                                                                                                    list[str]]:
    shared = sorted(set(theme_fields or []) & set(org_fields or []))
    text = _norm(expertise)
    found = [w for w in words if w in text]
    return FIELD_WEIGHT * len(shared) + len(found), shared, found


def _org(row: Any) -> c.Org:
    return c.Org(id=row.id, origin_node=row.origin_node, kind=row.kind, name=row.name, size=row.size,
                 industry=row.industry, fields=list(row.fields or []), expertise=row.expertise, website=row.website,
                 created_at=aware(row.created_at), updated_at=aware(row.updated_at))


async def companies_for(*, session: AsyncSession, theme_id: str, actor: Actor | None) -> c.CompanyMatches:
    row = await theme_domain._theme_row(session, theme_id, actor)
    if not await theme_domain.may_manage(session, actor, row.owner_department_id):
        raise c.MATCHING_NOT_FOR_YOU("the companies that fit a theme are listed for its owner department and the "
                               "secretariat")
    words = words_of(row.company_points)
    matches = []
    for org in await session.execute(select(organisations).where(organisations.c.kind == "company")):
        score, shared, found = fit(list(row.fields or []), words, list(org.fields or []), org.expertise)
        if score > 0:
            matches.append(c.CompanyMatch(org=_org(org), score=score, fields=shared, words=found))
    matches.sort(key=lambda m: (-m.score, m.org.name))
    return c.CompanyMatches(theme_id=row.id, words=words, matches=matches)


async def themes_for(*, session: AsyncSession, q: c.OrgMatchQuery) -> c.ThemeMatches:
    org = (await session.execute(select(organisations).where(organisations.c.id == q.org_id))).first()
    if org is None:
        raise c.ORG_NOT_FOUND(f"no organisation {q.org_id}")
    if q.org_id not in await roles_of(session, q.actor.global_handle) and not q.actor.has("staff", "secretariat"):
        raise c.MATCHING_NOT_FOR_YOU(f"the themes that fit {org.name!r} are shown to its members")
    stmt = theme_domain._themes_query().where(themes.c.status == "published", themes.c.phase <= 2)
    matches = []
    for row in await session.execute(stmt):
        score, shared, found = fit(list(row.fields or []), words_of(row.company_points), list(org.fields or []),
                                   org.expertise)
        if score > 0:
            theme = await theme_domain._out(session, row, q.actor)
            matches.append(c.ThemeMatch(theme=theme, score=score, fields=shared, words=found))
    matches.sort(key=lambda m: (-m.score, m.theme.title))
    return c.ThemeMatches(org_id=org.id, matches=matches)
