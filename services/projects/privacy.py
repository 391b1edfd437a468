"""A person's data in the projects service (issue 20 point 7): what it keeps about them, exported on request and
erased when their account is deleted (this node's UserDeleted, applied once through the kernel's inbox by the
`projects-privacy` consumer; a UserDeleted naming a person of another home node is dead-lettered, 403).

Erasure: memberships of organisations, follows, 共感 and briefing registrations go; roles the person held (an
evaluator, a pilot's contact) end: the row stays for the theme's record under a pseudonym; what they authored or
signed for an organisation (proposals, plans, reports, agreements, audit entries) stays, as the organisation's and
the municipality's record, under the pseudonym with the name 退会したユーザー. Inquiries of the contact form are
kept by e-mail address only (no account): the secretariat answers and removes them on request.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.projects import models as m
from towntip.kernel import privacy
from towntip.kernel.contracts import privacy as pc
from towntip.kernel.contracts.projects import SERVICE
from towntip.kernel.privacy import Kept

# Columns recording who did something for an organisation or the municipality: kept under a pseudonym.
_SIGNED = (
    (m.memberships, "added_by", ()), (m.hearings, "recorded_by", ()), (m.themes, "created_by", ()),
    (m.briefings, "created_by", ()), (m.proposals, "created_by", ()), (m.evaluators, "appointed_by", ()),
    (m.results, "closed_by", ()), (m.pilot_roles, "updated_by", ()), (m.kpi_measurements, "recorded_by", ()),
    (m.pilot_plans, "saved_by", ("saved_by_name",)), (m.pilot_reports, "saved_by", ("saved_by_name",)),
    (m.budget_rationales, "saved_by", ("saved_by_name",)), (m.agreements, "created_by", ()),
    (m.agreement_versions, "created_by", ()), (m.agreement_signatures, "signed_by", ("signed_by_name",)),
    (m.pilot_decisions, "decided_by", ("decided_by_name",)), (m.cases, "updated_by", ()),
    (m.case_versions, "published_by", ()), (m.theme_invitations, "invited_by", ()),
    (m.participations, "declared_by", ()), (m.audit_log, "actor", ("actor_name",)),
)
_NULLABLE = ((m.results, "published_by"), (m.pilot_milestones, "done_by"), (m.proposal_partners, "answered_by"),
             (m.inquiries, "answered_by"))

KEPT = (
    Kept(m.memberships, "global_handle", about="所属している団体 / organisations you belong to"),
    Kept(m.follows, "global_handle", about="フォローしているテーマ・事例 / themes and cases you follow"),
    Kept(m.likes, "giver", about="共感したもの / what you liked"),
    Kept(m.likes, "recipient", erase="null"),
    Kept(m.briefing_registrations, "global_handle", about="説明会の申込 / briefing registrations"),
    Kept(m.evaluators, "global_handle", erase="anonymise", about="審査員としての役割 / evaluator roles"),
    Kept(m.reviews, "evaluator", erase="anonymise"),
    Kept(m.pilot_roles, "contact_handle", erase="null", about="実証の担当 / pilot contacts"),
    # by e-mail address only: exported; erasure never knows the address (the secretariat removes them on request)
    Kept(m.inquiries, "email", "email", erase="keep", about="お問い合わせ / your inquiries"),
    *(Kept(t, col, erase="anonymise", names=names, about="記録した内容 / records you made")
      for t, col, names in _SIGNED),
    *(Kept(t, col, erase="null") for t, col in _NULLABLE),
)


async def export(session: AsyncSession, *, data: pc.ExportQuery) -> pc.PersonData:
    person = privacy.Person(data.global_handle, data.user_id, data.email)
    return pc.PersonData(service=SERVICE, tables=await privacy.export(session, KEPT, person),
                         about=privacy.about(KEPT))


async def forget(session: AsyncSession, erasure: privacy.Erasure) -> None:
    """Everything of the person here, in the consumer's transaction."""
    await privacy.erase(session, KEPT, erasure.person, alias=erasure.alias)
    # what the audit log says was done stays; where its before/after name the person, the pseudonym does instead
    await privacy.redact_json(session, m.audit_log, "seq", ("before", "after"), erasure.person, alias=erasure.alias)
    await privacy.scrub_outbox(session, m.bus.outbox, erasure.person)
