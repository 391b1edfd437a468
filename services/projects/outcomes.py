"""Phase 4 (成果定着, results) of a theme: the KPI actuals, the report, the budget rationale, the next-year decision,
and the case study (事例化) that anyone may read once published. No NATS, no commits here.

Who may (the pilot workspace and its parties: services.projects.pilots):
- the actuals (measurements of the frozen KPIs) are recorded by the theme's managers and by members of the company
  parties (the companies often hold the figures; each measurement names its source and who recorded it);
- the report, the budget rationale and the decision are the managers'; the decision needs the report and the budget
  rationale saved (it is made on them), is made once and is final: the theme is then complete, and the actuals,
  the report and the budget rationale no longer change;
- the case study is drafted by the managers (compare-and-set on its draft revision) and published by them once the
  report is saved and the decision made; each publication is an immutable version (1, 2, ...) with the KPI table
  and the partners as they were then; anyone reads the published versions, only the managers the draft.

Publication announces CasePublished (version 1) or CaseChanged (later versions) with the whole public case; the
decision announces ThemeCompleted. The report, the budget and the agreements never leave the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects import pilots
from services.projects import themes as theme_domain
from services.projects.common import audit, aware, diff, new_uuid
from services.projects.models import (
    budget_rationales,
    bus,
    case_versions,
    cases,
    kpi_measurements,
    pilot_decisions,
    pilot_kpis,
    pilot_reports,
    themes,
)
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import pilots as p
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor

CASE = ("title", "summary", "approach", "outcomes", "lessons", "transferability", "fields")


def _need_phase4(ctx: pilots.Ctx, what: str) -> None:
    if ctx.theme.phase != 4:
        raise c.THEME_WRONG_PHASE(f"{what} belongs to phase 4 ({c.PHASES[4]}); the theme is in phase {ctx.theme.phase}")


def _need_open(ctx: pilots.Ctx, what: str) -> None:
    _need_phase4(ctx, what)
    if ctx.decided:
        raise c.PILOT_COMPLETE(f"the next-year decision is made and the theme is complete: {what} no longer changes")


async def _managed(session: AsyncSession, theme_id: str, actor: Actor, what: str) -> pilots.Ctx:
    ctx = await pilots.access(session, theme_id, actor, lock=True)
    pilots.need_manager(ctx, what)
    _need_open(ctx, what)
    return ctx


# ---- actuals, report, budget rationale ------------------------------------------------------------------------


async def add_actual(*, session: AsyncSession, data: p.ActualAdd, node: str, now: datetime | None = None) -> p.Pilot:
    ctx = await pilots.access(session, data.theme_id, data.actor, lock=True)
    now = now or utcnow()
    kpi = (await session.execute(select(pilot_kpis).where(
        pilot_kpis.c.id == data.kpi_id, pilot_kpis.c.theme_id == ctx.theme.id))).first()
    if kpi is None:
        raise c.PILOT_ITEM_NOT_FOUND(f"no KPI {data.kpi_id} in this pilot")
    _need_open(ctx, "the KPI actuals")
    seq = (await session.execute(select(func.coalesce(func.max(kpi_measurements.c.seq), 0)).where(
        kpi_measurements.c.kpi_id == kpi.id))).scalar_one() + 1
    measurement_id, value = new_uuid(), pilots.dec_text(data.value)
    await session.execute(insert(kpi_measurements).values(
        id=measurement_id, seq=seq, kpi_id=kpi.id, theme_id=ctx.theme.id, value=value, measured_on=data.measured_on,
        note=data.note, source=data.source, recorded_at=now, recorded_by=data.actor.global_handle))
    await audit(session, kind="kpi", subject_id=ctx.theme.id, action="actual_recorded", actor=data.actor, at=now,
                after={"kpi_id": kpi.id, "kpi": kpi.name, "measurement_id": measurement_id, "value": value,
                       "unit": kpi.unit, "measured_on": data.measured_on, "source": data.source}, note=data.note)
    return await pilots.workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


async def put_report(*, session: AsyncSession, data: p.ReportPut, node: str, now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the report")
    await pilots.save_version(session, ctx, table=pilot_reports, names=pilots.REPORT, what="report", data=data,
                              kind="pilot", action="report_saved", now=now or utcnow())
    return await pilots.workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


async def put_budget(*, session: AsyncSession, data: p.BudgetPut, node: str, now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the budget rationale")
    await pilots.save_version(session, ctx, table=budget_rationales, names=pilots.BUDGET, what="budget rationale",
                              data=data, kind="pilot", action="budget_saved", now=now or utcnow())
    return await pilots.workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


# ---- the decision ---------------------------------------------------------------------------------------------


async def decide(*, session: AsyncSession, data: p.DecisionMake, node: str, now: datetime | None = None) -> p.Pilot:
    ctx = await pilots.access(session, data.theme_id, data.actor, lock=True)
    pilots.need_manager(ctx, "the next-year decision")
    _need_phase4(ctx, "the next-year decision")
    now = now or utcnow()
    if ctx.decided:
        raise c.DECISION_ALREADY_MADE("the next-year decision is already made (it is final)")
    missing = [what for table, what in ((pilot_reports, "the report"), (budget_rationales, "the budget rationale"))
               if await pilots.latest(session, table, ctx.theme.id) is None]
    if missing:
        raise c.DECISION_REPORT_MISSING(f"the decision is made on the report and the budget rationale: save "
                              f"{' and '.join(missing)} first")
    inserted = await session.execute(
        db.insert_on_conflict(session, pilot_decisions)
        .values(theme_id=ctx.theme.id, decision=data.decision, reasons=data.reasons, decided_at=now,
                decided_by=data.actor.global_handle, decided_by_name=data.actor.display_name)
        .on_conflict_do_nothing(index_elements=["theme_id"]).returning(pilot_decisions.c.theme_id))
    if inserted.first() is None:
        raise c.DECISION_ALREADY_MADE("the next-year decision is already made (it is final)")
    await audit(session, kind="pilot", subject_id=ctx.theme.id, action="decision_made", actor=data.actor, at=now,
                after={"decision": data.decision, "label": p.DECISIONS[data.decision], "reasons": data.reasons})
    await announce(session, bus, node=node, at=now, event=p.ThemeCompleted(
        theme_id=ctx.theme.id, origin_node=ctx.theme.origin_node, decision=data.decision, at=now))
    return await pilots.workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


# ---- the case study -------------------------------------------------------------------------------------------


def case_kpis(kpis: list[p.Kpi]) -> list[dict[str, Any]]:
    """The KPI table of a case (and of CasePublished): decimals as strings, exact; achievement rounded."""
    return [{"name": k.name, "unit": k.unit, "baseline": pilots.dec_text(k.baseline),
             "target": pilots.dec_text(k.target), "actual": None if k.actual is None else pilots.dec_text(k.actual),
             "direction": k.direction, "achievement_pct": k.achievement_pct} for k in kpis]


async def _missing_for_publication(session: AsyncSession, theme_id: str) -> list[p.Requirement]:
    missing = []
    if await pilots.latest(session, pilot_reports, theme_id) is None:
        missing.append(p.Requirement(code=p.GATE_REPORT))
    if await pilots.decision_of(session, theme_id) is None:
        missing.append(p.Requirement(code=p.GATE_DECISION))
    return missing


def _sentences(missing: list[p.Requirement]) -> list[str]:
    return [pilots.SENTENCES[r.code].format(party=r.party) for r in missing]


def _published(row: Any, case: Any) -> p.CasePublished:
    cls = p.CasePublished if row.version == 1 else p.CaseChanged
    return cls(id=case.id, theme_id=row.theme_id, origin_node=case.origin_node,
               owner_department_name=row.owner_department_name, title=row.title, summary=row.summary,
               approach=row.approach, outcomes=row.outcomes, lessons=row.lessons, transferability=row.transferability,
               fields=list(row.fields or []), kpis=list(row.kpis or []), partners=list(row.partners or []),
               decision=row.decision, version=row.version, published_at=aware(row.published_at))


async def _case_out(session: AsyncSession, case: Any, actor: Actor | None, version: int | None = None) -> p.Case:
    theme = (await session.execute(theme_domain._themes_query().where(themes.c.id == case.theme_id))).one()
    manager = await theme_domain.may_manage(session, actor, theme.owner_department_id)
    rows = {r.version: r for r in await session.execute(
        select(case_versions).where(case_versions.c.case_id == case.id).order_by(case_versions.c.version))}
    if not rows and not manager:
        raise c.CASE_NOT_FOUND(f"no published case {case.id}")
    if version is not None and version not in rows:
        raise c.CASE_VERSION_NOT_FOUND(f"case {case.id} has no published version {version}")
    shown = rows.get(version or case.version)
    draft = None
    if manager:
        latest = rows.get(case.version)
        draft = p.CaseDraft(
            **{k: getattr(case, k) for k in CASE}, draft_revision=case.draft_revision,
            updated_at=aware(case.updated_at), updated_by=case.updated_by,
            unpublished_changes=latest is None or any(getattr(latest, k) != getattr(case, k) for k in CASE))
    missing = await _missing_for_publication(session, case.theme_id)
    return p.Case(id=case.id, theme_id=case.theme_id, theme_title=theme.title, origin_node=case.origin_node,
                  owner_department_name=theme.owner_department_name,
                  published=_published(shown, case) if shown is not None else None, versions=sorted(rows),
                  draft=draft, may_manage=manager, may_publish=manager and not missing and theme.phase == 4,
                  missing_for_publication=_sentences(missing), missing_for_publication_codes=missing)


async def _case_row(session: AsyncSession, theme_id: str) -> Any:
    return (await session.execute(select(cases).where(cases.c.theme_id == theme_id))).first()


async def put_case(*, session: AsyncSession, data: p.CasePut, node: str, now: datetime | None = None) -> p.Case:
    ctx = await pilots.access(session, data.theme_id, data.actor, lock=True)
    pilots.need_manager(ctx, "the case study")
    _need_phase4(ctx, "the case study")
    now = now or utcnow()
    row = await _case_row(session, ctx.theme.id)
    seen = row.draft_revision if row is not None else 0
    if data.draft_revision != seen:
        raise c.CASE_STALE(f"the case's draft is at revision {seen}, you edited revision {data.draft_revision}: "
                              "reload it and try again")
    new = {k: getattr(data, k) for k in CASE}
    if new["fields"] is None:
        new["fields"] = list(ctx.theme.fields or [])
    if row is None:
        case_id = new_uuid()
        await session.execute(insert(cases).values(
            id=case_id, theme_id=ctx.theme.id, origin_node=ctx.theme.origin_node, draft_revision=1, version=0,
            created_at=now, updated_at=now, updated_by=data.actor.global_handle, **new))
        await audit(session, kind="case", subject_id=ctx.theme.id, action="case_drafted", actor=data.actor, at=now,
                    after={"case_id": case_id, **new})
    else:
        case_id = row.id
        before, after = diff({k: getattr(row, k) for k in CASE}, new)
        if after:
            changed = await session.execute(update(cases).where(
                cases.c.id == row.id, cases.c.draft_revision == row.draft_revision).values(
                draft_revision=row.draft_revision + 1, updated_at=now, updated_by=data.actor.global_handle, **new))
            if db.rowcount(changed) != 1:
                raise c.CASE_STALE("the case was changed by someone else meanwhile: reload it and try again")
            await audit(session, kind="case", subject_id=ctx.theme.id, action="case_edited", actor=data.actor,
                        at=now, before={"case_id": row.id, **before}, after={"case_id": row.id, **after})
    case = (await session.execute(select(cases).where(cases.c.id == case_id))).one()
    return await _case_out(session, case, data.actor)


async def publish_case(*, session: AsyncSession, data: p.CasePublish, node: str,
                       now: datetime | None = None) -> p.Case:
    ctx = await pilots.access(session, data.theme_id, data.actor, lock=True)
    pilots.need_manager(ctx, "publishing the case study")
    _need_phase4(ctx, "publishing the case study")
    now = now or utcnow()
    row = await _case_row(session, ctx.theme.id)
    if row is None:
        raise c.CASE_NO_DRAFT("draft the case study first")
    missing = await _missing_for_publication(session, ctx.theme.id)
    if missing:
        raise c.CASE_NOT_READY("the case cannot be published yet: " + "; ".join(_sentences(missing)))
    latest = (await session.execute(select(case_versions).where(
        case_versions.c.case_id == row.id, case_versions.c.version == row.version))).first()
    if latest is not None and all(getattr(latest, k) == getattr(row, k) for k in CASE):
        raise c.CASE_UNCHANGED(f"nothing changed since version {row.version} was published")
    decision = await pilots.decision_of(session, ctx.theme.id)
    assert decision is not None
    version = row.version + 1
    snapshot = {
        "theme_id": ctx.theme.id, "owner_department_name": ctx.theme.owner_department_name,
        **{k: getattr(row, k) for k in CASE}, "kpis": case_kpis(await pilots.kpis_of(session, ctx.theme.id)),
        "partners": [x.org_name for x in ctx.parties if x.side == "company"], "decision": decision.decision}
    changed = await session.execute(update(cases).where(cases.c.id == row.id, cases.c.version == row.version)
                                    .values(version=version, published_at=now))
    if db.rowcount(changed) != 1:
        raise c.CASE_STALE("the case was published by someone else meanwhile: reload it")
    await session.execute(insert(case_versions).values(
        case_id=row.id, version=version, published_at=now, published_by=data.actor.global_handle, **snapshot))
    await audit(session, kind="case", subject_id=ctx.theme.id,
                action="case_published" if version == 1 else "case_republished", actor=data.actor, at=now,
                after={"case_id": row.id, "version": version}, note=data.note)
    case = (await session.execute(select(cases).where(cases.c.id == row.id))).one()
    published = (await session.execute(select(case_versions).where(
        case_versions.c.case_id == row.id, case_versions.c.version == version))).one()
    await announce(session, bus, node=node, at=now, event=_published(published, case))
    return await _case_out(session, case, data.actor)


async def get_case(*, session: AsyncSession, q: p.CaseQuery) -> p.Case:
    case = (await session.execute(select(cases).where(cases.c.id == q.case_id))).first()
    if case is None:
        raise c.CASE_NOT_FOUND(f"no published case {q.case_id}")
    return await _case_out(session, case, q.actor, q.version)


async def case_for_theme(*, session: AsyncSession, theme_id: str, actor: Actor | None) -> p.Case:
    case = await _case_row(session, theme_id)
    if case is None:
        raise c.CASE_NOT_FOUND(f"no case for theme {theme_id}")
    return await _case_out(session, case, actor)


async def list_cases(*, session: AsyncSession, q: p.CaseListQuery) -> p.CaseList:
    rows = await session.execute(
        select(case_versions, cases.c.origin_node, cases.c.id)
        .join(cases, (cases.c.id == case_versions.c.case_id) & (cases.c.version == case_versions.c.version))
        .order_by(case_versions.c.published_at.desc(), case_versions.c.case_id))
    out = []
    for r in rows:
        if q.field is not None and q.field not in (r.fields or []):
            continue
        if q.decision is not None and r.decision != q.decision:
            continue
        published = _published(r, r)
        out.append(p.CasePublished(**published.model_dump()))  # the list is of one type, whatever the version
    return p.CaseList(cases=out)
