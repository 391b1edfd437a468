"""Phase 3 (実証設計, pilot design) of a theme: the split of roles, the schedule's milestones, KPIs with baselines and
targets, the versioned pilot plan, agreements signed by both sides; the pilot workspace (which phase 4 fills further,
services.projects.outcomes) and the gate to phase 4. No NATS, no commits here.

Who may:
- the parties: the owner department (the municipality side) and the company parties, i.e. the lead and the
  confirmed partners of every selected proposal (the published result's pilot candidates);
- the theme's managers (the owner department's staff and the secretariat, themes.may_manage) change everything,
  in phase 3; from phase 4 the roles, the schedule, the KPIs, the plan and the agreements are frozen (the actuals
  are measured against them);
- members of the company parties read the workspace, sign agreements for their own organisation, and record a
  milestone's completion (phases 3 and 4, until the decision: the pilot is carried out by both sides);
- everybody else, staff of other departments included: the workspace does not exist (404, as for a wrong id); the
  published case study (outcomes.py) is what the public reads.

Agreements: each revision is a new immutable version with the sha256 of its body; a signature binds a party to a
version number and that sha256, so nobody signs a text they did not see; a new version voids the earlier
signatures (they stay, marked void). An agreement is signed when every party signed its current version.

Every change writes an audit row in the same transaction; the rows of phases 3 and 4 (kinds pilot, kpi, agreement,
case) carry the theme's id as their subject, so the theme's history lists them; an agreement's text never goes into
the audit log (its versions are kept in agreement_versions), only its number and sha256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects import themes as theme_domain
from services.projects.common import audit, aware, diff, new_uuid, roles_of
from services.projects.models import (
    agreement_signatures,
    agreement_versions,
    agreements,
    budget_rationales,
    bus,
    cases,
    kpi_measurements,
    organisations,
    pilot_decisions,
    pilot_kpis,
    pilot_milestones,
    pilot_plans,
    pilot_reports,
    pilot_roles,
    proposal_partners,
    proposals,
    results,
    themes,
)
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import pilots as p
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor

KINDS = ("pilot", "kpi", "agreement", "case")  # audit kinds of phases 3 and 4 (subject id: the theme's)
PLAN = ("objective", "scope", "method", "period_start", "period_end", "budget_yen", "risks", "data_handling")
REPORT = ("summary", "results", "issues", "lessons")
BUDGET = ("actual_cost_yen", "effects", "rationale", "requested_budget_yen")


# ---- numbers -------------------------------------------------------------------------------------------------


def dec_text(d: Decimal) -> str:
    """A decimal as stored and sent: plain notation, no trailing zeros ("20.5", "100", "0")."""
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def achievement(baseline: Decimal, target: Decimal, actual: Decimal | None) -> Fraction | None:
    """How far the actual went from the baseline towards the target, exactly: 0 at the baseline, 1 at the target,
    above 1 beyond it, below 0 the wrong way. The same formula holds for both directions, since the target lies in
    the KPI's direction (baseline 10, target 20, actual 15: 1/2; baseline 30, target 20, actual 25: 1/2)."""
    if actual is None:
        return None
    return Fraction(actual - baseline) / Fraction(target - baseline)


def percent(f: Fraction | None) -> str | None:
    """An achievement in percent, rounded half away from zero to one decimal: 1/2 -> "50.0", 2/3 -> "66.7"."""
    if f is None:
        return None
    tenths = f * 1000
    sign = -1 if tenths < 0 else 1
    rounded = sign * int(abs(tenths) + Fraction(1, 2))
    return str(Decimal(rounded).scaleb(-1))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- who, and which theme ---------------------------------------------------------------------------------------


@dataclass
class Ctx:
    """A theme with a pilot, as one actor sees it."""

    theme: Any
    parties: list[p.Party]
    manager: bool
    mine: set[str] = field(default_factory=set)  # the parties the actor may act for (sign, record)
    decided: bool = False

    @property
    def party(self) -> bool:
        return any(x.side == "company" and x.org_id in self.mine for x in self.parties)

    @property
    def relation(self) -> list[str]:
        return (["manager"] if self.manager else []) + (["party"] if self.party else [])

    def name_of(self, org_id: str) -> str:
        return next((x.org_name for x in self.parties if x.org_id == org_id), org_id)

    def side_of(self, org_id: str) -> p.Side:
        return next((x.side for x in self.parties if x.org_id == org_id), "company")


def _not_found(theme_id: str) -> errors.ServiceError:
    return c.PILOT_NOT_FOUND(f"no pilot for theme {theme_id}")


async def parties(session: AsyncSession, theme: Any) -> list[p.Party]:
    """The municipality side (the owner department) first, then the company parties by name: the leads and the
    confirmed partners of the published result's selected proposals."""
    res = (await session.execute(select(results.c.selected, results.c.published_at)
                                 .where(results.c.theme_id == theme.id))).first()
    selected = list(res.selected or []) if res is not None and res.published_at is not None else []
    companies: dict[str, str] = {}
    if selected:
        leads = await session.execute(
            select(organisations.c.id, organisations.c.name)
            .join(proposals, proposals.c.lead_org_id == organisations.c.id).where(proposals.c.id.in_(selected)))
        partners = await session.execute(
            select(organisations.c.id, organisations.c.name)
            .join(proposal_partners, proposal_partners.c.org_id == organisations.c.id)
            .where(proposal_partners.c.proposal_id.in_(selected), proposal_partners.c.status == "confirmed"))
        companies = {r.id: r.name for r in [*leads, *partners]}
    with_role = {r[0] for r in await session.execute(
        select(pilot_roles.c.org_id).where(pilot_roles.c.theme_id == theme.id))}
    out = [p.Party(org_id=theme.owner_department_id, org_name=theme.owner_department_name, side="municipality",
                   has_role=theme.owner_department_id in with_role)]
    out += [p.Party(org_id=org_id, org_name=name, side="company", has_role=org_id in with_role)
            for org_id, name in sorted(companies.items(), key=lambda x: (x[1], x[0]))]
    return out


async def access(session: AsyncSession, theme_id: str, actor: Actor | None, *, lock: bool = False) -> Ctx:
    """The theme's pilot for this actor: 404 unless the theme is in phase 3 or 4 and the actor is a manager or a
    member of a company party. `lock` holds the theme's row until the commit (PostgreSQL; SQLite's writer lock does
    it there), so a change and the move to phase 4 never interleave."""
    stmt = theme_domain._themes_query().where(themes.c.id == theme_id)
    if lock:
        stmt = stmt.with_for_update(of=themes)
    theme = (await session.execute(stmt)).first()
    if theme is None or theme.status != "published" or theme.phase < 3:
        raise _not_found(theme_id)
    manager = await theme_domain.may_manage(session, actor, theme.owner_department_id)
    found = await parties(session, theme)
    mine: set[str] = set()
    if actor is not None:
        member_of = await roles_of(session, actor.global_handle)
        mine = {x.org_id for x in found if x.side == "company" and x.org_id in member_of}
        if manager:
            mine.add(theme.owner_department_id)
    ctx = Ctx(theme=theme, parties=found, manager=manager, mine=mine)
    if not ctx.relation:
        raise _not_found(theme_id)
    decided = await session.execute(select(pilot_decisions.c.theme_id).where(pilot_decisions.c.theme_id == theme.id))
    ctx.decided = decided.first() is not None
    return ctx


def need_manager(ctx: Ctx, what: str) -> None:
    if not ctx.manager:
        raise c.PILOT_MANAGERS_ONLY(f"{what}: only staff of {ctx.theme.owner_department_name!r} (the theme's owner) or "
                               "the secretariat")


def need_phase3(ctx: Ctx, what: str) -> None:
    if ctx.theme.phase != 3:
        raise c.THEME_WRONG_PHASE(f"{what} belongs to phase 3 ({c.PHASES[3]}); the theme is in phase "
                              f"{ctx.theme.phase}, where it is frozen")


async def _managed(session: AsyncSession, theme_id: str, actor: Actor, what: str) -> Ctx:
    ctx = await access(session, theme_id, actor, lock=True)
    need_manager(ctx, what)
    need_phase3(ctx, what)
    return ctx


async def _log(session: AsyncSession, ctx: Ctx, *, kind: str, action: str, actor: Actor, at: datetime,
               before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, note: str = "") -> None:
    await audit(session, kind=kind, subject_id=ctx.theme.id, action=action, actor=actor, at=at, before=before,
                after=after, note=note)


# ---- roles ----------------------------------------------------------------------------------------------------


def _party(ctx: Ctx, org_id: str) -> p.Party:
    party = next((x for x in ctx.parties if x.org_id == org_id), None)
    if party is None:
        raise c.PILOT_NOT_A_PARTY("not a party of this pilot: the owner department or a selected company")
    return party


async def _item(session: AsyncSession, table: Any, item_id: str, theme_id: str, what: str) -> Any:
    row = (await session.execute(select(table).where(table.c.id == item_id, table.c.theme_id == theme_id))).first()
    if row is None:
        raise c.PILOT_ITEM_NOT_FOUND(f"no {what} {item_id} in this pilot")
    return row


async def _put_item(session: AsyncSession, ctx: Ctx, *, table: Any, item_id: str | None, noun: str, kind: str,
                    new: dict[str, Any], actor: Actor, now: datetime, on_insert: dict[str, Any] | None = None,
                    on_write: dict[str, Any] | None = None, shown: dict[str, Any] | None = None) -> None:
    """Add a row of the pilot (a role, a milestone, a KPI) or change it by id; the audit row says what changed.
    `on_insert` are the columns only a new row gets, `on_write` those every write sets, `shown` extra facts for
    the audit row."""
    on_write, shown = on_write or {}, shown or {}
    if item_id is None:
        new_id = new_uuid()
        await session.execute(insert(table).values(
            id=new_id, theme_id=ctx.theme.id, created_at=now, updated_at=now, **(on_insert or {}), **on_write, **new))
        await _log(session, ctx, kind=kind, action=f"{noun}_added", actor=actor, at=now,
                   after={f"{noun}_id": new_id, **shown, **new})
        return
    row = await _item(session, table, item_id, ctx.theme.id, noun)
    before, after = diff({k: getattr(row, k) for k in new}, new)
    if after:
        await session.execute(update(table).where(table.c.id == row.id).values(updated_at=now, **on_write, **new))
        await _log(session, ctx, kind=kind, action=f"{noun}_changed", actor=actor, at=now,
                   before={f"{noun}_id": row.id, **before}, after={f"{noun}_id": row.id, **after})


async def _remove_item(session: AsyncSession, ctx: Ctx, *, table: Any, item_id: str, noun: str, kind: str,
                       shown: tuple[str, ...], actor: Actor, now: datetime) -> None:
    row = await _item(session, table, item_id, ctx.theme.id, noun)
    await session.execute(delete(table).where(table.c.id == row.id))
    before = {k: getattr(row, k) for k in shown}
    if "org_id" in before:
        before["party"] = ctx.name_of(row.org_id)
    await _log(session, ctx, kind=kind, action=f"{noun}_removed", actor=actor, at=now,
               before={f"{noun}_id": row.id, **before})


async def put_role(*, session: AsyncSession, data: p.RolePut, node: str, now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the split of roles")
    party = _party(ctx, data.org_id)
    await _put_item(session, ctx, table=pilot_roles, item_id=data.role_id, noun="role", kind="pilot",
                    new={"org_id": data.org_id, "title": data.title, "responsibilities": data.responsibilities,
                         "contact_handle": data.contact_handle},
                    on_write={"updated_by": data.actor.global_handle}, shown={"party": party.org_name},
                    actor=data.actor, now=now or utcnow())
    return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


async def remove_role(*, session: AsyncSession, data: p.RoleRemove, node: str,
                      now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the split of roles")
    await _remove_item(session, ctx, table=pilot_roles, item_id=data.role_id, noun="role", kind="pilot",
                       shown=("org_id", "title", "responsibilities", "contact_handle"), actor=data.actor,
                       now=now or utcnow())
    return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


# ---- the schedule ---------------------------------------------------------------------------------------------


async def put_milestone(*, session: AsyncSession, data: p.MilestonePut, node: str,
                        now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the schedule")
    await _put_item(session, ctx, table=pilot_milestones, item_id=data.milestone_id, noun="milestone", kind="pilot",
                    new={"title": data.title, "due_on": data.due_on, "description": data.description},
                    on_insert={"status": "planned"}, actor=data.actor, now=now or utcnow())
    return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


async def remove_milestone(*, session: AsyncSession, data: p.MilestoneRemove, node: str,
                           now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the schedule")
    await _remove_item(session, ctx, table=pilot_milestones, item_id=data.milestone_id, noun="milestone",
                       kind="pilot", shown=("title", "due_on", "status"), actor=data.actor, now=now or utcnow())
    return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


async def set_milestone_status(*, session: AsyncSession, data: p.MilestoneStatusSet, node: str,
                               now: datetime | None = None) -> p.Pilot:
    """A manager or a member of a company party records that a milestone was reached (or was not after all)."""
    ctx = await access(session, data.theme_id, data.actor, lock=True)
    now = now or utcnow()
    row = await _item(session, pilot_milestones, data.milestone_id, ctx.theme.id, "milestone")
    if ctx.decided:
        raise c.PILOT_COMPLETE("the next-year decision is made: the pilot's record is closed")
    if row.status == data.status:
        return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)
    done = data.status == "done"
    await session.execute(update(pilot_milestones).where(pilot_milestones.c.id == row.id).values(
        status=data.status, done_at=now if done else None, done_by=data.actor.global_handle if done else None,
        updated_at=now))
    await _log(session, ctx, kind="pilot", action=f"milestone_{data.status}", actor=data.actor, at=now,
               before={"milestone_id": row.id, "title": row.title, "status": row.status},
               after={"milestone_id": row.id, "title": row.title, "status": data.status})
    return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


# ---- KPIs -----------------------------------------------------------------------------------------------------


async def put_kpi(*, session: AsyncSession, data: p.KpiPut, node: str, now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the KPIs")
    same_name = (await session.execute(select(pilot_kpis.c.id).where(
        pilot_kpis.c.theme_id == ctx.theme.id, pilot_kpis.c.name == data.name))).first()
    if same_name is not None and same_name.id != data.kpi_id:
        raise c.PILOT_KPI_NAME_TAKEN(f"the pilot already has a KPI named {data.name!r}")
    await _put_item(session, ctx, table=pilot_kpis, item_id=data.kpi_id, noun="kpi", kind="kpi",
                    new={"name": data.name, "unit": data.unit, "baseline": dec_text(data.baseline),
                         "target": dec_text(data.target), "direction": data.direction, "method": data.method,
                         "data_source": data.data_source}, actor=data.actor, now=now or utcnow())
    return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


async def remove_kpi(*, session: AsyncSession, data: p.KpiRemove, node: str, now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the KPIs")
    await _remove_item(session, ctx, table=pilot_kpis, item_id=data.kpi_id, noun="kpi", kind="kpi",
                       shown=("name", "unit", "baseline", "target", "direction"), actor=data.actor,
                       now=now or utcnow())
    return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


# ---- versioned documents: the plan (and phase 4's report and budget rationale) ---------------------------------


async def latest(session: AsyncSession, table: Any, theme_id: str) -> Any:
    return (await session.execute(select(table).where(table.c.theme_id == theme_id)
                                  .order_by(table.c.version.desc()).limit(1))).first()


async def save_version(session: AsyncSession, ctx: Ctx, *, table: Any, names: tuple[str, ...], what: str,
                       data: Any, kind: str, action: str, now: datetime) -> None:
    """A new version of a document if the editor saw the latest (compare-and-set on `version`; a stale edit is
    409, never merged) and something changed; every version stays."""
    current = await latest(session, table, ctx.theme.id)
    seen = current.version if current is not None else 0
    if data.version != seen:
        raise c.PILOT_STALE(f"the {what} is at version {seen}, you edited version {data.version}: reload it and "
                              "try again")
    new = {k: getattr(data, k) for k in names}
    before, after = diff({k: getattr(current, k) for k in names} if current is not None else {}, new)
    if not after:
        return  # the same text again (a form sent twice): no new version
    await session.execute(insert(table).values(
        theme_id=ctx.theme.id, version=seen + 1, saved_at=now, saved_by=data.actor.global_handle,
        saved_by_name=data.actor.display_name, **new))
    await _log(session, ctx, kind=kind, action=action, actor=data.actor, at=now,
               before={"version": seen, **before} if current is not None else None,
               after={"version": seen + 1, **after})


async def put_plan(*, session: AsyncSession, data: p.PlanPut, node: str, now: datetime | None = None) -> p.Pilot:
    ctx = await _managed(session, data.theme_id, data.actor, "the pilot plan")
    await save_version(session, ctx, table=pilot_plans, names=PLAN, what="pilot plan", data=data, kind="pilot",
                       action="plan_saved", now=now or utcnow())
    return await workspace(session=session, theme_id=ctx.theme.id, actor=data.actor)


# ---- agreements -----------------------------------------------------------------------------------------------


async def _agreement_row(session: AsyncSession, ctx: Ctx, agreement_id: str) -> Any:
    row = (await session.execute(select(agreements).where(
        agreements.c.id == agreement_id, agreements.c.theme_id == ctx.theme.id))).first()
    if row is None:
        raise c.AGREEMENT_NOT_FOUND(f"no agreement {agreement_id} in this pilot")
    return row


async def _agreement_out(session: AsyncSession, ctx: Ctx, row: Any, *, all_texts: bool = True) -> p.Agreement:
    """The agreement; `all_texts` False leaves the earlier versions' texts out (the workspace: see the contract)."""
    versions = [p.AgreementVersion(number=v.number, title=v.title,
                                   body=v.body if all_texts or v.number == row.current_version else None,
                                   sha256=v.sha256, created_at=aware(v.created_at), created_by=v.created_by)
                for v in await session.execute(select(agreement_versions).where(
                    agreement_versions.c.agreement_id == row.id).order_by(agreement_versions.c.number))]
    current = versions[-1]
    sigs = [p.Signature(org_id=s.org_id, org_name=ctx.name_of(s.org_id), side=ctx.side_of(s.org_id),
                        version=s.version, sha256=s.sha256, signed_by=s.signed_by, signed_by_name=s.signed_by_name,
                        signed_at=aware(s.signed_at), current=s.version == current.number)
            for s in await session.execute(select(agreement_signatures).where(
                agreement_signatures.c.agreement_id == row.id).order_by(agreement_signatures.c.signed_at,
                                                                        agreement_signatures.c.version))]
    signed_now = {s.org_id for s in sigs if s.current}
    pending = [x for x in ctx.parties if x.org_id not in signed_now]
    return p.Agreement(
        id=row.id, theme_id=row.theme_id, kind=row.kind, title=current.title, version=current.number,
        sha256=current.sha256, body=current.body or "", versions=versions, signatures=sigs, pending=pending,
        signed=not pending, signed_at=aware(row.signed_at) if not pending else None, created_at=aware(row.created_at),
        my_parties=[x.org_id for x in pending if x.org_id in ctx.mine])


async def _agreements(session: AsyncSession, ctx: Ctx) -> list[p.Agreement]:
    rows = await session.execute(select(agreements).where(agreements.c.theme_id == ctx.theme.id)
                                 .order_by(agreements.c.created_at, agreements.c.id))
    return [await _agreement_out(session, ctx, r, all_texts=False) for r in rows]


async def create_agreement(*, session: AsyncSession, data: p.AgreementCreate, node: str,
                           now: datetime | None = None) -> p.Agreement:
    ctx = await _managed(session, data.theme_id, data.actor, "agreements")
    now = now or utcnow()
    count = (await session.execute(select(func.count()).select_from(agreements).where(
        agreements.c.theme_id == ctx.theme.id))).scalar_one()
    if count >= p.MAX_AGREEMENTS:
        raise c.AGREEMENT_LIMIT(f"a pilot holds at most {p.MAX_AGREEMENTS} agreements: revise one of them instead")
    agreement_id, digest = new_uuid(), sha256(data.body)
    await session.execute(insert(agreements).values(
        id=agreement_id, theme_id=ctx.theme.id, kind=data.kind, current_version=1, created_at=now,
        created_by=data.actor.global_handle))
    await session.execute(insert(agreement_versions).values(
        agreement_id=agreement_id, number=1, title=data.title, body=data.body, sha256=digest, created_at=now,
        created_by=data.actor.global_handle))
    await _log(session, ctx, kind="agreement", action="agreement_drafted", actor=data.actor, at=now,
               after={"agreement_id": agreement_id, "kind": data.kind, "title": data.title, "version": 1,
                      "sha256": digest})
    return await _agreement_out(session, ctx, await _agreement_row(session, ctx, agreement_id))


async def revise_agreement(*, session: AsyncSession, data: p.AgreementRevise, node: str,
                           now: datetime | None = None) -> p.Agreement:
    ctx = await _managed(session, data.theme_id, data.actor, "agreements")
    now = now or utcnow()
    row = await _agreement_row(session, ctx, data.agreement_id)
    if data.version != row.current_version:
        raise c.AGREEMENT_STALE(f"the agreement is at version {row.current_version}, you revised version "
                              f"{data.version}: reload it and try again")
    current = (await session.execute(select(agreement_versions).where(
        agreement_versions.c.agreement_id == row.id, agreement_versions.c.number == row.current_version))).one()
    digest = sha256(data.body)
    if current.title == data.title and current.sha256 == digest:
        return await _agreement_out(session, ctx, row)  # the same text: no new version, signatures stand
    number = row.current_version + 1
    changed = await session.execute(update(agreements).where(
        agreements.c.id == row.id, agreements.c.current_version == row.current_version)
        .values(current_version=number, signed_at=None))
    if db.rowcount(changed) != 1:
        raise c.AGREEMENT_STALE("the agreement was revised by someone else meanwhile: reload it and try again")
    await session.execute(insert(agreement_versions).values(
        agreement_id=row.id, number=number, title=data.title, body=data.body, sha256=digest, created_at=now,
        created_by=data.actor.global_handle))
    voided = (await session.execute(select(agreement_signatures.c.org_id).where(
        agreement_signatures.c.agreement_id == row.id, agreement_signatures.c.version == row.current_version)))
    await _log(session, ctx, kind="agreement", action="agreement_revised", actor=data.actor, at=now,
               before={"agreement_id": row.id, "title": current.title, "version": current.number,
                       "sha256": current.sha256},
               after={"agreement_id": row.id, "title": data.title, "version": number, "sha256": digest,
                      "voided_signatures": sorted(ctx.name_of(r[0]) for r in voided)})
    return await _agreement_out(session, ctx, await _agreement_row(session, ctx, row.id))


async def sign_agreement(*, session: AsyncSession, data: p.AgreementSign, node: str,
                         now: datetime | None = None) -> p.Agreement:
    ctx = await access(session, data.theme_id, data.actor, lock=True)
    now = now or utcnow()
    row = await _agreement_row(session, ctx, data.agreement_id)
    need_phase3(ctx, "signing agreements")
    party = _party(ctx, data.org_id)
    if party.org_id not in ctx.mine:
        if party.side == "municipality":
            raise c.AGREEMENT_NOT_A_SIGNER("the municipality side is signed by staff of the owner department or the "
                                   "secretariat")
        raise c.AGREEMENT_NOT_A_SIGNER(f"only a member of {party.org_name!r} signs for it")
    if data.version != row.current_version:
        raise c.AGREEMENT_STALE(f"version {data.version} is not the agreement's current version "
                              f"({row.current_version}): read the current text and sign that")
    current = (await session.execute(select(agreement_versions).where(
        agreement_versions.c.agreement_id == row.id, agreement_versions.c.number == row.current_version))).one()
    if data.sha256 != current.sha256:
        raise c.AGREEMENT_STALE(f"the sha256 given is not that of version {current.number}'s text: read it again")
    already = (await session.execute(select(agreement_signatures.c.signed_by).where(
        agreement_signatures.c.agreement_id == row.id, agreement_signatures.c.version == current.number,
        agreement_signatures.c.org_id == party.org_id))).first()
    if already is not None:
        raise c.AGREEMENT_ALREADY_SIGNED(f"{party.org_name!r} has already signed version {current.number} "
                              f"({already.signed_by})")
    await session.execute(insert(agreement_signatures).values(
        agreement_id=row.id, version=current.number, org_id=party.org_id, sha256=current.sha256,
        signed_by=data.actor.global_handle, signed_by_name=data.actor.display_name, signed_at=now))
    await _log(session, ctx, kind="agreement", action="agreement_signed", actor=data.actor, at=now,
               after={"agreement_id": row.id, "party": party.org_name, "version": current.number,
                      "sha256": current.sha256})
    out = await _agreement_out(session, ctx, row)
    if out.signed:
        await session.execute(update(agreements).where(agreements.c.id == row.id).values(signed_at=now))
        await _log(session, ctx, kind="agreement", action="agreement_concluded", actor=data.actor, at=now,
                   after={"agreement_id": row.id, "kind": row.kind, "version": current.number,
                          "parties": len(ctx.parties)})
        await announce(session, bus, node=node, at=now, event=p.PilotAgreed(
            theme_id=ctx.theme.id, origin_node=ctx.theme.origin_node, agreement_id=row.id, kind=row.kind,
            version=current.number, parties=len(ctx.parties), at=now))
        out = await _agreement_out(session, ctx, await _agreement_row(session, ctx, row.id))
    return out


async def get_agreement(*, session: AsyncSession, q: p.AgreementQuery) -> p.Agreement:
    ctx = await access(session, q.theme_id, q.actor)
    return await _agreement_out(session, ctx, await _agreement_row(session, ctx, q.agreement_id))


# ---- the gate to phase 4 ----------------------------------------------------------------------------------------


async def missing_for_phase4(session: AsyncSession, ctx: Ctx, signed: list[p.Agreement] | None = None) -> list[str]:
    """What still stands between the pilot's design and phase 4 (empty: the gate is open)."""
    return [SENTENCES[r.code].format(party=r.party) for r in await phase4_requirements(session, ctx, signed)]


SENTENCES = {  # the English of each requirement's code (contracts.pilots GATE_*)
    p.GATE_PARTY_ROLE: "the split of roles must give {party!r} a role",
    p.GATE_MILESTONE: "at least one milestone in the schedule is needed",
    p.GATE_KPI: "at least one KPI is needed",
    p.GATE_PLAN: "the pilot plan must be saved",
    p.GATE_AGREEMENT_SIGNED: "at least one agreement must be signed by every party in its current version",
    p.GATE_REPORT: "the report must be saved",
    p.GATE_DECISION: "the next-year decision must be made",
}


async def phase4_requirements(session: AsyncSession, ctx: Ctx,
                              signed: list[p.Agreement] | None = None) -> list[p.Requirement]:
    """What still stands before phase 4, by code."""
    missing = [p.Requirement(code=p.GATE_PARTY_ROLE, party=x.org_name) for x in ctx.parties if not x.has_role]
    tid = ctx.theme.id
    for table, code in ((pilot_milestones, p.GATE_MILESTONE), (pilot_kpis, p.GATE_KPI)):
        if (await session.execute(select(table.c.id).where(table.c.theme_id == tid).limit(1))).first() is None:
            missing.append(p.Requirement(code=code))
    if await latest(session, pilot_plans, tid) is None:
        missing.append(p.Requirement(code=p.GATE_PLAN))
    found = signed if signed is not None else await _agreements(session, ctx)
    if not any(a.signed for a in found):
        missing.append(p.Requirement(code=p.GATE_AGREEMENT_SIGNED))
    return missing


async def gate_to_phase4(session: AsyncSession, theme: Any) -> list[str]:
    """For themes._gate: the theme's row is locked first, so no change of the pilot slips in between."""
    await session.execute(select(themes.c.id).where(themes.c.id == theme.id).with_for_update())
    ctx = Ctx(theme=theme, parties=await parties(session, theme), manager=True)
    return await missing_for_phase4(session, ctx)


# ---- the workspace ----------------------------------------------------------------------------------------------


async def kpis_of(session: AsyncSession, theme_id: str) -> list[p.Kpi]:
    rows = list(await session.execute(select(pilot_kpis).where(pilot_kpis.c.theme_id == theme_id)
                                      .order_by(pilot_kpis.c.created_at, pilot_kpis.c.name)))
    measured: dict[str, list[p.Measurement]] = {}
    for m in await session.execute(select(kpi_measurements).where(kpi_measurements.c.theme_id == theme_id)
                                   .order_by(kpi_measurements.c.measured_on, kpi_measurements.c.seq)):
        measured.setdefault(m.kpi_id, []).append(p.Measurement(
            id=m.id, value=Decimal(m.value), measured_on=m.measured_on, note=m.note, source=m.source,
            recorded_at=aware(m.recorded_at), recorded_by=m.recorded_by))
    out = []
    for r in rows:
        ms = measured.get(r.id, [])
        actual = ms[-1].value if ms else None
        f = achievement(Decimal(r.baseline), Decimal(r.target), actual)
        out.append(p.Kpi(id=r.id, name=r.name, unit=r.unit, baseline=Decimal(r.baseline), target=Decimal(r.target),
                         direction=r.direction, method=r.method, data_source=r.data_source, measurements=ms,
                         actual=actual, achievement=None if f is None else str(f), achievement_pct=percent(f)))
    return out


def _versions(rows: Any, cls: type, names: tuple[str, ...]) -> list[Any]:
    return [cls(version=r.version, saved_at=aware(r.saved_at), saved_by=r.saved_by, saved_by_name=r.saved_by_name,
                **{k: getattr(r, k) for k in names}) for r in rows]


async def _all_versions(session: AsyncSession, table: Any, theme_id: str, cls: type, names: tuple[str, ...]
                        ) -> list[Any]:
    rows = await session.execute(select(table).where(table.c.theme_id == theme_id).order_by(table.c.version))
    return _versions(rows, cls, names)


async def decision_of(session: AsyncSession, theme_id: str) -> p.DecisionOut | None:
    row = (await session.execute(select(pilot_decisions).where(pilot_decisions.c.theme_id == theme_id))).first()
    if row is None:
        return None
    return p.DecisionOut(decision=row.decision, label=p.DECISIONS[row.decision], reasons=row.reasons,
                         decided_at=aware(row.decided_at), decided_by=row.decided_by,
                         decided_by_name=row.decided_by_name)


async def workspace(*, session: AsyncSession, theme_id: str, actor: Actor | None) -> p.Pilot:
    ctx = await access(session, theme_id, actor)
    t = ctx.theme
    roles = [p.Role(id=r.id, org_id=r.org_id, org_name=ctx.name_of(r.org_id), side=ctx.side_of(r.org_id),
                    title=r.title, responsibilities=r.responsibilities, contact_handle=r.contact_handle,
                    updated_at=aware(r.updated_at), updated_by=r.updated_by)
             for r in await session.execute(select(pilot_roles).where(pilot_roles.c.theme_id == t.id)
                                            .order_by(pilot_roles.c.created_at, pilot_roles.c.id))]
    order = {x.org_id: i for i, x in enumerate(ctx.parties)}
    roles.sort(key=lambda r: order.get(r.org_id, len(order)))
    milestones = [p.Milestone(id=m.id, title=m.title, due_on=m.due_on, description=m.description, status=m.status,
                              done_at=aware(m.done_at), done_by=m.done_by, updated_at=aware(m.updated_at))
                  for m in await session.execute(select(pilot_milestones).where(pilot_milestones.c.theme_id == t.id)
                                                 .order_by(pilot_milestones.c.due_on, pilot_milestones.c.created_at))]
    plans = await _all_versions(session, pilot_plans, t.id, p.PlanVersion, PLAN)
    reports = await _all_versions(session, pilot_reports, t.id, p.ReportVersion, REPORT)
    budgets = await _all_versions(session, budget_rationales, t.id, p.BudgetVersion, BUDGET)
    found = await _agreements(session, ctx)
    case = (await session.execute(select(cases.c.id, cases.c.version).where(cases.c.theme_id == t.id))).first()
    decision = await decision_of(session, t.id)
    gate = await phase4_requirements(session, ctx, found) if t.phase == 3 else []
    return p.Pilot(
        theme_id=t.id, theme_title=t.title, origin_node=t.origin_node, phase=t.phase, fields=list(t.fields or []),
        owner_department_id=t.owner_department_id, owner_department_name=t.owner_department_name,
        parties=ctx.parties, relation=ctx.relation, may_manage=ctx.manager, my_parties=sorted(ctx.mine),
        roles=roles, milestones=milestones, kpis=await kpis_of(session, t.id), kpis_frozen=t.phase >= 4,
        plan=plans[-1] if plans else None, plan_versions=plans, agreements=found,
        missing_for_phase4=[SENTENCES[r.code].format(party=r.party) for r in gate],
        missing_for_phase4_codes=gate,
        report=reports[-1] if reports else None, report_versions=reports,
        budget=budgets[-1] if budgets else None, budget_versions=budgets, decision=decision,
        complete=decision is not None, case_id=case.id if case is not None else None,
        case_published_version=case.version if case is not None else 0)
