"""まちづくりナビ (issue 18, point 6): for one person, communities, events, volunteer openings and themes inviting
partners that fit their interests, district and history, each with the reason shown; staff see counts of what was
shown and taken per kind and reason, never who. No NATS here: the candidates come through `Candidates`.

Privacy: the interests and district come from the person's life-stage answers (this service's `life_facets`), or,
where they stated none, from their identity profile passed by the gateway. Neither leaves this node: the services
asked for candidates are asked only for their public lists, never with the person's answers. Nothing of a person's
suggestions or clicks is stored: only counts (`navi_counts`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notices.activity_models import navi_counts
from services.notices.models import life_facets
from towntip.kernel import db
from towntip.kernel.contracts import notices_activity as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.identity import ROLES as STAFF_ROLES
from towntip.kernel.errors import Forbidden


class Candidates(Protocol):
    """The public lists the suggestions are chosen from (the owning services, over the bus)."""

    async def communities(self) -> list[sc.Community]: ...

    async def my_communities(self, actor: Actor) -> list[sc.Community]: ...

    async def events(self) -> list[pc.EventOut]: ...

    async def themes(self) -> list[prc.Theme]: ...


async def _facets(session: AsyncSession, person: str) -> tuple[list[str], list[str]]:
    rows = await session.execute(
        select(life_facets.c.facet, life_facets.c.value).where(
            life_facets.c.person == person, life_facets.c.facet.in_(("district", "interest"))
        )
    )
    districts: list[str] = []
    interests: list[str] = []
    for facet, value in rows:
        (districts if facet == "district" else interests).append(value)
    return districts, interests


def _why(
    categories: Iterable[str], text: str, interests: list[str], districts: list[str], history: set[str]
) -> tuple[c.Reason, str] | None:
    cats = list(categories)
    for cat in cats:
        if cat in interests:
            return "interest", cat
    for d in districts:
        if d and d in text:
            return "district", d
    for cat in cats:
        if cat in history:
            return "history", cat
    return None


def _from_communities(found: list[sc.Community], mine: set[str], fit: Any) -> list[c.Suggestion]:
    out = []
    for cm in found:
        if cm.status != "open" or cm.id in mine:
            continue
        if (why := fit(cm.categories, f"{cm.name} {cm.description}")) is not None:
            out.append(
                c.Suggestion(
                    kind="community",
                    ref=cm.id,
                    title=cm.name,
                    link=f"/communities/{cm.id}",
                    reason=why[0],
                    because=why[1],
                )
            )
    return out


def _from_events(found: list[pc.EventOut], now: datetime, fit: Any) -> list[c.Suggestion]:
    out = []
    for ev in found:
        if ev.starts_at is None or ev.starts_at <= now:
            continue
        if (why := fit([ev.field] if ev.field else [], f"{ev.name} {ev.venue_name or ''}")) is not None:
            helping = ev.activity == "carry_out" or ev.volunteer_points > ev.participant_points
            kind: c.NaviKind = "volunteer" if helping else "event"
            out.append(
                c.Suggestion(
                    kind=kind,
                    ref=ev.code,
                    title=ev.name,
                    link=f"/events/{ev.code}",
                    reason=why[0],
                    because=why[1],
                    when=ev.starts_at,
                )
            )
    return out


def _from_themes(found: list[prc.Theme], now: datetime, fit: Any) -> list[c.Suggestion]:
    out = []
    for th in found:
        req = th.requirements
        if th.status != "published" or req is None or req.call_opened_at is None or req.deadline <= now:
            continue
        if (why := fit(th.fields, f"{th.title} {th.target}")) is not None:
            out.append(
                c.Suggestion(
                    kind="theme",
                    ref=th.id,
                    title=th.title,
                    link=f"/themes/{th.id}",
                    reason=why[0],
                    because=why[1],
                    when=req.deadline,
                )
            )
    return out


async def suggest(
    *, sessions: async_sessionmaker[AsyncSession], q: c.NaviQuery, now: datetime, candidates: Candidates
) -> c.NaviList:
    async with sessions() as session:
        districts, interests = await _facets(session, q.actor.global_handle)
    source: Any = "life"
    if not districts and not interests:
        districts, interests = [q.district] if q.district else [], list(q.interests)
        source = "profile" if districts or interests else "none"
    mine = await candidates.my_communities(q.actor)
    history = {cat for cm in mine for cat in cm.categories}

    def fit(categories: Iterable[str], text: str) -> tuple[c.Reason, str] | None:
        return _why(categories, text, interests, districts, history)

    found = (
        _from_events(await candidates.events(), now, fit)
        + _from_communities(await candidates.communities(), {cm.id for cm in mine}, fit)
        + _from_themes(await candidates.themes(), now, fit)
    )
    order = {"interest": 0, "district": 1, "history": 2}
    found.sort(key=lambda s: (order[s.reason], s.when or now))
    items = found[: q.limit]
    if items:
        async with sessions() as session, session.begin():
            await _count(session, items, "shown")
    return c.NaviList(items=items, source=source)


async def _count(session: AsyncSession, items: Iterable[Any], column: str) -> None:
    tally: dict[tuple[str, str], int] = {}
    for s in items:
        tally[(s.kind, s.reason)] = tally.get((s.kind, s.reason), 0) + 1
    for (kind, reason), n in sorted(tally.items()):
        values = {"shown": 0, "taken": 0, column: n}
        stmt = db.insert_on_conflict(session, navi_counts).values(kind=kind, reason=reason, **values)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=["kind", "reason"], set_={column: navi_counts.c[column] + n})
        )


async def take(session: AsyncSession, *, data: c.NaviTake) -> c.NaviTaken:
    """A suggestion followed: counted for its kind and reason (never who); answers where to go."""
    if data.link.startswith("//"):
        raise c.NAVI_UNKNOWN("a suggestion leads to a page of this portal only")
    await _count(session, [data], "taken")
    return c.NaviTaken(link=data.link)


async def figures(session: AsyncSession, *, q: c.NaviFiguresQuery) -> c.NaviFigures:
    if not q.actor.has(*STAFF_ROLES):
        raise Forbidden("only staff see the navi's figures")
    rows = await session.execute(select(navi_counts).order_by(navi_counts.c.kind, navi_counts.c.reason))
    return c.NaviFigures(rows=[c.NaviFigure(kind=r.kind, reason=r.reason, shown=r.shown, taken=r.taken) for r in rows])
