"""A person's part in this node's co-creation, for My Page across regions (svc.<node>.projects.person.summary):
the organisations they belong to and the themes they take part in, with how. The projects service knows people
by their global handle (name@home), so the query must carry it; the gateway sends it with the person's user id.

Answered only to the gateway (the bus's permissions): for the person's own My Page at this node, or for their home
node's signed query, which the gateway checked with the identity service first."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects.models import (
    briefing_registrations,
    briefings,
    evaluators,
    memberships,
    organisations,
    pilot_roles,
    proposal_partners,
    proposals,
    themes,
)
from towntip.kernel import db
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.mypage import OrganisationRef, ProjectsSummary, SummaryQuery, ThemeRef

# How a person takes part in a theme, in the order My Page names them.
ROLES = ("owner_department", "proposal_lead", "proposal_partner", "pilot_party", "evaluator", "briefing")


async def person_summary(*, session: AsyncSession, q: SummaryQuery) -> ProjectsSummary:
    if not q.global_handle:
        raise c.PERSON_HANDLE_REQUIRED("the projects service knows people by their global handle: send global_handle")
    who = q.global_handle
    orgs = (await session.execute(
        select(organisations.c.id, organisations.c.name, organisations.c.kind, memberships.c.role)
        .join(memberships, memberships.c.org_id == organisations.c.id)
        .where(memberships.c.global_handle == who).order_by(organisations.c.name))).all()
    org_ids = [o.id for o in orgs]
    departments = [o.id for o in orgs if o.kind == "department"]
    roles: dict[str, set[str]] = defaultdict(set)

    def add(role: str, theme_ids: object) -> None:
        for theme_id in theme_ids:  # type: ignore[attr-defined]
            roles[theme_id].add(role)

    if departments:
        add("owner_department", (await session.execute(
            select(themes.c.id).where(db.among(session, themes.c.owner_department_id, departments)))).scalars())
    if org_ids:
        add("proposal_lead", (await session.execute(
            select(proposals.c.theme_id).where(db.among(session, proposals.c.lead_org_id, org_ids),
                                               proposals.c.status == "submitted"))).scalars())
        add("proposal_partner", (await session.execute(
            select(proposals.c.theme_id).join(proposal_partners, proposal_partners.c.proposal_id == proposals.c.id)
            .where(db.among(session, proposal_partners.c.org_id, org_ids), proposal_partners.c.status == "confirmed",
                   proposals.c.status == "submitted"))).scalars())
    add("pilot_party", (await session.execute(
        select(pilot_roles.c.theme_id).where(pilot_roles.c.contact_handle == who))).scalars())
    add("evaluator", (await session.execute(
        select(evaluators.c.theme_id).where(evaluators.c.global_handle == who))).scalars())
    add("briefing", (await session.execute(
        select(briefings.c.theme_id).join(briefing_registrations,
                                          briefing_registrations.c.briefing_id == briefings.c.id)
        .where(briefing_registrations.c.global_handle == who))).scalars())
    found = []
    if roles:
        rows = (await session.execute(
            select(themes.c.id, themes.c.title, themes.c.phase, themes.c.status)
            .where(db.among(session, themes.c.id, list(roles))).order_by(themes.c.updated_at.desc()))).all()
        for t in rows:
            theirs = roles[t.id]
            if t.status != "published" and "owner_department" not in theirs:
                continue  # a draft is only its department's
            found.append(ThemeRef(id=t.id, title=t.title, phase=t.phase, status=t.status,
                                  role=",".join(r for r in ROLES if r in theirs)))
    return ProjectsSummary(
        organisations=[OrganisationRef(id=o.id, name=o.name, kind=o.kind, role=o.role) for o in orgs],
        themes=found)
