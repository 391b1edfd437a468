"""NATS adapters of the projects service: request/reply endpoints. They own the transactions and wake the outbox
relay and the mail sender after each commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.projects import (
    briefings,
    evaluation,
    federation,
    inquiries,
    matching,
    organisations,
    outcomes,
    people,
    pilots,
    proposals,
    themes,
)
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import pilots as p
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.mypage import EP_PERSON_SUMMARY, ProjectsSummary, SummaryQuery

T = TypeVar("T")


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, public_url: str,
                    on_commit: Callable[[], None], clock: Callable[[], datetime] = utcnow,
                    anchor: str = "") -> Endpoints:
    """`clock` is the service's idea of now (deadlines, briefings' starts): the real time, or a test's clock.
    `anchor`: the federation's trust anchor (entity id), "" without one."""
    eps = Endpoints()

    async def write(change: Callable[..., Awaitable[T]], **args: Any) -> T:
        """One change in its own transaction; after the commit, the outbox relay and the mail sender are woken."""
        async with sessions() as session, session.begin():
            out = await change(session=session, now=clock(), **args)
        on_commit()
        return out

    async def read(query: Callable[..., Awaitable[T]], **args: Any) -> T:
        async with sessions() as session:
            return await query(session=session, **args)

    # ---- the person's part, for My Page across regions ----

    @eps.add(EP_PERSON_SUMMARY, SummaryQuery)
    async def person_summary(q: SummaryQuery) -> ProjectsSummary:
        return await read(people.person_summary, q=q)

    # ---- organisations ----

    @eps.add(c.EP_ORG_CREATE, c.OrgCreate)
    async def org_create(q: c.OrgCreate) -> c.Org:
        return await write(organisations.create, data=q, node=node)

    @eps.add(c.EP_ORG_UPDATE, c.OrgUpdate)
    async def org_update(q: c.OrgUpdate) -> c.Org:
        return await write(organisations.update_profile, data=q, node=node)

    @eps.add(c.EP_ORG_GET, c.OrgQuery)
    async def org_get(q: c.OrgQuery) -> c.Org:
        async with sessions() as session:
            return await organisations.get(session=session, org_id=q.org_id, actor=q.actor)

    @eps.add(c.EP_ORG_LIST, c.OrgListQuery)
    async def org_list(q: c.OrgListQuery) -> c.OrgList:
        async with sessions() as session:
            return c.OrgList(orgs=await organisations.list_(session=session, q=q))

    @eps.add(c.EP_ORG_MEMBER_ADD, c.MemberAdd)
    async def member_add(q: c.MemberAdd) -> c.Org:
        return await write(organisations.add_member, data=q)

    @eps.add(c.EP_ORG_MEMBER_REMOVE, c.MemberRemove)
    async def member_remove(q: c.MemberRemove) -> c.Org:
        return await write(organisations.remove_member, data=q)

    # ---- hearings and themes ----

    @eps.add(c.EP_HEARING_CREATE, c.HearingCreate)
    async def hearing_create(q: c.HearingCreate) -> c.Hearing:
        return await write(themes.create_hearing, data=q, node=node)

    @eps.add(c.EP_HEARING_LIST, c.HearingListQuery)
    async def hearing_list(q: c.HearingListQuery) -> c.HearingList:
        async with sessions() as session:
            return c.HearingList(hearings=await themes.list_hearings(session=session, q=q))

    @eps.add(c.EP_THEME_CREATE, c.ThemeCreate)
    async def theme_create(q: c.ThemeCreate) -> c.Theme:
        return await write(themes.create_theme, data=q, node=node)

    @eps.add(c.EP_THEME_UPDATE, c.ThemeUpdate)
    async def theme_update(q: c.ThemeUpdate) -> c.Theme:
        return await write(themes.update_theme, data=q, node=node)

    @eps.add(c.EP_THEME_PUBLISH, c.ThemeAction)
    async def theme_publish(q: c.ThemeAction) -> c.Theme:
        return await write(themes.publish, data=q, node=node)

    @eps.add(c.EP_THEME_REQUIREMENTS, c.RequirementsPut)
    async def theme_requirements(q: c.RequirementsPut) -> c.Theme:
        return await write(themes.put_requirements, data=q, node=node)

    @eps.add(c.EP_THEME_CALL_OPEN, c.ThemeAction)
    async def theme_call_open(q: c.ThemeAction) -> c.Theme:
        return await write(themes.open_call, data=q, node=node)

    @eps.add(c.EP_THEME_ADVANCE, c.PhaseAdvance)
    async def theme_advance(q: c.PhaseAdvance) -> c.Theme:
        return await write(themes.advance_phase, data=q, node=node)

    @eps.add(c.EP_THEME_GET, c.ThemeQuery)
    async def theme_get(q: c.ThemeQuery) -> c.Theme:
        async with sessions() as session:
            return await themes.get(session=session, theme_id=q.theme_id, actor=q.actor)

    @eps.add(c.EP_THEME_LIST, c.ThemeListQuery)
    async def theme_list(q: c.ThemeListQuery) -> c.ThemeList:
        async with sessions() as session:
            return c.ThemeList(themes=await themes.list_(session=session, q=q))

    @eps.add(c.EP_THEME_HISTORY, c.ThemeQuery)
    async def theme_history(q: c.ThemeQuery) -> c.History:
        async with sessions() as session:
            return await themes.history(session=session, theme_id=q.theme_id, actor=q.actor)

    # ---- phase 2 (対話形成): matching, briefings, proposals, evaluation, the result ----

    @eps.add(c.EP_MATCH_COMPANIES, c.ThemeQuery)
    async def match_companies(q: c.ThemeQuery) -> c.CompanyMatches:
        return await read(matching.companies_for, theme_id=q.theme_id, actor=q.actor)

    @eps.add(c.EP_MATCH_THEMES, c.OrgMatchQuery)
    async def match_themes(q: c.OrgMatchQuery) -> c.ThemeMatches:
        return await read(matching.themes_for, q=q)

    @eps.add(c.EP_BRIEFING_CREATE, c.BriefingCreate)
    async def briefing_create(q: c.BriefingCreate) -> c.Briefing:
        return await write(briefings.create, data=q, node=node)

    @eps.add(c.EP_BRIEFING_LIST, c.ThemeQuery)
    async def briefing_list(q: c.ThemeQuery) -> c.BriefingList:
        return await read(briefings.list_, theme_id=q.theme_id, actor=q.actor)

    @eps.add(c.EP_BRIEFING_REGISTER, c.BriefingRegister)
    async def briefing_register(q: c.BriefingRegister) -> c.Briefing:
        return await write(briefings.register, data=q, node=node)

    @eps.add(c.EP_BRIEFING_CANCEL, c.BriefingCancel)
    async def briefing_cancel(q: c.BriefingCancel) -> c.Briefing:
        return await write(briefings.cancel, data=q, node=node)

    @eps.add(c.EP_PROPOSAL_SUBMIT, c.ProposalSubmit)
    async def proposal_submit(q: c.ProposalSubmit) -> c.Proposal:
        return await write(proposals.submit, data=q, node=node)

    @eps.add(c.EP_PROPOSAL_UPDATE, c.ProposalUpdate)
    async def proposal_update(q: c.ProposalUpdate) -> c.Proposal:
        return await write(proposals.update_, data=q, node=node)

    @eps.add(c.EP_PROPOSAL_WITHDRAW, c.ProposalAction)
    async def proposal_withdraw(q: c.ProposalAction) -> c.Proposal:
        return await write(proposals.withdraw, data=q, node=node)

    @eps.add(c.EP_PROPOSAL_PARTNER, c.PartnerAnswer)
    async def proposal_partner(q: c.PartnerAnswer) -> c.Proposal:
        return await write(proposals.answer_partner, data=q, node=node)

    @eps.add(c.EP_PROPOSAL_GET, c.ProposalQuery)
    async def proposal_get(q: c.ProposalQuery) -> c.Proposal:
        return await read(proposals.get, q=q, now=clock())

    @eps.add(c.EP_PROPOSAL_LIST, c.ProposalListQuery)
    async def proposal_list(q: c.ProposalListQuery) -> c.ProposalList:
        return c.ProposalList(proposals=await read(proposals.list_, q=q, now=clock()))

    @eps.add(c.EP_EVALUATOR_APPOINT, c.EvaluatorAppoint)
    async def evaluator_appoint(q: c.EvaluatorAppoint) -> c.EvaluationStatus:
        return await write(evaluation.appoint, data=q, node=node)

    @eps.add(c.EP_REVIEW_DECLARE, c.ConflictDeclare)
    async def review_declare(q: c.ConflictDeclare) -> c.MyReviews:
        return await write(evaluation.declare, data=q, node=node)

    @eps.add(c.EP_REVIEW_SCORE, c.ScoreSubmit)
    async def review_score(q: c.ScoreSubmit) -> c.MyReviews:
        return await write(evaluation.score, data=q, node=node)

    @eps.add(c.EP_REVIEW_MINE, c.ThemeQuery)
    async def review_mine(q: c.ThemeQuery) -> c.MyReviews:
        return await read(evaluation.mine_, theme_id=q.theme_id, actor=q.actor, now=clock())

    @eps.add(c.EP_EVALUATION_STATUS, c.ThemeQuery)
    async def evaluation_status(q: c.ThemeQuery) -> c.EvaluationStatus:
        return await read(evaluation.status, theme_id=q.theme_id, actor=q.actor, now=clock())

    @eps.add(c.EP_EVALUATION_CLOSE, c.ThemeAction)
    async def evaluation_close(q: c.ThemeAction) -> c.EvaluationStatus:
        return await write(evaluation.close, data=q, node=node)

    @eps.add(c.EP_RESULT_PUBLISH, c.ResultPublish)
    async def result_publish(q: c.ResultPublish) -> c.Result:
        return await write(evaluation.publish, data=q, node=node)

    @eps.add(c.EP_RESULT_GET, c.ThemeQuery)
    async def result_get(q: c.ThemeQuery) -> c.Result:
        return await read(evaluation.result, theme_id=q.theme_id, actor=q.actor)

    # ---- phase 3 (実証設計): the pilot's roles, schedule, KPIs, plan and agreements (services.projects.pilots) ----

    @eps.add(p.EP_PILOT_GET, p.PilotQuery)
    async def pilot_get(q: p.PilotQuery) -> p.Pilot:
        return await read(pilots.workspace, theme_id=q.theme_id, actor=q.actor)

    @eps.add(p.EP_ROLE_PUT, p.RolePut)
    async def role_put(q: p.RolePut) -> p.Pilot:
        return await write(pilots.put_role, data=q, node=node)

    @eps.add(p.EP_ROLE_REMOVE, p.RoleRemove)
    async def role_remove(q: p.RoleRemove) -> p.Pilot:
        return await write(pilots.remove_role, data=q, node=node)

    @eps.add(p.EP_MILESTONE_PUT, p.MilestonePut)
    async def milestone_put(q: p.MilestonePut) -> p.Pilot:
        return await write(pilots.put_milestone, data=q, node=node)

    @eps.add(p.EP_MILESTONE_REMOVE, p.MilestoneRemove)
    async def milestone_remove(q: p.MilestoneRemove) -> p.Pilot:
        return await write(pilots.remove_milestone, data=q, node=node)

    @eps.add(p.EP_MILESTONE_STATUS, p.MilestoneStatusSet)
    async def milestone_status(q: p.MilestoneStatusSet) -> p.Pilot:
        return await write(pilots.set_milestone_status, data=q, node=node)

    @eps.add(p.EP_KPI_PUT, p.KpiPut)
    async def kpi_put(q: p.KpiPut) -> p.Pilot:
        return await write(pilots.put_kpi, data=q, node=node)

    @eps.add(p.EP_KPI_REMOVE, p.KpiRemove)
    async def kpi_remove(q: p.KpiRemove) -> p.Pilot:
        return await write(pilots.remove_kpi, data=q, node=node)

    @eps.add(p.EP_PLAN_PUT, p.PlanPut)
    async def plan_put(q: p.PlanPut) -> p.Pilot:
        return await write(pilots.put_plan, data=q, node=node)

    @eps.add(p.EP_AGREEMENT_CREATE, p.AgreementCreate)
    async def agreement_create(q: p.AgreementCreate) -> p.Agreement:
        return await write(pilots.create_agreement, data=q, node=node)

    @eps.add(p.EP_AGREEMENT_REVISE, p.AgreementRevise)
    async def agreement_revise(q: p.AgreementRevise) -> p.Agreement:
        return await write(pilots.revise_agreement, data=q, node=node)

    @eps.add(p.EP_AGREEMENT_SIGN, p.AgreementSign)
    async def agreement_sign(q: p.AgreementSign) -> p.Agreement:
        return await write(pilots.sign_agreement, data=q, node=node)

    @eps.add(p.EP_AGREEMENT_GET, p.AgreementQuery)
    async def agreement_get(q: p.AgreementQuery) -> p.Agreement:
        return await read(pilots.get_agreement, q=q)

    # ---- phase 4 (成果定着): actuals, report, budget rationale, decision, case study (services.projects.outcomes) ----

    @eps.add(p.EP_ACTUAL_ADD, p.ActualAdd)
    async def actual_add(q: p.ActualAdd) -> p.Pilot:
        return await write(outcomes.add_actual, data=q, node=node)

    @eps.add(p.EP_REPORT_PUT, p.ReportPut)
    async def report_put(q: p.ReportPut) -> p.Pilot:
        return await write(outcomes.put_report, data=q, node=node)

    @eps.add(p.EP_BUDGET_PUT, p.BudgetPut)
    async def budget_put(q: p.BudgetPut) -> p.Pilot:
        return await write(outcomes.put_budget, data=q, node=node)

    @eps.add(p.EP_DECISION_MAKE, p.DecisionMake)
    async def decision_make(q: p.DecisionMake) -> p.Pilot:
        return await write(outcomes.decide, data=q, node=node)

    @eps.add(p.EP_CASE_PUT, p.CasePut)
    async def case_put(q: p.CasePut) -> p.Case:
        return await write(outcomes.put_case, data=q, node=node)

    @eps.add(p.EP_CASE_PUBLISH, p.CasePublish)
    async def case_publish(q: p.CasePublish) -> p.Case:
        return await write(outcomes.publish_case, data=q, node=node)

    @eps.add(p.EP_CASE_GET, p.CaseQuery)
    async def case_get(q: p.CaseQuery) -> p.Case:
        return await read(outcomes.get_case, q=q)

    @eps.add(p.EP_CASE_FOR_THEME, p.PilotQuery)
    async def case_for_theme(q: p.PilotQuery) -> p.Case:
        return await read(outcomes.case_for_theme, theme_id=q.theme_id, actor=q.actor)

    @eps.add(p.EP_CASE_LIST, p.CaseListQuery)
    async def case_list(q: p.CaseListQuery) -> p.CaseList:
        return await read(outcomes.list_cases, q=q)

    # ---- the contact form ----

    @eps.add(c.EP_INQUIRY_CREATE, c.InquiryCreate)
    async def inquiry_create(q: c.InquiryCreate) -> c.InquiryReceipt:
        return await write(inquiries.create, data=q, node=node, public_url=public_url)

    @eps.add(c.EP_INQUIRY_LIST, c.InquiryListQuery)
    async def inquiry_list(q: c.InquiryListQuery) -> c.InquiryList:
        async with sessions() as session:
            return c.InquiryList(inquiries=await inquiries.list_(session=session, q=q))

    @eps.add(c.EP_INQUIRY_STATUS, c.InquiryStatusSet)
    async def inquiry_status(q: c.InquiryStatusSet) -> c.Inquiry:
        return await write(inquiries.set_status, data=q)

    # ---- federation: other municipalities' themes and cases, follows, 横展開, 広域連携 ----

    @eps.add(f.EP_MEMBERS, f.MembersQuery)
    async def fed_members(q: f.MembersQuery) -> f.Members:
        return await read(federation.members, node=node, anchor=anchor)

    @eps.add(f.EP_THEMES_LIST, f.RemoteListQuery)
    async def fed_themes(q: f.RemoteListQuery) -> f.RemoteThemeList:
        return await read(federation.list_themes, q=q, node=node)

    @eps.add(f.EP_THEMES_GET, f.RemoteQuery)
    async def fed_theme(q: f.RemoteQuery) -> f.RemoteTheme:
        return await read(federation.get_theme, q=q, node=node)

    @eps.add(f.EP_CASES_LIST, f.RemoteListQuery)
    async def fed_cases(q: f.RemoteListQuery) -> f.RemoteCaseList:
        return await read(federation.list_cases, q=q, node=node)

    @eps.add(f.EP_CASES_GET, f.RemoteQuery)
    async def fed_case(q: f.RemoteQuery) -> f.RemoteCase:
        return await read(federation.get_case, q=q, node=node, public_url=public_url)

    @eps.add(f.EP_FOLLOW, f.FollowIn)
    async def fed_follow(q: f.FollowIn) -> f.Followed:
        return await write(federation.follow, data=q, node=node)

    @eps.add(f.EP_UNFOLLOW, f.FollowIn)
    async def fed_unfollow(q: f.FollowIn) -> f.Followed:
        return await write(federation.unfollow, data=q, node=node)

    @eps.add(f.EP_FOLLOWING, f.FollowingQuery)
    async def fed_following(q: f.FollowingQuery) -> f.FollowingList:
        return await read(federation.following, q=q, node=node)

    @eps.add(f.EP_ADOPT, f.CaseAdopt)
    async def fed_adopt(q: f.CaseAdopt) -> c.Theme:
        return await write(federation.adopt, data=q, node=node)

    @eps.add(f.EP_WIDE_AREA, f.WideAreaSet)
    async def fed_wide_area(q: f.WideAreaSet) -> c.Theme:
        return await write(federation.set_wide_area, data=q, node=node)

    @eps.add(f.EP_PARTICIPATE, f.ParticipationDeclare)
    async def fed_participate(q: f.ParticipationDeclare) -> f.RemoteTheme:
        return await write(federation.participate, data=q, node=node)

    return eps
