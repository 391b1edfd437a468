"""The portal's co-creation pages for phase 2 (対話形成): the companies that fit a theme (and the themes that fit a
company), briefings (説明会) and their registrations, the open call's proposals (single companies or consortia, the
form, editing, withdrawal, the partners' confirmation), the evaluators' page (declare conflicts, score), the
secretariat's selection page (appoint evaluators, progress, close, publish the result with reasons) and the public
result. Each page asks the projects service over NATS with the person inside the request; the service decides, and
a proposal that a person may not read is "not found" here too. Every form is CSRF-protected (gateway.deps.CsrfForm).
Included by gateway.portal.projects.install."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, again_page, bad_status, why
from gateway.portal.i18n import add_words, t
from gateway.portal.pages import JST
from gateway.portal.projects_common import ask, form_action, form_lists, get_theme, page, refusal
from towntip.kernel import errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import projects as c

router = APIRouter(include_in_schema=False)
ATTACHMENT_ROWS = 3

add_words({
    "pc_partners": ("対話形成（説明会・公募・選定）", "Partner formation (briefings, call, selection)"),
    "pc_briefings": ("説明会", "Briefings"),
    "pc_no_briefings": ("説明会の予定はまだありません。", "No briefing scheduled yet."),
    "pc_new_briefing": ("説明会を登録", "Schedule a briefing"),
    "pc_briefing_title": ("名称", "Title"),
    "pc_starts": ("開始（日本時間）", "Starts (Japan time)"),
    "pc_ends": ("終了（日本時間）", "Ends (Japan time)"),
    "pc_venue": ("会場", "Venue"),
    "pc_online": ("オンライン", "Online"),
    "pc_online_url": ("オンライン参加URL", "Online address"),
    "pc_online_after": ("参加URLは申込後に表示されます", "The address is shown once you register"),
    "pc_capacity": ("定員", "Capacity"),
    "pc_seats_left": ("残席", "Seats left"),
    "pc_full": ("満席", "Full"),
    "pc_register": ("申し込む", "Register"),
    "pc_register_for": ("参加する企業・団体", "Attending for"),
    "pc_registered": ("申込済み", "Registered"),
    "pc_cancel": ("申込を取り消す", "Cancel my registration"),
    "pc_registrations": ("申込者", "Registrations"),
    "pc_need_company": ("申し込むには、企業・団体のメンバーとしてログインしてください。",
                        "Log in as a member of a company or organisation to register."),
    "pc_call": ("公募", "Open call"),
    "pc_call_not_open": ("公募はまだ始まっていません。", "The call has not opened yet."),
    "pc_call_closed": ("公募は締め切られました。", "The call is closed."),
    "pc_submit_proposal": ("提案を提出する", "Submit a proposal"),
    "pc_my_proposals": ("自社の提案", "My organisations' proposals"),
    "pc_proposals": ("提案一覧", "Proposals"),
    "pc_no_proposals": ("提案はありません。", "No proposals."),
    "pc_confidential": ("提案内容は、提案者・評価委員・担当部局・事務局だけが閲覧できます（結果公表後も同じ）。",
                        "A proposal is read only by its authors, the evaluators, the owner department and the "
                        "secretariat (also after the result)."),
    "pc_lead": ("代表企業・団体", "Lead organisation"),
    "pc_partner_orgs": ("共同提案者（コンソーシアム）", "Partner organisations (consortium)"),
    "pc_partner_pending": ("確認待ち", "Awaiting confirmation"),
    "pc_partner_confirmed": ("参加確認済み", "Confirmed"),
    "pc_partner_declined": ("不参加", "Declined"),
    "pc_confirm": ("参加を確認する", "Confirm our participation"),
    "pc_decline": ("参加しない", "Decline"),
    "pc_summary": ("概要", "Summary"),
    "pc_plan": ("実施計画", "Plan"),
    "pc_budget": ("予算（円）", "Budget (yen)"),
    "pc_attachments": ("添付（URLまたはテキスト）", "Attachments (address or text)"),
    "pc_att_label": ("資料名", "Label"),
    "pc_att_url": ("URL", "Address"),
    "pc_att_text": ("テキスト", "Text"),
    "pc_withdraw": ("提案を取り下げる", "Withdraw the proposal"),
    "pc_withdrawn": ("取り下げ済み", "Withdrawn"),
    "pc_submitted": ("提出済み", "Submitted"),
    "pc_version": ("版", "Version"),
    "pc_editable_until": ("締切まで編集できます", "Editable until the deadline"),
    "pc_no_company": ("提案するには、まず企業・団体を登録してください。",
                      "Register your company or organisation first."),
    "pc_matching": ("テーマに適合する企業・団体", "Companies that fit the theme"),
    "pc_matching_words": ("企業連携ポイントの語", "Words of the company points"),
    "pc_score": ("適合度", "Fit"),
    "pc_shared_fields": ("共通の分野", "Shared fields"),
    "pc_found_words": ("専門性に含まれる語", "Words in the expertise"),
    "pc_no_matches": ("適合する企業・団体はまだありません。", "No company fits yet."),
    "pc_fitting_themes": ("適合する共創テーマ", "Themes that fit"),
    "pc_evaluate": ("評価（評価委員）", "Evaluation (evaluators)"),
    "pc_eval_intro": (
        "各提案について、まず利益相反の有無を申告してください（申告は変更できません）。利益相反がある提案は採点しません。採点は締切後から選定締めまで変更できます。他の委員の採点は見えません。",
        "For each proposal, first declare whether you have a conflict of interest (final). You do not score a proposal "
        "you are conflicted on. Scores can be changed after the deadline until the evaluation closes. Nobody sees "
        "another evaluator's scores."),
    "pc_eval_not_yet": ("評価は公募締切後に始まります。", "The evaluation starts when the call's deadline has passed."),
    "pc_eval_closed": ("選定は締め切られました。", "The evaluation is closed."),
    "pc_conflict_q": ("利益相反", "Conflict of interest"),
    "pc_conflict_no": ("なし", "None"),
    "pc_conflict_yes": ("あり", "Yes"),
    "pc_conflict_reason": ("内容（ありの場合）", "What it is (if any)"),
    "pc_declare": ("申告する", "Declare"),
    "pc_conflicted": ("利益相反あり（採点対象外）", "Conflicted (not scored)"),
    "pc_comment": ("講評", "Comment"),
    "pc_save_scores": ("採点を保存", "Save the scores"),
    "pc_scored": ("採点済み", "Scored"),
    "pc_read_proposal": ("提案を読む", "Read the proposal"),
    "pc_selection": ("選定（事務局）", "Selection (secretariat)"),
    "pc_evaluators": ("評価委員", "Evaluators"),
    "pc_appoint": ("評価委員を任命", "Appoint an evaluator"),
    "pc_progress": ("評価の進捗", "Progress"),
    "pc_state_undeclared": ("未申告", "Not declared"),
    "pc_state_conflicted": ("利益相反", "Conflicted"),
    "pc_state_to_score": ("未採点", "To score"),
    "pc_state_scored": ("採点済", "Scored"),
    "pc_missing": ("選定を締めるまでに必要なこと", "Before the evaluation can close"),
    "pc_close": ("評価を締め、順位を確定する", "Close the evaluation and fix the ranking"),
    "pc_ranking": ("順位", "Ranking"),
    "pc_rank": ("順位", "Rank"),
    "pc_total": ("合計（加重平均）", "Total (weighted average)"),
    "pc_counted": ("採点者数", "Evaluators counted"),
    "pc_publish": ("結果を公表する", "Publish the result"),
    "pc_select": ("実証候補に選定", "Select as pilot candidate"),
    "pc_reasons": ("選定理由", "Reasons"),
    "pc_result": ("選定結果", "Result"),
    "pc_no_result": ("選定結果はまだ公表されていません。", "No result has been published yet."),
    "pc_pilot_candidates": ("実証候補", "Pilot candidates"),
    "pc_none_selected": ("実証候補はありません。", "No pilot candidate."),
    "pc_averages": ("評価項目ごとの平均点（匿名）", "Averages per criterion (anonymised)"),
    "pc_scale": ("各項目 0〜5 点", "Each criterion 0-5"),
    "pc_selected": ("選定", "Selected"),
    "pc_result_closed": ("順位は確定しました（未公表）。", "The ranking is fixed (not published yet)."),
})


def _jst_input(value: str) -> str:
    """A datetime-local value (Japan time) as an aware ISO time; the contract checks the rest."""
    try:
        return datetime.fromisoformat(value).replace(tzinfo=JST).isoformat() if value else ""
    except ValueError:
        return value


async def _my_companies(request: Request, user: ic.User | None) -> list[c.Org]:
    if user is None:
        return []
    found = c.OrgList.model_validate(await ask(request, c.EP_ORG_LIST, c.OrgListQuery(
        kind="company", member=actor_of(user))))
    return found.orgs


# ---- the theme's phase 2 page: briefings, the call, links ------------------------------------------------------


async def _partners_page(request: Request, user: ic.User | None, theme_id: str, *, status: int = 200,
                         error: str | None = None) -> Response:
    actor = actor_of(user) if user else None
    try:
        theme = await get_theme(request, theme_id, user)
        brs = c.BriefingList.model_validate(await ask(request, c.EP_BRIEFING_LIST, c.ThemeQuery(
            theme_id=theme_id, actor=actor)))
        mine = await _my_companies(request, user)
        props: list[c.Proposal] = []
        if actor is not None:
            props = c.ProposalList.model_validate(await ask(request, c.EP_PROPOSAL_LIST, c.ProposalListQuery(
                actor=actor, theme_id=theme_id))).proposals
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    result = None
    try:
        result = c.Result.model_validate(await ask(request, c.EP_RESULT_GET, c.ThemeQuery(
            theme_id=theme_id, actor=actor)))
    except errors.NotFound:
        pass
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    r = theme.requirements
    # Whether the deadline has passed is the service's to say (its clock): the form answers with its reason.
    call_open = bool(r and r.call_opened_at and theme.phase == 2)
    own = [p for p in props if {"lead", "partner"} & set(p.relation)]
    evaluator = any("evaluator" in p.relation for p in props)
    notice = t("saved", ps.lang(request)) if request.query_params.get("saved") else None
    return page(request, "calls.html", user=user, status=status, error=error, notice=notice, theme=theme,
                briefings=brs.briefings, may_manage=brs.may_manage, companies=mine, own=own, evaluator=evaluator,
                call_open=call_open, result=result, secretariat=bool(user and "secretariat" in user.roles))


@router.get("/themes/{theme_id}/partners", response_class=HTMLResponse)
async def partners_page(theme_id: str, request: Request, user: OptionalUser) -> Response:
    return await _partners_page(request, user, theme_id)



@router.post("/themes/{theme_id}/briefings")
async def briefing_create(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_BRIEFING_CREATE, c.BriefingCreate(
        actor=actor, theme_id=theme_id, title=form.get("title", ""),
        starts_at=_jst_input(str(form.get("starts_at", ""))), ends_at=_jst_input(str(form.get("ends_at", ""))),
        venue=form.get("venue", ""), online_url=form.get("online_url", ""), capacity=form.get("capacity") or "0")),
        f"/themes/{theme_id}/partners?saved=1", again_page(_partners_page, theme_id))


@router.post("/themes/{theme_id}/briefings/{briefing_id}/register")
async def briefing_register(theme_id: str, briefing_id: str, request: Request,
                            form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_BRIEFING_REGISTER, c.BriefingRegister(
        actor=actor, briefing_id=briefing_id, org_id=form.get("org_id", ""))),
        f"/themes/{theme_id}/partners?saved=1", again_page(_partners_page, theme_id))


@router.post("/themes/{theme_id}/briefings/{briefing_id}/cancel")
async def briefing_cancel(theme_id: str, briefing_id: str, request: Request,
                          form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_BRIEFING_CANCEL, c.BriefingCancel(
        actor=actor, briefing_id=briefing_id)), f"/themes/{theme_id}/partners?saved=1",
        again_page(_partners_page, theme_id))


# ---- matching ------------------------------------------------------------------------------------------------------


@router.get("/themes/{theme_id}/matching", response_class=HTMLResponse)
async def matching_page(theme_id: str, request: Request, user: CurrentUser) -> Response:
    try:
        theme = await get_theme(request, theme_id, user)
        found = c.CompanyMatches.model_validate(await ask(request, c.EP_MATCH_COMPANIES, c.ThemeQuery(
            theme_id=theme_id, actor=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "matching.html", user=user, theme=theme, found=found)


@router.get("/orgs/{org_id}/themes", response_class=HTMLResponse)
async def org_themes_page(org_id: str, request: Request, user: CurrentUser) -> Response:
    try:
        q = c.OrgMatchQuery(actor=actor_of(user), org_id=org_id)
    except ValidationError:
        return refusal(request, c.ORG_NOT_FOUND(f"no organisation {org_id}"), user)
    try:
        org = c.Org.model_validate(await ask(request, c.EP_ORG_GET, c.OrgQuery(org_id=org_id,
                                                                               actor=actor_of(user))))
        found = c.ThemeMatches.model_validate(await ask(request, c.EP_MATCH_THEMES, q))
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=("/orgs", t("pj_orgs", ps.lang(request))))
    return page(request, "org_themes.html", user=user, org=org, found=found)


# ---- proposals -----------------------------------------------------------------------------------------------------


def _proposal_content(form: dict[str, Any], raw: Any) -> dict[str, Any]:
    attachments = []
    for i in range(1, ATTACHMENT_ROWS + 1):
        label, url, text = (str(form.get(f"att_{k}_{i}", "")).strip() for k in ("label", "url", "text"))
        if label or url or text:
            attachments.append({"label": label, "url": url, "text": text})
    budget = str(form.get("budget_yen", "")).replace(",", "").strip()
    return {"title": form.get("title", ""), "summary": form.get("summary", ""), "plan": form.get("plan", ""),
            "budget_yen": budget or "-1", "attachments": attachments,
            "partner_org_ids": raw.getlist("partner_org_ids")}


def _proposal_form(p: c.Proposal) -> dict[str, Any]:
    out: dict[str, Any] = {"title": p.title, "summary": p.summary, "plan": p.plan, "budget_yen": str(p.budget_yen),
                           "version": p.version, "lead_org_id": p.lead_org_id}
    for i, a in enumerate(p.attachments, start=1):
        out |= {f"att_label_{i}": a.label, f"att_url_{i}": a.url, f"att_text_{i}": a.text}
    return out


async def _proposal_form_page(request: Request, user: ic.User, theme_id: str, *, proposal: c.Proposal | None = None,
                              form: dict[str, Any] | None = None, chosen: list[str] | None = None,
                              status: int = 200, error: str | None = None) -> Response:
    try:
        theme = await get_theme(request, theme_id, user)
        mine = await _my_companies(request, user)
        all_companies = c.OrgList.model_validate(await ask(request, c.EP_ORG_LIST, c.OrgListQuery(
            kind="company"))).orgs
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    if proposal is not None:
        form = form or _proposal_form(proposal)
        chosen = chosen if chosen is not None else [p.org_id for p in proposal.partners]
    return page(request, "proposal_form.html", user=user, status=status, error=error, theme=theme,
                proposal=proposal, companies=mine, all_companies=all_companies, form=form or {},
                chosen=chosen or [], rows=range(1, ATTACHMENT_ROWS + 1))


@router.get("/themes/{theme_id}/proposals/new", response_class=HTMLResponse)
async def proposal_new_page(theme_id: str, request: Request, user: CurrentUser) -> Response:
    return await _proposal_form_page(request, user, theme_id)


@router.post("/themes/{theme_id}/proposals/new")
async def proposal_submit(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    raw = await form_lists(request)
    content = _proposal_content(form, raw)
    try:
        data = c.ProposalSubmit(actor=actor_of(user), theme_id=theme_id, lead_org_id=form.get("lead_org_id", ""),
                                **content)
        made = c.Proposal.model_validate(await ask(request, c.EP_PROPOSAL_SUBMIT, data))
    except (ValidationError, errors.ServiceError) as exc:
        return await _proposal_form_page(request, user, theme_id, form=form, chosen=content["partner_org_ids"],
                                         status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/proposals/{made.id}?saved=1", status_code=303)


async def _proposal(request: Request, proposal_id: str, user: ic.User) -> c.Proposal:
    try:
        q = c.ProposalQuery(actor=actor_of(user), proposal_id=proposal_id)
    except ValidationError:
        raise c.PROPOSAL_NOT_FOUND(f"no proposal {proposal_id}") from None
    return c.Proposal.model_validate(await ask(request, c.EP_PROPOSAL_GET, q))


async def _proposal_page(request: Request, user: ic.User, proposal_id: str, *, status: int = 200,
                         error: str | None = None) -> Response:
    try:
        p = await _proposal(request, proposal_id, user)
        mine = {o.id for o in await _my_companies(request, user)}
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    notice = t("saved", ps.lang(request)) if request.query_params.get("saved") else None
    return page(request, "proposal.html", user=user, status=status, error=error, notice=notice, p=p,
                my_partner_orgs=[x for x in p.partners if x.org_id in mine])


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
async def proposal_page(proposal_id: str, request: Request, user: CurrentUser) -> Response:
    return await _proposal_page(request, user, proposal_id)



@router.get("/proposals/{proposal_id}/edit", response_class=HTMLResponse)
async def proposal_edit_page(proposal_id: str, request: Request, user: CurrentUser) -> Response:
    try:
        p = await _proposal(request, proposal_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return await _proposal_form_page(request, user, p.theme_id, proposal=p)


@router.post("/proposals/{proposal_id}/edit")
async def proposal_edit(proposal_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    raw = await form_lists(request)
    content = _proposal_content(form, raw)
    try:
        p = await _proposal(request, proposal_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    try:
        data = c.ProposalUpdate(actor=actor_of(user), proposal_id=proposal_id, version=form.get("version", "0"),
                                **content)
        await ask(request, c.EP_PROPOSAL_UPDATE, data)
    except (ValidationError, errors.ServiceError) as exc:
        return await _proposal_form_page(request, user, p.theme_id, proposal=p, form=form,
                                         chosen=content["partner_org_ids"], status=bad_status(exc),
                                         error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/proposals/{proposal_id}?saved=1", status_code=303)


@router.post("/proposals/{proposal_id}/withdraw")
async def proposal_withdraw(proposal_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_PROPOSAL_WITHDRAW, c.ProposalAction(
        actor=actor, proposal_id=proposal_id, note=form.get("note", ""))), f"/proposals/{proposal_id}?saved=1",
        again_page(_proposal_page, proposal_id))


@router.post("/proposals/{proposal_id}/partner")
async def proposal_partner(proposal_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_PROPOSAL_PARTNER, c.PartnerAnswer(
        actor=actor, proposal_id=proposal_id, org_id=form.get("org_id", ""), decision=form.get("decision", ""))),
        f"/proposals/{proposal_id}?saved=1", again_page(_proposal_page, proposal_id))


@router.get("/themes/{theme_id}/proposals", response_class=HTMLResponse)
async def proposals_page(theme_id: str, request: Request, user: CurrentUser) -> Response:
    try:
        theme = await get_theme(request, theme_id, user)
        found = c.ProposalList.model_validate(await ask(request, c.EP_PROPOSAL_LIST, c.ProposalListQuery(
            actor=actor_of(user), theme_id=theme_id)))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "proposals.html", user=user, theme=theme, proposals=found.proposals)


# ---- evaluation ----------------------------------------------------------------------------------------------------


async def _evaluate_page(request: Request, user: ic.User, theme_id: str, *, status: int = 200,
                         error: str | None = None) -> Response:
    try:
        theme = await get_theme(request, theme_id, user)
        mine = c.MyReviews.model_validate(await ask(request, c.EP_REVIEW_MINE, c.ThemeQuery(
            theme_id=theme_id, actor=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    notice = t("saved", ps.lang(request)) if request.query_params.get("saved") else None
    return page(request, "evaluate.html", user=user, status=status, error=error, notice=notice, theme=theme,
                mine=mine, scale=range(c.SCORE_MAX, -1, -1))


@router.get("/themes/{theme_id}/evaluate", response_class=HTMLResponse)
async def evaluate_page(theme_id: str, request: Request, user: CurrentUser) -> Response:
    return await _evaluate_page(request, user, theme_id)



@router.post("/themes/{theme_id}/evaluate/{proposal_id}/declare")
async def evaluate_declare(theme_id: str, proposal_id: str, request: Request,
                           form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_REVIEW_DECLARE, c.ConflictDeclare(
        actor=actor, proposal_id=proposal_id, conflicted=form.get("conflicted") == "yes",
        reason=form.get("reason", ""))), f"/themes/{theme_id}/evaluate?saved=1#p-{proposal_id}",
        again_page(_evaluate_page, theme_id))


@router.post("/themes/{theme_id}/evaluate/{proposal_id}/score")
async def evaluate_score(theme_id: str, proposal_id: str, request: Request,
                         form: CsrfForm, user: CurrentUser) -> Response:
    def make(actor: Any, form: dict[str, Any], raw: Any) -> tuple[str, Any]:
        scores = {k[len("score_"):]: v for k, v in form.items() if k.startswith("score_") and v != ""}
        return c.EP_REVIEW_SCORE, c.ScoreSubmit(actor=actor, proposal_id=proposal_id, scores=scores,
                                                comment=form.get("comment", ""))
    return await form_action(request, form, user, make, f"/themes/{theme_id}/evaluate?saved=1#p-{proposal_id}",
                             again_page(_evaluate_page, theme_id))


# ---- the secretariat's selection, and the public result --------------------------------------------------------


async def _selection_page(request: Request, user: ic.User, theme_id: str, *, status: int = 200,
                          error: str | None = None) -> Response:
    try:
        theme = await get_theme(request, theme_id, user)
        st = c.EvaluationStatus.model_validate(await ask(request, c.EP_EVALUATION_STATUS, c.ThemeQuery(
            theme_id=theme_id, actor=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    cells = {(x.evaluator, x.proposal_id): x.state for x in st.progress}
    notice = t("saved", ps.lang(request)) if request.query_params.get("saved") else None
    return page(request, "selection.html", user=user, status=status, error=error, notice=notice, theme=theme,
                st=st, cells=cells, secretariat="secretariat" in user.roles)


@router.get("/themes/{theme_id}/selection", response_class=HTMLResponse)
async def selection_page(theme_id: str, request: Request, user: CurrentUser) -> Response:
    return await _selection_page(request, user, theme_id)



@router.post("/themes/{theme_id}/selection/evaluators")
async def selection_appoint(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_EVALUATOR_APPOINT, c.EvaluatorAppoint(
        actor=actor, theme_id=theme_id, global_handle=str(form.get("global_handle", "")).strip().lower())),
        f"/themes/{theme_id}/selection?saved=1", again_page(_selection_page, theme_id))


@router.post("/themes/{theme_id}/selection/close")
async def selection_close(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_EVALUATION_CLOSE, c.ThemeAction(
        actor=actor, theme_id=theme_id, note=form.get("note", ""))), f"/themes/{theme_id}/selection?saved=1",
        again_page(_selection_page, theme_id))


@router.post("/themes/{theme_id}/selection/publish")
async def selection_publish(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await form_action(request, form, user, lambda actor, form, raw: (c.EP_RESULT_PUBLISH, c.ResultPublish(
        actor=actor, theme_id=theme_id, selected=raw.getlist("selected"), reasons=form.get("reasons", ""))),
        f"/themes/{theme_id}/result", again_page(_selection_page, theme_id))


@router.get("/themes/{theme_id}/result", response_class=HTMLResponse)
async def result_page(theme_id: str, request: Request, user: OptionalUser) -> Response:
    try:
        theme = await get_theme(request, theme_id, user)
        result = c.Result.model_validate(await ask(request, c.EP_RESULT_GET, c.ThemeQuery(
            theme_id=theme_id, actor=actor_of(user) if user else None)))
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=(f"/themes/{theme_id}", t("pj_themes", ps.lang(request))))
    return page(request, "result.html", user=user, theme=theme, result=result)
