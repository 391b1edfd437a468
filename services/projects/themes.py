"""Phase 1 (課題整理) and the phase gates: hearings, co-creation themes, recruitment requirements and evaluation
criteria, publication, the open call, phase moves, and each theme's history. No NATS, no commits here.

Who may do what:
- hearings: municipal staff and the secretariat record and read them (internal to the municipality);
- a theme is managed (created, edited, published, its requirements set, its call opened, its phase moved) by the
  staff of its owner department (role `staff` AND member of that department) or by the secretariat;
- drafts are read only by staff and the secretariat: to anyone else a draft does not exist (404, like a wrong id);
- published themes are public; the history is for staff and the secretariat.

Phase 2's briefings, proposals and selection live in briefings.py, proposals.py and evaluation.py; the gate to
phase 3 asks for that selection's published result with at least one pilot candidate. Phase 3's pilot design lives in
pilots.py, phase 4's results and case study in outcomes.py; the gate to phase 4 asks pilots.py what is missing.

Every change writes an audit row in the same transaction; public facts are announced through the outbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects.common import audit, aware, diff, new_uuid, plain, roles_of
from services.projects.models import (
    audit_log,
    bus,
    criteria,
    hearings,
    organisations,
    requirements,
    results,
    theme_invitations,
    theme_participants,
    themes,
)
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor

CONTENT = ("title", "background", "target", "desired_outcome", "fields", "company_points")
# What a theme must say before companies can read it (企業に提示可能なテーマ資料).
TO_PUBLISH = ("background", "target", "desired_outcome", "fields", "company_points")


def _internal(actor: Actor | None) -> bool:
    return actor is not None and actor.has("staff", "secretariat")


async def _department(session: AsyncSession, department_id: str) -> Any:
    row = (await session.execute(select(organisations).where(organisations.c.id == department_id))).first()
    if row is None or row.kind != "department":
        raise c.DEPARTMENT_NOT_FOUND(f"no municipal department {department_id}")
    return row


async def may_manage(session: AsyncSession, actor: Actor | None, owner_department_id: str) -> bool:
    if actor is None:
        return False
    if actor.has("secretariat"):
        return True
    return actor.has("staff") and owner_department_id in await roles_of(session, actor.global_handle)


# ---- hearings ----------------------------------------------------------------------------------------------------


def _hearing(row: Any) -> c.Hearing:
    return c.Hearing(id=row.id, origin_node=row.origin_node, department_id=row.department_id,
                     department_name=row.department_name, held_on=row.held_on, current_state=row.current_state,
                     issues=list(row.issues), attendees=row.attendees, recorded_by=row.recorded_by,
                     created_at=aware(row.created_at))


def _hearings_query():
    return select(hearings, organisations.c.name.label("department_name")).join(
        organisations, organisations.c.id == hearings.c.department_id)


async def create_hearing(*, session: AsyncSession, data: c.HearingCreate, node: str,
                         now: datetime | None = None) -> c.Hearing:
    if not _internal(data.actor):
        raise c.HEARING_STAFF_ONLY("hearings are recorded by municipal staff or the secretariat")
    dept = await _department(session, data.department_id)
    now = now or utcnow()
    hearing_id = new_uuid()
    values = {"held_on": data.held_on, "current_state": data.current_state, "issues": list(data.issues),
              "attendees": data.attendees}
    await session.execute(insert(hearings).values(
        id=hearing_id, origin_node=node, department_id=dept.id, recorded_by=data.actor.global_handle,
        created_at=now, **values))
    await audit(session, kind="hearing", subject_id=hearing_id, action="recorded", actor=data.actor, at=now,
                after={"department": dept.name, **values})
    row = (await session.execute(_hearings_query().where(hearings.c.id == hearing_id))).one()
    return _hearing(row)


async def list_hearings(*, session: AsyncSession, q: c.HearingListQuery) -> list[c.Hearing]:
    if not _internal(q.actor):
        raise c.HEARING_STAFF_ONLY("hearings are for municipal staff and the secretariat")
    stmt = _hearings_query().order_by(hearings.c.held_on.desc(), hearings.c.created_at.desc())
    if q.department_id is not None:
        stmt = stmt.where(hearings.c.department_id == q.department_id)
    return [_hearing(r) for r in await session.execute(stmt)]


# ---- themes ------------------------------------------------------------------------------------------------------


def _themes_query():
    return select(themes, organisations.c.name.label("owner_department_name")).join(
        organisations, organisations.c.id == themes.c.owner_department_id)


async def _theme_row(session: AsyncSession, theme_id: str, actor: Actor | None) -> Any:
    """The theme as this actor may see it: a draft is not there for anyone but staff and the secretariat."""
    row = (await session.execute(_themes_query().where(themes.c.id == theme_id))).first()
    if row is None or (row.status == "draft" and not _internal(actor)):
        raise c.THEME_NOT_FOUND(f"no theme {theme_id}")
    return row


async def _managed_row(session: AsyncSession, theme_id: str, actor: Actor) -> Any:
    row = await _theme_row(session, theme_id, actor)
    if not await may_manage(session, actor, row.owner_department_id):
        # Staff of another department may read the theme, not change it.
        raise c.THEME_MANAGERS_ONLY(
            f"only staff of {row.owner_department_name!r} (the theme's owner) or the secretariat may change it")
    return row


async def _requirements(session: AsyncSession, theme_id: str) -> c.Requirements | None:
    req = (await session.execute(select(requirements).where(requirements.c.theme_id == theme_id))).first()
    if req is None:
        return None
    crit = await session.execute(
        select(criteria).where(criteria.c.theme_id == theme_id).order_by(criteria.c.position))
    return c.Requirements(
        conditions=req.conditions, scope=req.scope, deadline=aware(req.deadline),
        call_opened_at=aware(req.call_opened_at), updated_at=aware(req.updated_at),
        criteria=[c.CriterionOut(id=r.id, position=r.position, name=r.name, weight=r.weight,
                                 description=r.description) for r in crit])


async def _out(session: AsyncSession, row: Any, actor: Actor | None, *, full: bool = True) -> c.Theme:
    return c.Theme(
        id=row.id, origin_node=row.origin_node, owner_department_id=row.owner_department_id,
        owner_department_name=row.owner_department_name, hearing_id=row.hearing_id, title=row.title,
        background=row.background, target=row.target, desired_outcome=row.desired_outcome,
        fields=list(row.fields or []), company_points=row.company_points, status=row.status, phase=row.phase,
        version=row.version, created_at=aware(row.created_at), created_by=row.created_by,
        updated_at=aware(row.updated_at), published_at=aware(row.published_at),
        requirements=await _requirements(session, row.id) if full else None,
        may_manage=await may_manage(session, actor, row.owner_department_id),
        **await wide_area_of(session, row),
    )


async def wide_area_of(session: AsyncSession, row: Any) -> dict[str, Any]:
    """A theme's federation facts: wide-area (広域連携) with its invited and participating municipalities (node
    ids, sorted), and the case it was started from (横展開)."""
    out: dict[str, Any] = {"wide_area": bool(row.wide_area), "invited_nodes": [], "participants": [],
                           "origin_case": row.origin_case}
    if row.wide_area:
        out["invited_nodes"] = list((await session.execute(
            select(theme_invitations.c.node).where(theme_invitations.c.theme_id == row.id)
            .order_by(theme_invitations.c.node))).scalars())
        out["participants"] = list((await session.execute(
            select(theme_participants.c.node).where(theme_participants.c.theme_id == row.id)
            .order_by(theme_participants.c.node))).scalars())
    return out


async def public_event(session: AsyncSession, row: Any, cls: type[c.ThemePublished]) -> c.ThemePublished:
    """The whole public theme as other nodes see it (ThemePublished or ThemeChanged)."""
    return cls(id=row.id, origin_node=row.origin_node, owner_department_name=row.owner_department_name,
               title=row.title, background=row.background, target=row.target, desired_outcome=row.desired_outcome,
               fields=list(row.fields or []), company_points=row.company_points, phase=row.phase,
               version=row.version, published_at=aware(row.published_at), **await wide_area_of(session, row))


async def _reload(session: AsyncSession, theme_id: str) -> Any:
    return (await session.execute(_themes_query().where(themes.c.id == theme_id))).one()


async def _bump(session: AsyncSession, row: Any, now: datetime, **values: Any) -> Any:
    """Change a theme if nobody changed it since `row` was read (its version): compare-and-set, so two editors
    or two clicks cannot both win."""
    result = await session.execute(
        update(themes).where(themes.c.id == row.id, themes.c.version == row.version)
        .values(version=row.version + 1, updated_at=now, **values))
    if db.rowcount(result) != 1:
        raise c.THEME_STALE("the theme was changed by someone else meanwhile: reload it and try again")
    return await _reload(session, row.id)


async def create_theme(*, session: AsyncSession, data: c.ThemeCreate, node: str, now: datetime | None = None,
                       origin_case: dict[str, str] | None = None) -> c.Theme:
    """A draft theme; `origin_case` ({origin_node, case_id, title}) when it is started from a case (横展開)."""
    dept = await _department(session, data.owner_department_id)
    if not await may_manage(session, data.actor, dept.id):
        raise c.THEME_MANAGERS_ONLY(f"only staff of {dept.name!r} or the secretariat may create its themes")
    if data.hearing_id is not None:
        found = await session.execute(select(hearings.c.id).where(hearings.c.id == data.hearing_id))
        if found.first() is None:
            raise c.HEARING_NOT_FOUND(f"no hearing {data.hearing_id}")
    now = now or utcnow()
    theme_id = new_uuid()
    content = data.model_dump(include=set(CONTENT))
    await session.execute(insert(themes).values(
        id=theme_id, origin_node=node, owner_department_id=dept.id, hearing_id=data.hearing_id, status="draft",
        phase=1, version=1, created_at=now, created_by=data.actor.global_handle, updated_at=now,
        origin_case=origin_case, **content))
    await audit(session, kind="theme", subject_id=theme_id, action="created", actor=data.actor, at=now,
                after={"owner_department": dept.name, "hearing_id": data.hearing_id, "status": "draft", "phase": 1,
                       **content, **({"origin_case": origin_case} if origin_case else {})})
    return await _out(session, await _reload(session, theme_id), data.actor)


async def update_theme(*, session: AsyncSession, data: c.ThemeUpdate, node: str,
                       now: datetime | None = None) -> c.Theme:
    row = await _managed_row(session, data.theme_id, data.actor)
    if data.version != row.version:
        raise c.THEME_STALE(
            f"the theme is at version {row.version}, you edited version {data.version}: reload it and try again")
    new = data.model_dump(include=set(CONTENT))
    before, after = diff({k: getattr(row, k) for k in CONTENT}, new)
    if not after:
        return await _out(session, row, data.actor)
    if row.status == "published":
        missing = [k for k in TO_PUBLISH if not new[k]]
        if missing:
            raise c.THEME_FIELDS_MISSING(f"a published theme cannot lose its {', '.join(missing)}")
    now = now or utcnow()
    row = await _bump(session, row, now, **new)
    await audit(session, kind="theme", subject_id=row.id, action="updated", actor=data.actor, at=now,
                before=before, after=after)
    if row.status == "published":
        await announce(session, bus, node=node, event=await public_event(session, row, c.ThemeChanged), at=now)
    return await _out(session, row, data.actor)


async def publish(*, session: AsyncSession, data: c.ThemeAction, node: str, now: datetime | None = None) -> c.Theme:
    row = await _managed_row(session, data.theme_id, data.actor)
    if row.status == "published":
        raise c.THEME_ALREADY_PUBLISHED("the theme is already published")
    missing = [k for k in TO_PUBLISH if not getattr(row, k)]
    if missing:
        raise c.THEME_FIELDS_MISSING(f"the theme cannot be published without its {', '.join(missing)}")
    now = now or utcnow()
    row = await _bump(session, row, now, status="published", published_at=now)
    await audit(session, kind="theme", subject_id=row.id, action="published", actor=data.actor, at=now,
                before={"status": "draft"}, after={"status": "published"}, note=data.note)
    await announce(session, bus, node=node, event=await public_event(session, row, c.ThemePublished), at=now)
    return await _out(session, row, data.actor)


def _req_dict(req: c.Requirements | c.RequirementsIn | None) -> dict[str, Any] | None:
    if req is None:
        return None
    return {"conditions": req.conditions, "scope": req.scope, "deadline": plain(aware(req.deadline)),
            "criteria": [{"name": x.name, "weight": x.weight, "description": x.description} for x in req.criteria]}


async def put_requirements(*, session: AsyncSession, data: c.RequirementsPut, node: str,
                           now: datetime | None = None) -> c.Theme:
    row = await _managed_row(session, data.theme_id, data.actor)
    now = now or utcnow()
    old = await _requirements(session, row.id)
    before, new = _req_dict(old), _req_dict(data)
    assert new is not None
    if before == new:
        return await _out(session, row, data.actor)  # nothing to change (a form sent twice)
    if old is not None and old.call_opened_at is not None:
        raise c.CALL_REQUIREMENTS_FROZEN(
            "the call is open: its requirements and evaluation criteria (weights) were published before it opened "
            "and are frozen now")
    if aware(data.deadline) <= now:
        raise c.CALL_DEADLINE_NOT_FUTURE("the deadline must be in the future")
    if old is None:
        await session.execute(insert(requirements).values(
            theme_id=row.id, conditions=data.conditions, scope=data.scope, deadline=data.deadline, updated_at=now))
    else:
        await session.execute(update(requirements).where(requirements.c.theme_id == row.id).values(
            conditions=data.conditions, scope=data.scope, deadline=data.deadline, updated_at=now))
    await session.execute(delete(criteria).where(criteria.c.theme_id == row.id))
    await session.execute(insert(criteria), [
        {"id": new_uuid(), "theme_id": row.id, "position": i + 1, "name": x.name, "weight": x.weight,
         "description": x.description} for i, x in enumerate(data.criteria)])
    row = await _bump(session, row, now)
    b, a = diff(before or {}, new)
    await audit(session, kind="theme", subject_id=row.id, action="requirements_set", actor=data.actor, at=now,
                before=b if before is not None else None, after=a)
    if row.status == "published":
        await announce(session, bus, node=node, at=now, event=c.ThemeRequirementsSet(
            theme_id=row.id, origin_node=row.origin_node, conditions=data.conditions, scope=data.scope,
            deadline=data.deadline, criteria=new["criteria"]))
    return await _out(session, row, data.actor)


async def open_call(*, session: AsyncSession, data: c.ThemeAction, node: str, now: datetime | None = None) -> c.Theme:
    row = await _managed_row(session, data.theme_id, data.actor)
    now = now or utcnow()
    req = await _requirements(session, row.id)
    if row.phase != 2:
        raise c.THEME_WRONG_PHASE(
            f"the open call belongs to phase 2 ({c.PHASES[2]}); the theme is in phase {row.phase}")
    if req is None:
        raise c.THEME_REQUIREMENTS_MISSING("set the recruitment requirements and evaluation criteria first")
    if req.call_opened_at is not None:
        raise c.CALL_ALREADY_OPEN("the call is already open")
    if req.deadline <= now:
        raise c.CALL_DEADLINE_PASSED("the deadline has passed: set a later deadline before opening the call")
    await session.execute(update(requirements).where(requirements.c.theme_id == row.id).values(call_opened_at=now))
    row = await _bump(session, row, now)
    await audit(session, kind="theme", subject_id=row.id, action="call_opened", actor=data.actor, at=now,
                before={"call_opened_at": None}, after={"call_opened_at": now}, note=data.note)
    await announce(session, bus, node=node, at=now, event=c.ThemeCallOpened(
        theme_id=row.id, origin_node=row.origin_node, deadline=req.deadline, opened_at=now,
        criteria=[{"id": x.id, "name": x.name, "weight": x.weight, "description": x.description}
                  for x in req.criteria]))
    return await _out(session, row, data.actor)


async def _gate(session: AsyncSession, row: Any, to_phase: int, now: datetime) -> list[str]:
    """What still stands between the theme and `to_phase` (empty: the gate is open)."""
    missing: list[str] = []
    req = await _requirements(session, row.id)
    if to_phase == 2:
        if row.status != "published":
            missing.append("the theme must be published")
        if req is None:
            missing.append("the recruitment requirements and evaluation criteria must be set")
    elif to_phase == 3:
        if req is None or req.call_opened_at is None:
            missing.append("the open call must have been opened")
        elif req.deadline > now:
            missing.append("the call's deadline must have passed")
        result = (await session.execute(select(results).where(results.c.theme_id == row.id))).first()
        if result is None or result.published_at is None:
            missing.append("the selection's result must be published")
        elif not result.selected:
            missing.append("the published result must name at least one pilot candidate")
    elif to_phase == 4:
        # The pilot's design (services.projects.pilots): roles for every party, a milestone, a KPI, a saved plan
        # and an agreement every party signed in its current version.
        from services.projects import pilots

        missing += await pilots.gate_to_phase4(session, row)
    return missing


async def advance_phase(*, session: AsyncSession, data: c.PhaseAdvance, node: str,
                        now: datetime | None = None) -> c.Theme:
    row = await _managed_row(session, data.theme_id, data.actor)
    now = now or utcnow()
    if data.to_phase <= row.phase:
        raise c.THEME_PHASE_BACKWARDS(f"phases move only forward: the theme is already in phase {row.phase} "
                              f"({c.PHASES[row.phase]})")
    if data.to_phase != row.phase + 1:
        raise c.THEME_PHASE_SKIP(f"one phase at a time: from phase {row.phase} the next is {row.phase + 1}")
    missing = await _gate(session, row, data.to_phase, now)
    if missing:
        raise c.THEME_PHASE_NOT_READY(f"phase {data.to_phase} ({c.PHASES[data.to_phase]}) is not open yet: "
                              + "; ".join(missing))
    from_phase = row.phase
    row = await _bump(session, row, now, phase=data.to_phase)
    await audit(session, kind="theme", subject_id=row.id, action="phase_advanced", actor=data.actor, at=now,
                before={"phase": from_phase}, after={"phase": data.to_phase}, note=data.note)
    await announce(session, bus, node=node, at=now, event=c.ThemePhaseAdvanced(
        theme_id=row.id, origin_node=row.origin_node, from_phase=from_phase, to_phase=data.to_phase, at=now,
        version=row.version))
    return await _out(session, row, data.actor)


async def get(*, session: AsyncSession, theme_id: str, actor: Actor | None) -> c.Theme:
    return await _out(session, await _theme_row(session, theme_id, actor), actor)


async def list_(*, session: AsyncSession, q: c.ThemeListQuery) -> list[c.Theme]:
    stmt = _themes_query().order_by(themes.c.published_at.desc(), themes.c.updated_at.desc())
    if not (q.include_drafts and _internal(q.actor)):
        stmt = stmt.where(themes.c.status == "published")
    rows = [r for r in await session.execute(stmt) if q.field is None or q.field in (r.fields or [])]
    return [await _out(session, r, q.actor, full=False) for r in rows]


async def history(*, session: AsyncSession, theme_id: str, actor: Actor | None) -> c.History:
    if not _internal(actor):
        raise c.THEME_HISTORY_STAFF_ONLY("a theme's history is for municipal staff and the secretariat")
    row = await _theme_row(session, theme_id, actor)
    # Phases 3 and 4 write their rows (kinds pilot, kpi, agreement, case) under the theme's id. What they changed
    # belongs to the pilot's parties: staff of other departments see who did what and when, not the contents.
    pilot_kinds = ("pilot", "kpi", "agreement", "case")
    manager = await may_manage(session, actor, row.owner_department_id)
    rows = await session.execute(
        select(audit_log).where(audit_log.c.subject_kind.in_(("theme", *pilot_kinds)),
                                audit_log.c.subject_id == theme_id)
        .order_by(audit_log.c.seq))
    return c.History(theme_id=theme_id, entries=[
        c.AuditEntry(seq=r.seq, subject_kind=r.subject_kind, subject_id=r.subject_id, action=r.action,
                     actor=r.actor, actor_name=r.actor_name, at=aware(r.at),
                     before=r.before if manager or r.subject_kind == "theme" else None,
                     after=r.after if manager or r.subject_kind == "theme" else None,
                     note=r.note if manager or r.subject_kind == "theme" else "") for r in rows])


async def list_page(*, session: AsyncSession, q: c.ThemeListQuery) -> c.ThemeList:
    """The endpoint's answer: the list in its reply model."""
    return c.ThemeList(themes=await list_(session=session, q=q))


async def hearing_page(*, session: AsyncSession, q: c.HearingListQuery) -> c.HearingList:
    return c.HearingList(hearings=await list_hearings(session=session, q=q))
