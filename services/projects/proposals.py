"""Proposals to a theme's open call (公募): from a single company or a consortium. No NATS, no commits here.

- while the call is open (phase 2, opened, before the deadline) a member of a company submits a proposal with that
  company as lead, alone or with partner companies (a consortium); each partner's members confirm or decline its
  participation, until the deadline;
- one proposal per lead organisation and theme; its lead's members edit it until the deadline (compare-and-set on
  `version`, as themes) and may withdraw it until the evaluation is closed (a withdrawal is final);
- **confidential until the result and after it**: a proposal is read only by the members of its lead and partner
  organisations, the theme's evaluators (proposals still submitted), and the theme's managers (the owner
  department's staff and the secretariat). To anyone else it does not exist: 404, the same answer as a wrong id,
  so not even its existence leaks. Nobody reads a proposal of a theme through another theme.

Every change writes an audit row (subject kind `proposal`) in the same transaction; the events say only that a
proposal arrived or was withdrawn (no company, no text).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects import themes as theme_domain
from services.projects.common import audit, aware, diff, new_uuid, roles_of
from services.projects.models import (
    bus,
    evaluators,
    organisations,
    proposal_partners,
    proposals,
    results,
    themes,
)
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor

CONTENT = ("title", "summary", "plan", "budget_yen", "attachments")


def _not_found(proposal_id: str) -> errors.ServiceError:
    return c.PROPOSAL_NOT_FOUND(f"no proposal {proposal_id}")


async def is_evaluator(session: AsyncSession, theme_id: str, actor: Actor | None) -> bool:
    if actor is None:
        return False
    found = await session.execute(select(evaluators.c.theme_id).where(
        evaluators.c.theme_id == theme_id, evaluators.c.global_handle == actor.global_handle))
    return found.first() is not None


async def _partners(session: AsyncSession, proposal_id: str) -> list[c.Partner]:
    rows = await session.execute(
        select(proposal_partners, organisations.c.name.label("org_name"))
        .join(organisations, organisations.c.id == proposal_partners.c.org_id)
        .where(proposal_partners.c.proposal_id == proposal_id).order_by(organisations.c.name))
    return [c.Partner(org_id=r.org_id, org_name=r.org_name, status=r.status, answered_at=aware(r.answered_at),
                      answered_by=r.answered_by) for r in rows]


def _query():
    return (select(proposals, organisations.c.name.label("lead_org_name"), themes.c.title.label("theme_title"),
                   themes.c.owner_department_id)
            .join(organisations, organisations.c.id == proposals.c.lead_org_id)
            .join(themes, themes.c.id == proposals.c.theme_id))


async def _row(session: AsyncSession, proposal_id: str) -> Any:
    row = (await session.execute(_query().where(proposals.c.id == proposal_id))).first()
    if row is None:
        raise _not_found(proposal_id)
    return row


async def relation(session: AsyncSession, row: Any, actor: Actor | None,
                   partners: list[c.Partner] | None = None) -> list[str]:
    """How this actor may read the proposal (empty: they may not, and for them it does not exist)."""
    if actor is None:
        return []
    mine = await roles_of(session, actor.global_handle)
    partners = partners if partners is not None else await _partners(session, row.id)
    out = []
    if row.lead_org_id in mine:
        out.append("lead")
    if any(p.org_id in mine for p in partners):
        out.append("partner")
    if row.status == "submitted" and await is_evaluator(session, row.theme_id, actor):
        out.append("evaluator")
    if await theme_domain.may_manage(session, actor, row.owner_department_id):
        out.append("manager")
    return out


async def _deadline(session: AsyncSession, theme_id: str) -> datetime:
    req = await theme_domain._requirements(session, theme_id)
    assert req is not None  # a proposal exists only for a theme whose call opened
    return req.deadline


async def _out(session: AsyncSession, row: Any, actor: Actor | None, now: datetime) -> c.Proposal:
    partners = await _partners(session, row.id)
    rel = await relation(session, row, actor, partners)
    if not rel:
        raise _not_found(row.id)
    deadline = await _deadline(session, row.theme_id)
    open_ = row.status == "submitted" and now < deadline
    return c.Proposal(
        id=row.id, origin_node=row.origin_node, theme_id=row.theme_id, theme_title=row.theme_title,
        lead_org_id=row.lead_org_id, lead_org_name=row.lead_org_name, partners=partners, title=row.title,
        summary=row.summary, plan=row.plan, budget_yen=row.budget_yen,
        attachments=[c.Attachment(**a) for a in row.attachments or []], status=row.status, version=row.version,
        created_at=aware(row.created_at), created_by=row.created_by, updated_at=aware(row.updated_at),
        withdrawn_at=aware(row.withdrawn_at), deadline=deadline, open_for_changes=open_, relation=rel,
        may_edit=open_ and "lead" in rel)


async def _open_call(session: AsyncSession, theme: Any, now: datetime) -> None:
    req = await theme_domain._requirements(session, theme.id)
    if theme.phase != 2 or req is None or req.call_opened_at is None:
        raise c.CALL_NOT_OPEN("the theme's call for proposals is not open")
    if req.deadline <= now:
        raise c.CALL_DEADLINE_PASSED("the call's deadline has passed: proposals can no longer be submitted or changed")


async def _companies(session: AsyncSession, org_ids: list[str], lead_id: str) -> list[Any]:
    rows = []
    for org_id in org_ids:
        org = (await session.execute(select(organisations).where(organisations.c.id == org_id))).first()
        if org is None:
            raise c.ORG_NOT_FOUND(f"no organisation {org_id}")
        if org.kind != "company":
            raise c.PROPOSAL_DEPARTMENT_NOT_ALLOWED(
                f"{org.name!r} is a municipal department, not a company or organisation")
        if org.id == lead_id:
            raise c.PROPOSAL_LEAD_AS_PARTNER("the lead organisation is not its own partner")
        rows.append(org)
    return rows


def _content(data: c.ProposalContent) -> dict[str, Any]:
    return {"title": data.title, "summary": data.summary, "plan": data.plan, "budget_yen": data.budget_yen,
            "attachments": [a.model_dump() for a in data.attachments]}


async def submit(*, session: AsyncSession, data: c.ProposalSubmit, node: str,
                 now: datetime | None = None) -> c.Proposal:
    theme = await theme_domain._theme_row(session, data.theme_id, data.actor)
    now = now or utcnow()
    lead = (await session.execute(select(organisations).where(organisations.c.id == data.lead_org_id))).first()
    if lead is None or lead.kind != "company" or lead.id not in await roles_of(session, data.actor.global_handle):
        raise c.PROPOSAL_NOT_A_MEMBER("a proposal is submitted by a member of its lead company or organisation")
    await _open_call(session, theme, now)
    partners = await _companies(session, list(data.partner_org_ids), lead.id)
    proposal_id = new_uuid()
    content = _content(data)
    inserted = await session.execute(
        db.insert_on_conflict(session, proposals)
        .values(id=proposal_id, origin_node=node, theme_id=theme.id, lead_org_id=lead.id, status="submitted",
                version=1, created_at=now, created_by=data.actor.global_handle, updated_at=now, **content)
        .on_conflict_do_nothing(index_elements=["theme_id", "lead_org_id"])
        .returning(proposals.c.id))
    if inserted.first() is None:
        raise c.PROPOSAL_ALREADY_SUBMITTED(
            f"{lead.name!r} already has a proposal for this theme (one per lead organisation): "
            "edit that one")
    if partners:
        await session.execute(insert(proposal_partners), [
            {"proposal_id": proposal_id, "org_id": p.id, "status": "pending"} for p in partners])
    await audit(session, kind="proposal", subject_id=proposal_id, action="submitted", actor=data.actor, at=now,
                after={"theme_id": theme.id, "lead": lead.name, "partners": [p.name for p in partners], **content})
    await announce(session, bus, node=node, at=now, event=c.ProposalReceived(
        proposal_id=proposal_id, theme_id=theme.id, origin_node=node, at=now))
    return await _out(session, await _row(session, proposal_id), data.actor, now)


async def _lead_row(session: AsyncSession, proposal_id: str, actor: Actor) -> Any:
    row = await _row(session, proposal_id)
    rel = await relation(session, row, actor)
    if not rel:
        raise _not_found(proposal_id)
    if "lead" not in rel:
        raise c.PROPOSAL_LEAD_ONLY(f"only the members of {row.lead_org_name!r} (the lead) change this proposal")
    return row


async def update_(*, session: AsyncSession, data: c.ProposalUpdate, node: str,
                  now: datetime | None = None) -> c.Proposal:
    row = await _lead_row(session, data.proposal_id, data.actor)
    now = now or utcnow()
    if row.status != "submitted":
        raise c.PROPOSAL_WITHDRAWN("the proposal was withdrawn")
    theme = await theme_domain._theme_row(session, row.theme_id, data.actor)
    await _open_call(session, theme, now)
    if data.version != row.version:
        raise c.PROPOSAL_STALE(f"the proposal is at version {row.version}, you edited version {data.version}: "
                              "reload it and try again")
    new = _content(data)
    old_partners = {p.org_id: p for p in await _partners(session, row.id)}
    partners = await _companies(session, list(data.partner_org_ids), row.lead_org_id)
    before, after = diff({k: getattr(row, k) for k in CONTENT}, new)
    added = [p for p in partners if p.id not in old_partners]
    removed = [p for org_id, p in old_partners.items() if org_id not in {x.id for x in partners}]
    if not after and not added and not removed:
        return await _out(session, row, data.actor, now)
    result = await session.execute(
        update(proposals).where(proposals.c.id == row.id, proposals.c.version == row.version)
        .values(version=row.version + 1, updated_at=now, **new))
    if db.rowcount(result) != 1:
        raise c.PROPOSAL_STALE("the proposal was changed by someone else meanwhile: reload it and try again")
    if removed:
        await session.execute(delete(proposal_partners).where(
            proposal_partners.c.proposal_id == row.id,
            proposal_partners.c.org_id.in_([p.org_id for p in removed])))
    if added:
        await session.execute(insert(proposal_partners), [
            {"proposal_id": row.id, "org_id": p.id, "status": "pending"} for p in added])
    if added or removed:
        before["partners"] = sorted(p.org_name for p in old_partners.values())
        after["partners"] = sorted(p.name for p in partners)
    await audit(session, kind="proposal", subject_id=row.id, action="updated", actor=data.actor, at=now,
                before=before, after=after)
    return await _out(session, await _row(session, row.id), data.actor, now)


async def withdraw(*, session: AsyncSession, data: c.ProposalAction, node: str,
                   now: datetime | None = None) -> c.Proposal:
    row = await _lead_row(session, data.proposal_id, data.actor)
    now = now or utcnow()
    if row.status != "submitted":
        raise c.PROPOSAL_WITHDRAWN("the proposal was already withdrawn")
    closed = await session.execute(select(results.c.theme_id).where(results.c.theme_id == row.theme_id))
    if closed.first() is not None:
        raise c.EVALUATION_CLOSED("the evaluation is closed: the proposal can no longer be withdrawn")
    changed = await session.execute(
        update(proposals).where(proposals.c.id == row.id, proposals.c.status == "submitted")
        .values(status="withdrawn", withdrawn_at=now, updated_at=now, version=row.version + 1))
    if db.rowcount(changed) != 1:
        raise c.PROPOSAL_WITHDRAWN("the proposal was already withdrawn")
    await audit(session, kind="proposal", subject_id=row.id, action="withdrawn", actor=data.actor, at=now,
                before={"status": "submitted"}, after={"status": "withdrawn"}, note=data.note)
    await announce(session, bus, node=node, at=now, event=c.ProposalWithdrawn(
        proposal_id=row.id, theme_id=row.theme_id, origin_node=row.origin_node, at=now))
    return await _out(session, await _row(session, row.id), data.actor, now)


async def answer_partner(*, session: AsyncSession, data: c.PartnerAnswer, node: str,
                         now: datetime | None = None) -> c.Proposal:
    row = await _row(session, data.proposal_id)
    now = now or utcnow()
    if not await relation(session, row, data.actor):
        raise _not_found(data.proposal_id)
    if data.org_id not in await roles_of(session, data.actor.global_handle):
        raise c.PROPOSAL_PARTNER_ONLY("a partner's participation is confirmed by a member of that partner")
    part = (await session.execute(select(proposal_partners).where(
        proposal_partners.c.proposal_id == row.id, proposal_partners.c.org_id == data.org_id))).first()
    if part is None:
        raise c.PROPOSAL_PARTNER_NOT_FOUND("that organisation is not a partner of this proposal")
    if row.status != "submitted":
        raise c.PROPOSAL_WITHDRAWN("the proposal was withdrawn")
    if await _deadline(session, row.theme_id) <= now:
        raise c.CALL_DEADLINE_PASSED("the call's deadline has passed: the consortium can no longer change")
    status = "confirmed" if data.decision == "confirm" else "declined"
    if part.status == status:
        return await _out(session, row, data.actor, now)
    await session.execute(update(proposal_partners).where(
        proposal_partners.c.proposal_id == row.id, proposal_partners.c.org_id == data.org_id)
        .values(status=status, answered_at=now, answered_by=data.actor.global_handle))
    await audit(session, kind="proposal", subject_id=row.id, action=f"partner_{status}", actor=data.actor, at=now,
                before={"partner": data.org_id, "status": part.status},
                after={"partner": data.org_id, "status": status})
    return await _out(session, row, data.actor, now)


async def get(*, session: AsyncSession, q: c.ProposalQuery, now: datetime | None = None) -> c.Proposal:
    return await _out(session, await _row(session, q.proposal_id), q.actor, now or utcnow())


async def list_(*, session: AsyncSession, q: c.ProposalListQuery, now: datetime | None = None) -> list[c.Proposal]:
    now = now or utcnow()
    mine = set(await roles_of(session, q.actor.global_handle))
    stmt = _query().order_by(proposals.c.created_at, proposals.c.id)
    if q.theme_id is not None:
        await theme_domain._theme_row(session, q.theme_id, q.actor)  # a theme this actor cannot see: 404
        stmt = stmt.where(proposals.c.theme_id == q.theme_id)
    out = []
    for row in await session.execute(stmt):
        partners = await _partners(session, row.id)
        own = row.lead_org_id in mine or any(p.org_id in mine for p in partners)
        if q.mine and not own:
            continue
        if own or await relation(session, row, q.actor, partners):
            out.append(await _out(session, row, q.actor, now))
    return out


async def list_page(*, session: AsyncSession, q: c.ProposalListQuery, now: datetime | None = None) -> c.ProposalList:
    """The endpoint's answer: the list in its reply model."""
    return c.ProposalList(proposals=await list_(session=session, q=q, now=now))
