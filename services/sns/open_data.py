"""The sns service's open data (svc.<node>.sns.open_data, public) and community leaders over time
(svc.<node>.sns.usage.months, staff). No NATS and no commits here.

What leaves: each open community's name, categories, the month it opened and its number of members (a number under
towntip.kernel.open_data.SUPPRESS_BELOW withheld), communities per category; the leaders
(コミュニティリーダー) per month. Never a handle, a display name, a post or who is a member: the communities' names and
categories are what the portal shows anyone already.

Leaders are counted as they are now: each person leading an open community, from the month the first community they
lead opened (the service keeps no history of hand-overs).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns.models import communities
from towntip.kernel import categories
from towntip.kernel import open_data as od
from towntip.kernel.clock import JST
from towntip.kernel.contracts import open_data as c
from towntip.kernel.contracts.actor import Actor


def _jst(t: datetime) -> datetime:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(JST)


async def leaders(session: AsyncSession, *, now: datetime) -> c.Usage:
    first = (await session.execute(
        select(func.min(communities.c.opened_at))
        .where(communities.c.status == "open", communities.c.leader.is_not(None))
        .group_by(communities.c.leader))).scalars().all()
    return od.usage("community_leaders", first, now=now)


async def usage(session: AsyncSession, *, actor: Actor, now: datetime) -> c.Usage:
    if not actor.has("staff"):
        raise c.USAGE_STAFF_ONLY("only the node's staff see the usage figures / 職員のみが見られます")
    return await leaders(session, now=now)


async def tables(session: AsyncSession, *, now: datetime) -> c.OpenData:
    rows = (await session.execute(
        select(communities.c.name, communities.c.categories, communities.c.members, communities.c.opened_at)
        .where(communities.c.status == "open").order_by(communities.c.opened_at, communities.c.name))).all()
    names = {k.code: k.name_ja for k in categories.all_categories()}
    per_cat: dict[str, int] = defaultdict(int)
    for r in rows:
        for code in r.categories or []:
            per_cat[code] += 1
    order = {k.code: i for i, k in enumerate(categories.all_categories())}
    cats = sorted(per_cat, key=lambda k: order.get(k, 10_000))
    return c.OpenData(tables=[
        c.OpenDataTable(
            name="communities", title_ja="テーマコミュニティ", title_en="Theme communities",
            columns_ja=["コミュニティ名", "分野コード", "開設月", "メンバー数"],
            columns_en=["Community", "Field codes", "Opened (month)", "Members"],
            rows=[[r.name, " ".join(r.categories or []), _jst(r.opened_at).strftime("%Y-%m"), od.count(r.members)]
                  for r in rows],
            notes_ja="公開中のコミュニティのみ。", notes_en="Open communities only."),
        c.OpenDataTable(
            name="communities_by_field", title_ja="分野別のコミュニティ", title_en="Communities per field",
            columns_ja=["分野コード", "分野", "コミュニティ数"],
            columns_en=["Field code", "Field", "Communities"],
            rows=[[k, names.get(k, ""), per_cat[k]] for k in cats],
            # members summed per field would give a withheld community's members away (the field's sum less the
            # others'): not published
            notes_ja="1つのコミュニティは複数の分野に数えられます。",
            notes_en="A community counts under each of its fields."),
    ], usage=[od.published(await leaders(session, now=now))])
