"""Life stage and life events (ライフステージ・ライフイベント), as the person states them on their home node: every
answer optional, seen and changed by them at any time, deleted at once. The answers never leave this service; the
targetable part of them (life_facets) is derived here in the same transaction, and staff only ever see counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices.models import life_facets, life_profiles
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware, insert_on_conflict

# Children's ages -> the school stage a notice may target (Japan's: 未就学, 小学生, 中学生, 高校生).
CHILD_STAGES = ((0, 5, "child_preschool"), (6, 11, "child_elementary"), (12, 14, "child_junior_high"),
                (15, 18, "child_high"))
SENIOR_BANDS = ("70s", "80_plus")  # 高齢者 notices (65+ would need an age; a band of ten years is what people give)


def facets(answers: c.LifeAnswers) -> set[tuple[str, str]]:
    """(facet, value) pairs a notice may target, from what the person said."""
    out: set[tuple[str, str]] = set()
    if answers.district:
        out.add(("district", answers.district))
    if answers.age_band:
        out.add(("stage", f"age_{answers.age_band}"))
        if answers.age_band in SENIOR_BANDS:
            out.add(("stage", "senior"))
    if answers.children_ages:
        out.add(("stage", "children"))
    for age in answers.children_ages:
        out |= {("stage", name) for lo, hi, name in CHILD_STAGES if lo <= age <= hi}
    if answers.caring:
        out.add(("stage", "caring"))
    if answers.living_alone:
        out.add(("stage", "living_alone"))
    out |= {("event", e.kind) for e in answers.events}
    out |= {("interest", code) for code in answers.interests}
    return out


def _home(actor: Actor, node: str) -> str:
    """The person's handle, when this is their home node: nobody states a life stage on a node they only visit."""
    if not actor.global_handle.endswith(f"@{node}"):
        raise c.LIFE_HOME_ONLY("a life stage is stated on the person's home node only")
    return actor.global_handle


async def get(*, session: AsyncSession, data: c.PersonQuery, node: str) -> c.LifeStage:
    person = _home(data.actor, node)
    row = (await session.execute(select(life_profiles).where(life_profiles.c.person == person))).first()
    if row is None:
        return c.LifeStage(answers=c.LifeAnswers())
    return c.LifeStage(answers=c.LifeAnswers.model_validate(row.answers), updated_at=aware(row.updated_at))


async def put(*, session: AsyncSession, data: c.LifeStagePut, node: str, now: datetime,
              districts: tuple[str, ...] = ()) -> c.LifeStage:
    """Replace the person's answers (a field left out is no longer said) and their facets."""
    person = _home(data.actor, node)
    answers = c.LifeAnswers.model_validate(data.model_dump(exclude={"actor"}))
    if answers.district and districts and answers.district not in districts:
        raise c.LIFE_DISTRICT_UNKNOWN(f"{answers.district!r} is not one of: {', '.join(districts)}")
    stored = answers.model_dump(mode="json")
    stmt = insert_on_conflict(session, life_profiles).values(person=person, answers=stored, updated_at=now)
    await session.execute(stmt.on_conflict_do_update(index_elements=["person"],
                                                     set_={"answers": stored, "updated_at": now}))
    await session.execute(delete(life_facets).where(life_facets.c.person == person))
    rows = [{"facet": f, "value": v, "person": person} for f, v in sorted(facets(answers))]
    if rows:
        await session.execute(insert(life_facets), rows)
    return c.LifeStage(answers=answers, updated_at=now)


async def delete_(*, session: AsyncSession, data: c.PersonQuery, node: str) -> c.LifeStage:
    """Forget every answer at once (the row and its facets: nothing is kept)."""
    person = _home(data.actor, node)
    await forget(session, person)
    return c.LifeStage(answers=c.LifeAnswers())


async def forget(session: AsyncSession, person: str) -> None:
    await session.execute(delete(life_facets).where(life_facets.c.person == person))
    await session.execute(delete(life_profiles).where(life_profiles.c.person == person))
