"""Matching (マッチング, issue 20 point 5): openings (募集) of communities and co-creation themes, the openings that
fit a person with the reason, applications, the organiser's answer, and the skills people state. No NATS and no commits
here: the adapter owns the transaction; the projects service is reached through `Themes` (services/sns/themes.py).

Who may do what: a community's current leader posts for it; for a theme, whoever the projects service says may
manage it (`themes.get` answers `may_manage` for the actor: its owner department's staff, the secretariat). Only the
person who posted an opening (its organiser) sees its applicants, accepts, declines or closes it. Anyone signed in
at this node (people of other nodes logged in here too) applies, once per opening; a declined person may not apply
again, a withdrawn one may. Refusals change nothing.

A fit and its reason: the opening's categories among the person's interests (関心分野), its district the person's
(地区), or a word of the skills it wants among the words of the skills the person stated (スキル). The interests and
district come with the request (the gateway passes the person's profile); nothing of them is stored here. The
skills are stored (`person_skills`) until the person empties them or their account is deleted.

Personal data kept: applications (the applicant's handle, their message to the organiser, the answer and who gave
it), shown to the organiser and the applicant only; events carry handles, never the messages. A deleted account's
applications go, and the openings they organised stay, by nobody, closed.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import people as sns_people
from services.sns.communities import names_of, person_of
from services.sns.models import applications, bus, communities, openings, person_skills
from towntip.kernel import categories
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts import sns_openings as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.sns import Person, SnsEvent
from towntip.kernel.db import aware
from towntip.kernel.uow import UnitOfWork

CANDIDATES_MAX = 500  # open openings looked at for one person's list (the newest)
_RUNS = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf々〆ヵヶ]+|[\u30a0-\u30ffー]+|[a-z0-9][a-z0-9+#.\-]*")


class Themes(Protocol):
    """The projects service as this one reaches it: a theme's title and whether the actor may manage it (None: no
    such theme for them)."""

    async def manageable(self, theme_id: str, actor: Actor) -> tuple[str, bool] | None: ...


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def words_of(text: str) -> list[str]:
    """The words of a free text, once each, in order: runs of one script (kanji, katakana, Latin letters and digits),
    as services/projects/matching.py takes them (hiragana and punctuation separate words); here a word of one kanji
    or two Latin letters counts too (a skill is often one: 書, PC)."""
    out: list[str] = []
    for run in _RUNS.findall(_norm(text)):
        run = run.strip(".-")
        if run and run not in out and run != "ー" * len(run) and (len(run) >= 2 or not run.isascii()):
            out.append(run)
    return out[:32]


# ---- views ------------------------------------------------------------------------------------------------------

def _application(row: Any, names: dict[str, str]) -> c.Application:
    return c.Application(id=row.id, opening_id=row.opening_id,
                         applicant=person_of(row.applicant, names) or Person(global_handle="", display_name=""),
                         message=row.message, status=row.status, applied_at=aware(row.applied_at),
                         decided_at=aware(row.decided_at))


def _opening(row: Any, names: dict[str, str], actor: Actor | None, mine: Any = None) -> c.Opening:
    organiser = person_of(row.organiser, names) or Person(global_handle="", display_name="退会したユーザー")
    return c.Opening(
        id=row.id, host_kind=row.host_kind, host_id=row.host_id, host_name=row.host_name, organiser=organiser,
        title=row.title, task=row.task, skills=row.skills, categories=list(row.categories or []),
        district=row.district, place=row.place, starts_at=aware(row.starts_at), ends_at=aware(row.ends_at),
        capacity=row.capacity, accepted=row.accepted, event_code=row.event_code, status=row.status,
        created_at=aware(row.created_at), is_organiser=actor is not None and row.organiser == actor.global_handle,
        mine=_application(mine, names) if mine is not None else None)


async def _views(session: AsyncSession, rows: list[Any], actor: Actor | None) -> list[c.Opening]:
    mine: dict[str, Any] = {}
    if actor is not None and rows:
        found = await session.execute(select(applications).where(
            applications.c.applicant == actor.global_handle,
            applications.c.opening_id.in_([r.id for r in rows])))
        mine = {r.opening_id: r for r in found}
    handles = {r.organiser for r in rows if r.organiser} | ({actor.global_handle} if actor and mine else set())
    names = await names_of(session, handles)
    return [_opening(r, names, actor, mine.get(r.id)) for r in rows]


async def _row(session: AsyncSession, opening_id: str, *, lock: bool = False) -> Any:
    q = select(openings).where(openings.c.id == opening_id)
    row = (await session.execute(q.with_for_update() if lock else q)).first()
    if row is None:
        raise c.OPENING_NOT_FOUND(f"no opening {opening_id} / 募集が見つかりません")
    return row


# ---- posting ----------------------------------------------------------------------------------------------------

async def create(*, uow: UnitOfWork, node: str, data: c.OpeningCreate, themes: Themes | None) -> c.Opening:
    """Post an opening. A theme's managers are asked of the projects service first (outside the transaction)."""
    if data.ends_at is not None and data.ends_at < data.starts_at:
        raise c.OPENING_BAD_DATES("the opening ends before it starts / 終了が開始より前です")
    theme_title = None
    if data.host_kind == "theme":
        found = await themes.manageable(data.host_id, data.actor) if themes is not None else None
        if found is None:
            raise c.OPENING_HOST_NOT_FOUND(f"no theme {data.host_id} / テーマが見つかりません")
        theme_title, may = found
        if not may:
            raise c.OPENING_NOT_HOST("only the theme's managers post openings for it / テーマの担当者のみ")

    async def change(session: AsyncSession, now: datetime) -> c.Opening:
        cats = list(data.categories)
        if data.host_kind == "community":
            row = (await session.execute(select(communities).where(communities.c.id == data.host_id)
                                         .with_for_update())).first()
            if row is None or row.status != "open":
                raise c.OPENING_HOST_NOT_FOUND(f"no open community {data.host_id} / コミュニティが見つかりません")
            if row.leader != data.actor.global_handle:
                raise c.OPENING_NOT_HOST("only the community's leader posts its openings / リーダーのみ募集できます")
            host_name = row.name
            cats = cats or list(row.categories or [])[:c.CATEGORIES_MAX]
        else:
            host_name = theme_title or ""
        await sns_people.link(session, data.actor, now)
        oid = new_id()
        await session.execute(insert(openings).values(
            id=oid, host_kind=data.host_kind, host_id=data.host_id, host_name=host_name,
            organiser=data.actor.global_handle, title=data.title, task=data.task, skills=data.skills,
            skill_words=words_of(data.skills), categories=cats, district=data.district, place=data.place,
            starts_at=data.starts_at.astimezone(UTC),  # SQLite keeps no offset: always store UTC
            ends_at=data.ends_at.astimezone(UTC) if data.ends_at else None, capacity=data.capacity, accepted=0,
            event_code=data.event_code, status="open", created_at=now, closed_at=None))
        await announce(session, bus, node=node, at=now, event=c.OpeningPosted(
            opening_id=oid, host_kind=data.host_kind, host_id=data.host_id, categories=cats,
            organiser=data.actor.global_handle, at=now))
        return (await _views(session, [await _row(session, oid)], data.actor))[0]

    return await uow.write(change)


async def get(session: AsyncSession, *, q: c.OpeningQuery) -> c.Opening:
    return (await _views(session, [await _row(session, q.opening_id)], q.actor))[0]


async def list_(session: AsyncSession, *, q: c.OpeningListQuery) -> c.OpeningList:
    if q.category and q.category not in categories.codes():
        raise sc.COMMUNITY_UNKNOWN_CATEGORY(f"unknown category {q.category!r}")
    stmt = select(openings).order_by(openings.c.id.desc())
    if not q.include_closed:
        stmt = stmt.where(openings.c.status == "open")
    if q.host_id:
        stmt = stmt.where(openings.c.host_id == q.host_id)
    rows = list(await session.execute(stmt.limit(CANDIDATES_MAX if q.category else q.limit)))
    if q.category:
        rows = [r for r in rows if q.category in (r.categories or [])][:q.limit]
    return c.OpeningList(openings=await _views(session, rows, None))


async def close(session: AsyncSession, *, data: c.OpeningAction, now: datetime) -> c.Opening:
    row = await _row(session, data.opening_id, lock=True)
    _must_organise(row, data.actor)
    if row.status == "open":
        await session.execute(update(openings).where(openings.c.id == row.id).values(status="closed", closed_at=now))
    return (await _views(session, [await _row(session, row.id)], data.actor))[0]


def _must_organise(row: Any, actor: Actor) -> None:
    if row.organiser != actor.global_handle:
        raise c.OPENING_NOT_ORGANISER("only the opening's organiser may do this / 募集した人のみが行えます")


# ---- what fits a person -----------------------------------------------------------------------------------------

def reasons(row: Any, *, interests: set[str], district: str, skills: list[str]) -> list[c.Reason]:
    """Why an opening fits: each shared category, the district, each skill word it wants that the person has."""
    out = [c.Reason(kind="interest", value=cat) for cat in (row.categories or []) if cat in interests]
    mine = _norm(district).strip()
    if mine and (_norm(row.district).strip() == mine or (mine in _norm(row.place))):
        out.append(c.Reason(kind="district", value=district.strip()))
    wanted = _norm(row.skills)
    out += [c.Reason(kind="skill", value=w) for w in skills if w in (row.skill_words or []) or w in wanted]
    return out


async def for_me(session: AsyncSession, *, q: c.ForMeQuery, now: datetime) -> c.Matches:
    me = q.actor.global_handle
    stated = (await session.execute(select(person_skills).where(person_skills.c.global_handle == me))).first()
    skills = list(stated.words) if stated else []
    rows = list(await session.execute(select(openings).where(openings.c.status == "open")
                                      .order_by(openings.c.id.desc()).limit(CANDIDATES_MAX)))
    interests = set(q.interests)
    fits: list[tuple[Any, list[c.Reason]]] = []
    for r in rows:
        if r.organiser == me or aware(r.ends_at or r.starts_at) < now:
            continue
        why = reasons(r, interests=interests, district=q.district, skills=skills)
        if why:
            fits.append((r, why))
    fits.sort(key=lambda f: (-len(f[1]), aware(f[0].starts_at)))
    fits = fits[:q.limit]
    views = await _views(session, [r for r, _ in fits], q.actor)
    return c.Matches(matches=[c.Match(opening=v, reasons=why) for v, (_, why) in zip(views, fits, strict=True)],
                     skills=stated.skills if stated else "")


async def get_skills(session: AsyncSession, *, q: c.SkillsQuery) -> c.Skills:
    row = (await session.execute(select(person_skills).where(
        person_skills.c.global_handle == q.actor.global_handle))).first()
    return c.Skills(skills=row.skills, words=list(row.words)) if row else c.Skills(skills="", words=[])


async def put_skills(session: AsyncSession, *, data: c.SkillsIn, now: datetime) -> c.Skills:
    me = data.actor.global_handle
    await session.execute(delete(person_skills).where(person_skills.c.global_handle == me))
    words = words_of(data.skills)
    if data.skills:
        await session.execute(insert(person_skills).values(global_handle=me, skills=data.skills, words=words,
                                                           updated_at=now))
    return c.Skills(skills=data.skills, words=words)


# ---- applications -----------------------------------------------------------------------------------------------

async def apply(session: AsyncSession, *, node: str, data: c.ApplyIn, now: datetime) -> c.Application:
    row = await _row(session, data.opening_id, lock=True)
    me = data.actor.global_handle
    if row.organiser == me:
        raise c.OPENING_OWN("the organiser cannot apply to their own opening / ご自身の募集には応募できません")
    if row.status != "open":
        raise c.OPENING_CLOSED("the opening is closed / この募集は締め切られました")
    if row.accepted >= row.capacity:
        raise c.OPENING_FULL("the opening has all the people it asked for / 募集人数に達しました")
    before = (await session.execute(select(applications).where(
        applications.c.opening_id == row.id, applications.c.applicant == me))).first()
    if before is not None and before.status != "withdrawn":
        raise c.OPENING_ALREADY_APPLIED("you applied to this opening already / すでに応募しています")
    if before is None:
        aid = new_id()
        try:  # the opening's row is locked: only a crossing the lock missed could clash
            await session.execute(insert(applications).values(
                id=aid, opening_id=row.id, applicant=me, message=data.message, status="pending", applied_at=now,
                decided_at=None, decided_by=None))
        except IntegrityError:  # the same person, at the same moment, from another window
            raise c.OPENING_ALREADY_APPLIED("you applied to this opening already / すでに応募しています") from None
    else:
        aid = before.id
        await session.execute(update(applications).where(applications.c.id == aid).values(
            message=data.message, status="pending", applied_at=now, decided_at=None, decided_by=None))
    await announce(session, bus, node=node, at=now, event=c.OpeningApplied(
        application_id=aid, opening_id=row.id, title=row.title, applicant=me, organiser=row.organiser or "", at=now))
    return await _application_view(session, aid)


async def _application_view(session: AsyncSession, application_id: str) -> c.Application:
    row = (await session.execute(select(applications).where(applications.c.id == application_id))).one()
    return _application(row, await names_of(session, {row.applicant}))


async def withdraw(session: AsyncSession, *, node: str, data: c.OpeningAction, now: datetime) -> c.Application:
    row = await _row(session, data.opening_id, lock=True)
    app = (await session.execute(select(applications).where(
        applications.c.opening_id == row.id, applications.c.applicant == data.actor.global_handle))).first()
    if app is None or app.status not in ("pending", "accepted"):
        raise c.OPENING_NO_APPLICATION("you have no application waiting or accepted here / 応募はありません")
    was_accepted = app.status == "accepted"
    await session.execute(update(applications).where(applications.c.id == app.id).values(
        status="withdrawn", decided_at=now, decided_by=data.actor.global_handle))
    if was_accepted:
        await session.execute(update(openings).where(openings.c.id == row.id).values(accepted=openings.c.accepted - 1))
    await announce(session, bus, node=node, at=now, event=c.OpeningApplicationWithdrawn(
        application_id=app.id, opening_id=row.id, person=app.applicant, event_code=row.event_code,
        was_accepted=was_accepted, at=now))
    return await _application_view(session, app.id)


async def applicants(session: AsyncSession, *, q: c.OpeningAction) -> c.Applicants:
    row = await _row(session, q.opening_id)
    _must_organise(row, q.actor)
    rows = list(await session.execute(select(applications).where(applications.c.opening_id == row.id)
                                      .order_by(applications.c.applied_at, applications.c.id)))
    names = await names_of(session, {r.applicant for r in rows} | ({row.organiser} if row.organiser else set()))
    return c.Applicants(opening=_opening(row, names, q.actor), applications=[_application(r, names) for r in rows])


async def decide(session: AsyncSession, *, node: str, data: c.DecideIn, now: datetime) -> c.Application:
    app = (await session.execute(select(applications).where(applications.c.id == data.application_id))).first()
    if app is None:
        raise c.OPENING_NO_APPLICATION(f"no application {data.application_id} / 応募が見つかりません")
    row = await _row(session, app.opening_id, lock=True)
    _must_organise(row, data.actor)
    app = (await session.execute(select(applications).where(applications.c.id == app.id))).one()  # after the lock
    if app.status != "pending":
        raise c.OPENING_ALREADY_DECIDED("the application was answered already / すでに回答済みです")
    if data.decision == "accept":
        if row.status != "open":
            raise c.OPENING_CLOSED("the opening is closed / この募集は締め切られました")
        if row.accepted >= row.capacity:
            raise c.OPENING_FULL("the opening has all the people it asked for / 募集人数に達しました")
        await session.execute(update(openings).where(openings.c.id == row.id).values(accepted=openings.c.accepted + 1))
        event: SnsEvent = c.OpeningApplicationAccepted(
            application_id=app.id, opening_id=row.id, title=row.title, person=app.applicant,
            event_code=row.event_code, at=now)
    else:
        event = c.OpeningApplicationDeclined(application_id=app.id, opening_id=row.id, title=row.title,
                                             person=app.applicant, at=now)
    await session.execute(update(applications).where(applications.c.id == app.id).values(
        status="accepted" if data.decision == "accept" else "declined", decided_at=now,
        decided_by=data.actor.global_handle))
    await announce(session, bus, node=node, at=now, event=event)
    return await _application_view(session, app.id)


async def forget(session: AsyncSession, handle: str, now: datetime) -> None:
    """A deleted account: their applications and stated skills go (an accepted one frees its place); the openings
    they organised stay, closed, by nobody."""
    accepted = list((await session.execute(select(applications.c.opening_id).where(
        applications.c.applicant == handle, applications.c.status == "accepted"))).scalars())
    for oid in accepted:
        await session.execute(update(openings).where(openings.c.id == oid).values(accepted=openings.c.accepted - 1))
    await session.execute(delete(applications).where(applications.c.applicant == handle))
    await session.execute(delete(person_skills).where(person_skills.c.global_handle == handle))
    await session.execute(update(openings).where(openings.c.organiser == handle, openings.c.status == "open")
                          .values(status="closed", closed_at=now))
    await session.execute(update(openings).where(openings.c.organiser == handle).values(organiser=None))
