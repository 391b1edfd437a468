"""The projects service's endpoints, one table per domain. Changes run in the unit of work's transaction, which
wakes the outbox relay and the mail sender after each commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.projects import (
    briefings,
    evaluation,
    federation,
    inquiries,
    likes,
    matching,
    open_data,
    organisations,
    outcomes,
    people,
    pilots,
    privacy,
    proposals,
    themes,
)
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import notices as nc
from towntip.kernel.contracts import open_data as od
from towntip.kernel.contracts import pilots as p
from towntip.kernel.contracts import privacy as pv
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.mypage import EP_PERSON_SUMMARY, ProjectsSummary, SummaryQuery
from towntip.kernel.domain import ANYONE, GATEWAY, GET, POST, SECRETARIAT, SERVICE, STAFF, Domain, read, write
from towntip.kernel.uow import UnitOfWork

MYPAGE = Domain("mypage", refusals=(
    c.PERSON_HANDLE_REQUIRED,
), ops=(
    read(EP_PERSON_SUMMARY, SummaryQuery, ProjectsSummary, people.person_summary, role=GATEWAY),
))

ORGANISATIONS = Domain("organisations", refusals=(
    c.ORG_NOT_FOUND, c.ORG_DEPARTMENT_STAFF_ONLY, c.ORG_NAME_TAKEN, c.ORG_ADMIN_ONLY, c.ORG_ALREADY_MEMBER,
    c.ORG_NOT_MEMBER, c.ORG_LAST_ADMIN,
), ops=(
    write(c.EP_ORG_CREATE, c.OrgCreate, c.Org, organisations.create),
    write(c.EP_ORG_UPDATE, c.OrgUpdate, c.Org, organisations.update_profile),
    read(c.EP_ORG_GET, c.OrgQuery, c.Org, organisations.get, role=ANYONE,
         http=GET("/organisations/{org_id}", "One organisation")),
    read(c.EP_ORG_LIST, c.OrgListQuery, c.OrgList, organisations.list_page, role=ANYONE,
         http=GET("/organisations", "Organisations (companies, departments, groups)")),
    write(c.EP_ORG_MEMBER_ADD, c.MemberAdd, c.Org, organisations.add_member),
    write(c.EP_ORG_MEMBER_REMOVE, c.MemberRemove, c.Org, organisations.remove_member),
))

THEMES = Domain("themes", refusals=(
    c.THEME_NOT_FOUND, c.THEME_MANAGERS_ONLY, c.THEME_STALE, c.THEME_FIELDS_MISSING, c.THEME_ALREADY_PUBLISHED,
    c.THEME_WRONG_PHASE, c.THEME_REQUIREMENTS_MISSING, c.THEME_PHASE_BACKWARDS, c.THEME_PHASE_SKIP,
    c.THEME_PHASE_NOT_READY, c.THEME_HISTORY_STAFF_ONLY, c.DEPARTMENT_NOT_FOUND, c.HEARING_STAFF_ONLY,
    c.HEARING_NOT_FOUND, c.CALL_ALREADY_OPEN, c.CALL_DEADLINE_PASSED, c.CALL_DEADLINE_NOT_FUTURE,
    c.CALL_REQUIREMENTS_FROZEN,
), ops=(
    write(c.EP_HEARING_CREATE, c.HearingCreate, c.Hearing, themes.create_hearing, role=STAFF),
    read(c.EP_HEARING_LIST, c.HearingListQuery, c.HearingList, themes.hearing_page, role=STAFF),
    write(c.EP_THEME_CREATE, c.ThemeCreate, c.Theme, themes.create_theme, role=STAFF,
          http=POST("/themes", "Draft a co-creation theme")),
    write(c.EP_THEME_UPDATE, c.ThemeUpdate, c.Theme, themes.update_theme, role=STAFF),
    write(c.EP_THEME_PUBLISH, c.ThemeAction, c.Theme, themes.publish, role=STAFF),
    write(c.EP_THEME_REQUIREMENTS, c.RequirementsPut, c.Theme, themes.put_requirements, role=STAFF),
    write(c.EP_THEME_CALL_OPEN, c.ThemeAction, c.Theme, themes.open_call, role=STAFF),
    write(c.EP_THEME_ADVANCE, c.PhaseAdvance, c.Theme, themes.advance_phase, role=STAFF),
    read(c.EP_THEME_GET, c.ThemeQuery, c.Theme, themes.get, role=ANYONE,
         http=GET("/themes/{theme_id}", "One co-creation theme")),
    read(c.EP_THEME_LIST, c.ThemeListQuery, c.ThemeList, themes.list_page, role=ANYONE,
         http=GET("/themes", "Co-creation themes")),
    read(c.EP_THEME_HISTORY, c.ThemeQuery, c.History, themes.history, role=STAFF,
         http=GET("/themes/{theme_id}/history", "A theme's history")),
))

MATCHING = Domain("matching", refusals=(
    c.THEME_NOT_FOUND, c.THEME_MANAGERS_ONLY, c.ORG_NOT_FOUND, c.MATCHING_NOT_FOR_YOU,
), ops=(
    read(c.EP_MATCH_COMPANIES, c.ThemeQuery, c.CompanyMatches, matching.companies_for, role=STAFF),
    read(c.EP_MATCH_THEMES, c.OrgMatchQuery, c.ThemeMatches, matching.themes_for,
         http=GET("/organisations/{org_id}/matching-themes", "Themes that fit a company")),
))

BRIEFINGS = Domain("briefings", refusals=(
    c.THEME_NOT_FOUND, c.THEME_MANAGERS_ONLY, c.THEME_WRONG_PHASE, c.BRIEFING_NOT_FOUND, c.BRIEFING_NOT_IN_FUTURE,
    c.BRIEFING_NOT_A_MEMBER, c.BRIEFING_STARTED, c.BRIEFING_ALREADY_REGISTERED, c.BRIEFING_FULL,
    c.BRIEFING_NOT_REGISTERED,
), ops=(
    write(c.EP_BRIEFING_CREATE, c.BriefingCreate, c.Briefing, briefings.create, role=STAFF),
    read(c.EP_BRIEFING_LIST, c.ThemeQuery, c.BriefingList, briefings.list_, role=ANYONE,
         http=GET("/themes/{theme_id}/briefings", "A theme's briefings")),
    write(c.EP_BRIEFING_REGISTER, c.BriefingRegister, c.Briefing, briefings.register,
          http=POST("/briefings/{briefing_id}/registrations", "Register for a briefing")),
    write(c.EP_BRIEFING_CANCEL, c.BriefingCancel, c.Briefing, briefings.cancel),
))

PROPOSALS = Domain("proposals", refusals=(
    c.THEME_NOT_FOUND, c.CALL_NOT_OPEN, c.CALL_DEADLINE_PASSED, c.ORG_NOT_FOUND, c.PROPOSAL_NOT_FOUND,
    c.PROPOSAL_DEPARTMENT_NOT_ALLOWED, c.PROPOSAL_LEAD_AS_PARTNER, c.PROPOSAL_NOT_A_MEMBER,
    c.PROPOSAL_ALREADY_SUBMITTED, c.PROPOSAL_LEAD_ONLY, c.PROPOSAL_WITHDRAWN, c.PROPOSAL_STALE,
    c.PROPOSAL_PARTNER_ONLY, c.PROPOSAL_PARTNER_NOT_FOUND, c.EVALUATION_CLOSED,
), ops=(
    write(c.EP_PROPOSAL_SUBMIT, c.ProposalSubmit, c.Proposal, proposals.submit),
    write(c.EP_PROPOSAL_UPDATE, c.ProposalUpdate, c.Proposal, proposals.update_),
    write(c.EP_PROPOSAL_WITHDRAW, c.ProposalAction, c.Proposal, proposals.withdraw),
    write(c.EP_PROPOSAL_PARTNER, c.PartnerAnswer, c.Proposal, proposals.answer_partner),
    read(c.EP_PROPOSAL_GET, c.ProposalQuery, c.Proposal, proposals.get),
    read(c.EP_PROPOSAL_LIST, c.ProposalListQuery, c.ProposalList, proposals.list_page),
))

EVALUATION = Domain("evaluation", refusals=(
    c.THEME_NOT_FOUND, c.PROPOSAL_NOT_FOUND, c.SECRETARIAT_ONLY, c.EVALUATION_CALL_NOT_OPEN, c.EVALUATION_CLOSED,
    c.EVALUATION_NOT_STARTED, c.EVALUATION_INCOMPLETE, c.EVALUATION_NOT_FOR_YOU, c.EVALUATOR_ALREADY,
    c.EVALUATOR_ONLY, c.REVIEW_MUST_DECLARE_CONFLICT, c.REVIEW_ALREADY_DECLARED, c.REVIEW_DECLARE_FIRST,
    c.REVIEW_CONFLICTED, c.REVIEW_SCORES_INCOMPLETE, c.RESULT_EVALUATION_OPEN, c.RESULT_ALREADY_PUBLISHED,
    c.RESULT_UNKNOWN_PROPOSAL, c.RESULT_PARTNERS_UNCONFIRMED, c.RESULT_WITHDRAWN, c.RESULT_NOT_FOUND,
), ops=(
    write(c.EP_EVALUATOR_APPOINT, c.EvaluatorAppoint, c.EvaluationStatus, evaluation.appoint, role=SECRETARIAT),
    write(c.EP_REVIEW_DECLARE, c.ConflictDeclare, c.MyReviews, evaluation.declare),
    write(c.EP_REVIEW_SCORE, c.ScoreSubmit, c.MyReviews, evaluation.score),
    read(c.EP_REVIEW_MINE, c.ThemeQuery, c.MyReviews, evaluation.mine_),
    read(c.EP_EVALUATION_STATUS, c.ThemeQuery, c.EvaluationStatus, evaluation.status),
    write(c.EP_EVALUATION_CLOSE, c.ThemeAction, c.EvaluationStatus, evaluation.close, role=SECRETARIAT),
    write(c.EP_RESULT_PUBLISH, c.ResultPublish, c.Result, evaluation.publish, role=SECRETARIAT),
    read(c.EP_RESULT_GET, c.ThemeQuery, c.Result, evaluation.result, role=ANYONE,
         http=GET("/themes/{theme_id}/result", "A theme's published result")),
))

PILOTS = Domain("pilots", refusals=(
    c.THEME_NOT_FOUND, c.THEME_WRONG_PHASE, c.PILOT_NOT_FOUND, c.PILOT_MANAGERS_ONLY, c.PILOT_NOT_A_PARTY,
    c.PILOT_ITEM_NOT_FOUND, c.PILOT_COMPLETE, c.PILOT_KPI_NAME_TAKEN, c.PILOT_STALE, c.AGREEMENT_NOT_FOUND,
    c.AGREEMENT_LIMIT, c.AGREEMENT_STALE, c.AGREEMENT_NOT_A_SIGNER, c.AGREEMENT_ALREADY_SIGNED,
), ops=(
    read(p.EP_PILOT_GET, p.PilotQuery, p.Pilot, pilots.workspace),
    write(p.EP_ROLE_PUT, p.RolePut, p.Pilot, pilots.put_role),
    write(p.EP_ROLE_REMOVE, p.RoleRemove, p.Pilot, pilots.remove_role),
    write(p.EP_MILESTONE_PUT, p.MilestonePut, p.Pilot, pilots.put_milestone),
    write(p.EP_MILESTONE_REMOVE, p.MilestoneRemove, p.Pilot, pilots.remove_milestone),
    write(p.EP_MILESTONE_STATUS, p.MilestoneStatusSet, p.Pilot, pilots.set_milestone_status),
    write(p.EP_KPI_PUT, p.KpiPut, p.Pilot, pilots.put_kpi),
    write(p.EP_KPI_REMOVE, p.KpiRemove, p.Pilot, pilots.remove_kpi),
    write(p.EP_PLAN_PUT, p.PlanPut, p.Pilot, pilots.put_plan),
    write(p.EP_AGREEMENT_CREATE, p.AgreementCreate, p.Agreement, pilots.create_agreement),
    write(p.EP_AGREEMENT_REVISE, p.AgreementRevise, p.Agreement, pilots.revise_agreement),
    write(p.EP_AGREEMENT_SIGN, p.AgreementSign, p.Agreement, pilots.sign_agreement),
    read(p.EP_AGREEMENT_GET, p.AgreementQuery, p.Agreement, pilots.get_agreement),
))

OUTCOMES = Domain("outcomes", refusals=(
    c.THEME_NOT_FOUND, c.THEME_WRONG_PHASE, c.PILOT_NOT_FOUND, c.PILOT_MANAGERS_ONLY, c.PILOT_NOT_A_PARTY,
    c.PILOT_ITEM_NOT_FOUND, c.PILOT_COMPLETE, c.DECISION_ALREADY_MADE, c.DECISION_REPORT_MISSING, c.CASE_NOT_FOUND,
    c.CASE_VERSION_NOT_FOUND, c.CASE_STALE, c.CASE_NO_DRAFT, c.CASE_NOT_READY, c.CASE_UNCHANGED,
), ops=(
    write(p.EP_ACTUAL_ADD, p.ActualAdd, p.Pilot, outcomes.add_actual),
    write(p.EP_REPORT_PUT, p.ReportPut, p.Pilot, outcomes.put_report),
    write(p.EP_BUDGET_PUT, p.BudgetPut, p.Pilot, outcomes.put_budget),
    write(p.EP_DECISION_MAKE, p.DecisionMake, p.Pilot, outcomes.decide),
    write(p.EP_CASE_PUT, p.CasePut, p.Case, outcomes.put_case),
    write(p.EP_CASE_PUBLISH, p.CasePublish, p.Case, outcomes.publish_case),
    read(p.EP_CASE_GET, p.CaseQuery, p.Case, outcomes.get_case, role=ANYONE,
         http=GET("/cases/{case_id}", "One published case")),
    read(p.EP_CASE_FOR_THEME, p.PilotQuery, p.Case, outcomes.case_for_theme, role=ANYONE),
    read(p.EP_CASE_LIST, p.CaseListQuery, p.CaseList, outcomes.list_cases, role=ANYONE,
         http=GET("/cases", "Published cases")),
))

INQUIRIES = Domain("inquiries", refusals=(
    c.SECRETARIAT_ONLY, c.INQUIRY_NOT_FOUND,
), ops=(
    write(c.EP_INQUIRY_CREATE, c.InquiryCreate, c.InquiryReceipt, inquiries.create, role=ANYONE),
    read(c.EP_INQUIRY_LIST, c.InquiryListQuery, c.InquiryList, inquiries.list_page, role=SECRETARIAT),
    write(c.EP_INQUIRY_STATUS, c.InquiryStatusSet, c.Inquiry, inquiries.set_status, role=SECRETARIAT),
))

FEDERATION = Domain("federation", refusals=(
    c.THEME_NOT_FOUND, c.THEME_MANAGERS_ONLY, c.DEPARTMENT_NOT_FOUND, c.CASE_NOT_FOUND,
    c.FEDERATION_THEME_NOT_FOUND, c.FEDERATION_CASE_NOT_FOUND, c.FEDERATION_NOT_FOLLOWING,
    c.FEDERATION_THEME_UNPUBLISHED, c.FEDERATION_UNKNOWN_MEMBER, c.FEDERATION_STAFF_ONLY, c.FEDERATION_NOT_INVITED,
    c.FEDERATION_ALREADY_PARTICIPATING,
), ops=(
    read(f.EP_MEMBERS, f.MembersQuery, f.Members, federation.members, role=ANYONE),
    read(f.EP_THEMES_LIST, f.RemoteListQuery, f.RemoteThemeList, federation.list_themes, role=ANYONE),
    read(f.EP_THEMES_GET, f.RemoteQuery, f.RemoteTheme, federation.get_theme, role=ANYONE),
    read(f.EP_CASES_LIST, f.RemoteListQuery, f.RemoteCaseList, federation.list_cases, role=ANYONE),
    read(f.EP_CASES_GET, f.RemoteQuery, f.RemoteCase, federation.get_case, role=ANYONE),
    write(f.EP_FOLLOW, f.FollowIn, f.Followed, federation.follow),
    write(f.EP_UNFOLLOW, f.FollowIn, f.Followed, federation.unfollow),
    read(f.EP_FOLLOWING, f.FollowingQuery, f.FollowingList, federation.following),
    read(f.EP_FOLLOWERS, f.FollowersQuery, f.Followers, federation.followers, role=GATEWAY),
    write(f.EP_ADOPT, f.CaseAdopt, c.Theme, federation.adopt, role=STAFF),
    write(f.EP_WIDE_AREA, f.WideAreaSet, c.Theme, federation.set_wide_area, role=STAFF),
    write(f.EP_PARTICIPATE, f.ParticipationDeclare, f.RemoteTheme, federation.participate, role=STAFF),
    # Asked by the notices service only (a notice to a theme's followers): bus only, the gateway may not.
    read(f.EP_THEME_AUDIENCE, nc.ThemeAudienceQuery, nc.Audience, federation.theme_audience, role=SERVICE),
))

LIKES = Domain("likes", refusals=(lk.LIKE_OWN, lk.LIKE_NOT_FOUND), ops=(
    write(lk.EP_LIKE_GIVE, lk.LikeIn, lk.LikeState, likes.give),
    write(lk.EP_LIKE_WITHDRAW, lk.LikeIn, lk.LikeState, likes.withdraw),
    read(lk.EP_LIKE_COUNTS, lk.LikesQuery, lk.LikeStates, likes.states, role=ANYONE),
    read(lk.EP_LIKES_RECEIVED, lk.ReceivedQuery, lk.Received, likes.received, role=GATEWAY),
))


DOMAINS: tuple[Domain, ...] = (
    MYPAGE, ORGANISATIONS, THEMES, MATCHING, BRIEFINGS, PROPOSALS, EVALUATION, PILOTS, OUTCOMES, INQUIRIES,
    FEDERATION, LIKES)

# Open data: the node's published themes and cases (issue 20 point 8).
OPEN_DATA = Domain("open_data", ops=(
    read(od.EP_OPEN_DATA, od.OpenDataQuery, od.OpenData, open_data.tables, role=ANYONE),
))
DOMAINS += (OPEN_DATA,)

# A person's data (issue 20 point 7): the gateway's export of the person's part (services/projects/privacy.py).
PRIVACY = Domain("privacy", ops=(
    read(pv.EP_PERSON_EXPORT, pv.ExportQuery, pv.PersonData, privacy.export, role=GATEWAY),
))
DOMAINS += (PRIVACY,)


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, public_url: str,
                    on_commit: Callable[[], None], clock: Callable[[], datetime] = utcnow,
                    anchor: str = "") -> Endpoints:
    """`clock` is the service's idea of now (deadlines, briefings' starts): the real time, or a test's clock.
    `anchor`: the federation's trust anchor (entity id), "" without one."""
    uow = UnitOfWork(sessions, on_commit=on_commit, clock=clock)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={"node": node, "public_url": public_url,
                                                             "anchor": anchor})
