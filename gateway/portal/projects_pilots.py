"""The portal's co-creation pages for phase 3 (実証設計: the pilot workspace — parties and the split of roles, the
schedule and its milestones, KPIs with baselines and targets, the versioned pilot plan, agreements with their
versions and sign-off by both sides, and what still stands before phase 4) and phase 4 (成果定着: KPI actuals and
achievement, the report, the budget rationale, the next-year decision, the case study's draft and publication), and
the public case pages (/cases, /cases/{id}). Each page asks the projects service over NATS with the person inside
the request (contracts.pilots); the service decides, and a workspace a person may not read is "not found" here too.
Every form is CSRF-protected (gateway.deps.CsrfForm). Included by gateway.portal.projects.install."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser
from gateway.portal import likes
from gateway.portal import session as ps
from gateway.portal.common import AgainFn, actor_of, add_nav, again_page
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import ask, form_action, page, refusal
from gateway.words import is_stale, words
from towntip.kernel import categories, errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import pilots as pc
from towntip.kernel.contracts import projects as c

router = APIRouter(include_in_schema=False)

add_words({
    "nav_cases": ("事例", "Cases"),
    "pp_pilot": ("実証設計（役割・工程・KPI・計画・協定）", "Pilot design (roles, schedule, KPIs, plan, agreements)"),
    "pp_results": ("成果定着（実績・報告・予算・次年度判断・事例化）",
                   "Results (actuals, report, budget, next year, case study)"),
    "pp_private": (
        "この実証の情報は、担当部局・事務局と実証に参加する企業・団体だけが閲覧できます（事例として公開されるまで）。",
        "Only the owner department, the secretariat and the pilot's companies read this (until a case study is "
        "published)."),
    "pp_parties": ("実証の参加者", "Parties"),
    "pp_side_municipality": ("自治体", "Municipality"),
    "pp_side_company": ("企業・団体", "Company"),
    "pp_has_role": ("役割あり", "Has a role"),
    "pp_no_role": ("役割未設定", "No role yet"),
    "pp_roles": ("役割分担", "Roles and responsibilities"),
    "pp_party": ("参加者", "Party"),
    "pp_role_title": ("役割", "Role"),
    "pp_responsibilities": ("責任・担当範囲", "Responsibilities"),
    "pp_contact": ("連絡先（グローバルID・任意）", "Contact (global ID, optional)"),
    "pp_add_role": ("役割を追加", "Add a role"),
    "pp_no_roles": ("役割はまだありません。", "No role yet."),
    "pp_remove": ("削除", "Remove"),
    "pp_schedule": ("スケジュール（工程・マイルストーン）", "Schedule and milestones"),
    "pp_milestone": ("マイルストーン", "Milestone"),
    "pp_due_on": ("期日", "Due on"),
    "pp_status": ("状態", "Status"),
    "pp_planned": ("予定", "Planned"),
    "pp_done": ("完了", "Done"),
    "pp_mark_done": ("完了にする", "Mark done"),
    "pp_mark_planned": ("予定に戻す", "Back to planned"),
    "pp_add_milestone": ("マイルストーンを追加", "Add a milestone"),
    "pp_no_milestones": ("マイルストーンはまだありません。", "No milestone yet."),
    "pp_kpis": ("KPI（効果測定指標）", "KPIs"),
    "pp_kpi_name": ("指標名", "Name"),
    "pp_unit": ("単位", "Unit"),
    "pp_baseline": ("基準値", "Baseline"),
    "pp_target": ("目標値", "Target"),
    "pp_direction": ("方向", "Direction"),
    "pp_increase": ("増やす", "Increase"),
    "pp_decrease": ("減らす", "Decrease"),
    "pp_method": ("測定方法", "Measurement method"),
    "pp_data_source": ("データの出所", "Data source"),
    "pp_add_kpi": ("KPIを追加", "Add a KPI"),
    "pp_no_kpis": ("KPIはまだありません。", "No KPI yet."),
    "pp_kpis_frozen": ("成果定着フェーズでは、実績を比べるためKPIは変更できません。",
                       "In the results phase the KPIs are frozen: the actuals are measured against them."),
    "pp_plan": ("実証計画書", "Pilot plan"),
    "pp_no_plan": ("実証計画書はまだありません。", "No pilot plan yet."),
    "pp_objective": ("目的", "Objective"),
    "pp_scope": ("範囲", "Scope"),
    "pp_plan_method": ("実施方法", "Method"),
    "pp_period_start": ("実証期間（開始）", "Period (start)"),
    "pp_period_end": ("実証期間（終了）", "Period (end)"),
    "pp_period": ("実証期間", "Period"),
    "pp_budget_yen": ("予算（円）", "Budget (yen)"),
    "pp_risks": ("リスクと対策", "Risks"),
    "pp_data_handling": ("データの取扱い", "Data handling"),
    "pp_save_plan": ("計画書を保存（新しい版）", "Save the plan (a new version)"),
    "pp_versions": ("版の履歴", "Versions"),
    "pp_version": ("版", "Version"),
    "pp_saved_by": ("保存", "Saved"),
    "pp_stale": ("他の人が先に新しい版を保存しました。最新の版を確認してから、もう一度保存してください。",
                 "Someone saved a newer version first. Read the latest version, then save again."),
    "pp_agreements": ("協定・覚書", "Agreements and memoranda"),
    "pp_no_agreements": ("協定・覚書はまだありません。", "No agreement yet."),
    "pp_kind": ("種類", "Kind"),
    "pp_kind_agreement": ("協定書", "Agreement"),
    "pp_kind_memorandum": ("覚書", "Memorandum"),
    "pp_kind_nda": ("秘密保持契約", "Non-disclosure agreement"),
    "pp_title": ("件名", "Title"),
    "pp_body": ("本文", "Text"),
    "pp_new_agreement": ("協定・覚書を作成", "Draft an agreement"),
    "pp_signed": ("全者署名済み", "Signed by every party"),
    "pp_unsigned": ("署名待ち", "Awaiting signatures"),
    "pp_pending": ("未署名の参加者", "Parties yet to sign"),
    "pp_signatures": ("署名", "Signatures"),
    "pp_sign_for": ("署名する：", "Sign for "),
    "pp_signed_by": ("署名者", "Signed by"),
    "pp_void": ("無効（旧版）", "Void (earlier version)"),
    "pp_valid": ("有効", "Valid"),
    "pp_revise": ("新しい版を作成（署名はやり直し）", "New version (signatures start again)"),
    "pp_sign_note": (
        "署名は表示中の版（番号とSHA-256）に対して行われます。新しい版ができると、それまでの署名は無効になります（履歴には残ります）。",
        "A signature is bound to the version shown (its number and SHA-256). A new version voids earlier signatures "
        "(they stay in the history)."),
    "pp_gate": ("成果定着フェーズへ進むために必要なこと", "Before the move to the results phase"),
    "pp_gate_open": ("フェーズ4へ進む準備が整っています。", "Ready for phase 4."),
    "pp_actuals": ("KPIの実績", "KPI actuals"),
    "pp_actual": ("実績値", "Actual"),
    "pp_achievement": ("達成率", "Achievement"),
    "pp_value": ("測定値", "Value"),
    "pp_measured_on": ("測定日", "Measured on"),
    "pp_note": ("メモ", "Note"),
    "pp_source": ("出所", "Source"),
    "pp_add_actual": ("実績を記録", "Record a measurement"),
    "pp_measurements": ("測定の記録", "Measurements"),
    "pp_achievement_help": (
        "達成率 = (実績 − 基準値) ÷ (目標 − 基準値)。減らす指標も同じ式で、目標に近づくほど高くなります。",
        "Achievement = (actual − baseline) ÷ (target − baseline); for a decreasing KPI too, it rises as the actual "
        "nears the target."),
    "pp_report": ("実証報告書", "Pilot report"),
    "pp_no_report": ("報告書はまだありません。", "No report yet."),
    "pp_summary": ("概要", "Summary"),
    "pp_report_results": ("成果", "Results"),
    "pp_issues": ("課題", "Issues found"),
    "pp_lessons": ("教訓・学び", "Lessons"),
    "pp_save_report": ("報告書を保存（新しい版）", "Save the report (a new version)"),
    "pp_budget": ("予算化の根拠", "Budget rationale"),
    "pp_no_budget": ("予算化の根拠はまだありません。", "No budget rationale yet."),
    "pp_actual_cost": ("実証にかかった費用（円）", "Actual cost (yen)"),
    "pp_effects": ("効果", "Effects"),
    "pp_rationale": ("根拠", "Rationale"),
    "pp_requested": ("次年度の要求額（円）", "Requested next-year budget (yen)"),
    "pp_save_budget": ("予算化の根拠を保存", "Save the budget rationale"),
    "pp_decision": ("次年度判断", "Next-year decision"),
    "pp_no_decision": ("次年度判断はまだです。", "No decision yet."),
    "pp_decide": ("判断を確定する（変更できません）", "Record the decision (final)"),
    "pp_reasons": ("理由", "Reasons"),
    "pp_decided": ("判断", "Decided"),
    "pp_complete": ("このテーマは完了しました。", "This theme is complete."),
    "pp_case": ("事例化", "Case study"),
    "pp_case_title": ("事例のタイトル", "Title"),
    "pp_approach": ("取組内容", "Approach"),
    "pp_outcomes": ("成果", "Outcomes"),
    "pp_transferability": ("横展開のポイント", "Transferability"),
    "pp_save_case": ("事例の下書きを保存", "Save the draft"),
    "pp_publish_case": ("事例を公開する", "Publish the case"),
    "pp_republish_case": ("変更を公開する（新しい版）", "Publish the changes (a new version)"),
    "pp_case_missing": ("公開の前に必要なこと", "Before publication"),
    "pp_case_published": ("公開中の事例", "The published case"),
    "pp_case_unpublished": ("下書きに未公開の変更があります。", "The draft has unpublished changes."),
    "pp_cases": ("公民連携の事例", "Co-creation case studies"),
    "pp_cases_intro": ("実証を経て得られた成果と学び、他の部署や自治体への横展開のポイントです。",
                       "What pilots achieved and taught, and what another department or town should know to do the "
                       "same."),
    "pp_no_cases": ("公開された事例はまだありません。", "No case study published yet."),
    "pp_partners": ("共創パートナー", "Partners"),
    "pp_published_at": ("公開日", "Published"),
    "pp_origin": ("地域", "Region"),
    "pp_view_case": ("事例を見る", "Read the case"),
})
add_nav("nav_cases", "/cases", "all", "join")



def num(value: Any) -> str:
    """A decimal as people write it: no exponent, no trailing zeros ("12.5", "10")."""
    if value is None or value == "":
        return "—"
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(d.normalize(), "f")
    return text if text != "-0" else "0"


def missing_words(items: list[pc.Requirement], lang: str) -> list[str]:
    """What the gate to phase 4 or a case's publication still asks for, from the service's codes, in the page's
    language (gateway/words)."""
    return [words(r.code, lang, party=r.party, default=r.code) for r in items]


def _yen(value: Any) -> str:
    return f"{int(value):,}" if value is not None else "—"


def _ppage(request: Request, template: str, *, user: ic.User | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    decisions = pc.DECISIONS_EN if lang == "en" else pc.DECISIONS
    return page(request, template, user=user, status=status, num=num,
                yen=_yen, decisions=decisions, missing=lambda items: missing_words(items, lang), **ctx)


def _saved(request: Request) -> str | None:
    return t("saved", ps.lang(request)) if request.query_params.get("saved") else None


async def _pilot(request: Request, theme_id: str, user: ic.User | None) -> pc.Pilot:
    try:
        q = pc.PilotQuery(theme_id=theme_id, actor=actor_of(user) if user else None)
    except ValidationError:
        raise c.THEME_NOT_FOUND(f"no theme {theme_id}") from None
    return pc.Pilot.model_validate(await ask(request, pc.EP_PILOT_GET, q))




async def _act(request: Request, form: dict[str, Any], user: ic.User,
               make: Callable[[Any, dict[str, Any], Any], tuple[str, Any]], done: str, again: AgainFn) -> Response:
    """A form post (projects_common.form_action), with the stale-version message for a compare-and-set refusal."""
    async def again_stale(request: Request, user: ic.User, status: int, error: str) -> Response:
        if is_stale(getattr(request.state, "refusal_code", None)):  # set by projects_common.form_action
            error = t("pp_stale", ps.lang(request))  # says more than the code's generic "reload the page"
        return await again(request, user, status, error)
    return await form_action(request, form, user, make, done, again_stale)


# ---- what the theme page shows of phases 3 and 4 ---------------------------------------------------------------


async def theme_extras(request: Request, theme: c.Theme, user: ic.User | None) -> dict[str, Any]:
    """For the theme's page (projects.theme_page): whether this person reads the pilot workspace, what still stands
    before phase 4 (next to the "move phase" control), and the published case, if any."""
    out: dict[str, Any] = {"pilot": None, "case": None, "gate": []}
    if theme.phase < 3 or theme.status != "published":
        return out
    if user is not None:
        try:
            out["pilot"] = pilot = await _pilot(request, theme.id, user)
            out["gate"] = missing_words(pilot.missing_for_phase4_codes, ps.lang(request))
        except errors.ServiceError:
            pass  # not a party (404), or the service is busy: the theme's page works without it
    try:
        case = pc.Case.model_validate(await ask(request, pc.EP_CASE_FOR_THEME, pc.PilotQuery(
            theme_id=theme.id, actor=actor_of(user) if user else None)))
        out["case"] = case if case.published is not None else None
    except errors.ServiceError:
        pass
    return out


# ---- phase 3: the pilot workspace ------------------------------------------------------------------------------


async def _pilot_page(request: Request, user: ic.User, theme_id: str, *, status: int = 200,
                      error: str | None = None, form: dict[str, Any] | None = None) -> Response:
    try:
        pilot = await _pilot(request, theme_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    plan_form = form if form is not None else (pilot.plan.model_dump(mode="json") if pilot.plan else {})
    return _ppage(request, "pilot.html", user=user, status=status, error=error, notice=_saved(request), p=pilot,
                  form=plan_form, may_mark=bool(pilot.relation) and not pilot.complete)


@router.get("/themes/{theme_id}/pilot", response_class=HTMLResponse)
async def pilot_page(theme_id: str, request: Request, user: CurrentUser) -> Response:
    return await _pilot_page(request, user, theme_id)



def _done(theme_id: str, anchor: str) -> str:
    return f"/themes/{theme_id}/pilot?saved=1#{anchor}"


@router.post("/themes/{theme_id}/pilot/roles")
async def role_put(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_ROLE_PUT, pc.RolePut(
        actor=actor, theme_id=theme_id, role_id=form.get("role_id") or None, org_id=form.get("org_id", ""),
        title=form.get("title", ""), responsibilities=form.get("responsibilities", ""),
        contact_handle=str(form.get("contact_handle", "")).strip().lower() or None)),
        _done(theme_id, "roles"), again_page(_pilot_page, theme_id))


@router.post("/themes/{theme_id}/pilot/roles/{role_id}/remove")
async def role_remove(theme_id: str, role_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_ROLE_REMOVE, pc.RoleRemove(
        actor=actor, theme_id=theme_id, role_id=role_id)), _done(theme_id, "roles"),
        again_page(_pilot_page, theme_id))


@router.post("/themes/{theme_id}/pilot/milestones")
async def milestone_put(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_MILESTONE_PUT, pc.MilestonePut(
        actor=actor, theme_id=theme_id, milestone_id=form.get("milestone_id") or None, title=form.get("title", ""),
        due_on=form.get("due_on", ""), description=form.get("description", ""))),
        _done(theme_id, "milestones"), again_page(_pilot_page, theme_id))


@router.post("/themes/{theme_id}/pilot/milestones/{milestone_id}/status")
async def milestone_status(theme_id: str, milestone_id: str, request: Request,
                           form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_MILESTONE_STATUS, pc.MilestoneStatusSet(
        actor=actor, theme_id=theme_id, milestone_id=milestone_id, status=form.get("status", ""))),
        _done(theme_id, "milestones"), again_page(_pilot_page, theme_id))


@router.post("/themes/{theme_id}/pilot/milestones/{milestone_id}/remove")
async def milestone_remove(theme_id: str, milestone_id: str, request: Request,
                           form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_MILESTONE_REMOVE, pc.MilestoneRemove(
        actor=actor, theme_id=theme_id, milestone_id=milestone_id)), _done(theme_id, "milestones"),
        again_page(_pilot_page, theme_id))


def _decimal(value: Any) -> str:
    return str(value or "").replace(",", "").strip()


@router.post("/themes/{theme_id}/pilot/kpis")
async def kpi_put(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_KPI_PUT, pc.KpiPut(
        actor=actor, theme_id=theme_id, kpi_id=form.get("kpi_id") or None, name=form.get("name", ""),
        unit=form.get("unit", ""), baseline=_decimal(form.get("baseline")), target=_decimal(form.get("target")),
        direction=form.get("direction", ""), method=form.get("method", ""),
        data_source=form.get("data_source", ""))), _done(theme_id, "kpis"), again_page(_pilot_page, theme_id))


@router.post("/themes/{theme_id}/pilot/kpis/{kpi_id}/remove")
async def kpi_remove(theme_id: str, kpi_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_KPI_REMOVE, pc.KpiRemove(
        actor=actor, theme_id=theme_id, kpi_id=kpi_id)), _done(theme_id, "kpis"),
        again_page(_pilot_page, theme_id))


@router.post("/themes/{theme_id}/pilot/plan")
async def plan_put(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    async def again(request: Request, user: ic.User, status: int, error: str) -> Response:
        form = dict((await request.form()).items())
        form.pop("csrf", None)
        return await _pilot_page(request, user, theme_id, status=status, error=error, form=form)

    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_PLAN_PUT, pc.PlanPut(
        actor=actor, theme_id=theme_id, version=form.get("version") or "0", objective=form.get("objective", ""),
        scope=form.get("scope", ""), method=form.get("method", ""), period_start=form.get("period_start", ""),
        period_end=form.get("period_end", ""), budget_yen=_decimal(form.get("budget_yen")) or "-1",
        risks=form.get("risks", ""), data_handling=form.get("data_handling", ""))), _done(theme_id, "plan"), again)


@router.post("/themes/{theme_id}/pilot/agreements")
async def agreement_create(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_AGREEMENT_CREATE, pc.AgreementCreate(
        actor=actor, theme_id=theme_id, kind=form.get("kind", ""), title=form.get("title", ""),
        body=form.get("body", ""))), _done(theme_id, "agreements"), again_page(_pilot_page, theme_id))


@router.post("/themes/{theme_id}/pilot/advance")
async def pilot_advance(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """The move to phase 4 from the workspace, next to what the gate still asks for; refused: the reason here."""
    return await _act(request, form, user, lambda actor, form, raw: (c.EP_THEME_ADVANCE, c.PhaseAdvance(
        actor=actor, theme_id=theme_id, to_phase=4, note=form.get("note", ""))),
        f"/themes/{theme_id}/results?saved=1", again_page(_pilot_page, theme_id))


# ---- agreements ----------------------------------------------------------------------------------------------------


async def _agreement_page(request: Request, user: ic.User, theme_id: str, agreement_id: str, *, status: int = 200,
                          error: str | None = None) -> Response:
    try:
        try:
            q = pc.AgreementQuery(actor=actor_of(user), theme_id=theme_id, agreement_id=agreement_id)
        except ValidationError:
            raise c.AGREEMENT_NOT_FOUND(f"no agreement {agreement_id}") from None
        a = pc.Agreement.model_validate(await ask(request, pc.EP_AGREEMENT_GET, q))
        pilot = await _pilot(request, theme_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=(f"/themes/{theme_id}/pilot", t("pp_pilot", ps.lang(request))))
    names = {x.org_id: x.org_name for x in pilot.parties}
    return _ppage(request, "agreement.html", user=user, status=status, error=error, notice=_saved(request), a=a,
                  p=pilot, names=names)


@router.get("/themes/{theme_id}/agreements/{agreement_id}", response_class=HTMLResponse)
async def agreement_page(theme_id: str, agreement_id: str, request: Request, user: CurrentUser) -> Response:
    return await _agreement_page(request, user, theme_id, agreement_id)



@router.post("/themes/{theme_id}/agreements/{agreement_id}/sign")
async def agreement_sign(theme_id: str, agreement_id: str, request: Request,
                         form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_AGREEMENT_SIGN, pc.AgreementSign(
        actor=actor, theme_id=theme_id, agreement_id=agreement_id, org_id=form.get("org_id", ""),
        version=form.get("version") or "0", sha256=form.get("sha256", ""))),
        f"/themes/{theme_id}/agreements/{agreement_id}?saved=1",
        again_page(_agreement_page, theme_id, agreement_id))


@router.post("/themes/{theme_id}/agreements/{agreement_id}/revise")
async def agreement_revise(theme_id: str, agreement_id: str, request: Request,
                           form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_AGREEMENT_REVISE, pc.AgreementRevise(
        actor=actor, theme_id=theme_id, agreement_id=agreement_id, version=form.get("version") or "0",
        title=form.get("title", ""), body=form.get("body", ""))),
        f"/themes/{theme_id}/agreements/{agreement_id}?saved=1",
        again_page(_agreement_page, theme_id, agreement_id))


# ---- phase 4: results ----------------------------------------------------------------------------------------------


async def _results_page(request: Request, user: ic.User, theme_id: str, *, status: int = 200,
                        error: str | None = None) -> Response:
    try:
        pilot = await _pilot(request, theme_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    case = None
    if pilot.may_manage or pilot.case_published_version:
        try:
            case = pc.Case.model_validate(await ask(request, pc.EP_CASE_FOR_THEME, pc.PilotQuery(
                theme_id=theme_id, actor=actor_of(user))))
        except errors.NotFound:
            pass  # no draft yet
        except errors.ServiceError as exc:
            return refusal(request, exc, user)
    draft = case.draft if case else None
    case_form = draft.model_dump(mode="json") if draft else {}
    chosen = list(draft.fields) if draft else list(pilot.fields)
    return _ppage(request, "results.html", user=user, status=status, error=error, notice=_saved(request), p=pilot,
                  case=case, case_form=case_form, chosen=chosen,
                  may_record=bool(pilot.relation) and pilot.phase == 4 and not pilot.complete)


@router.get("/themes/{theme_id}/results", response_class=HTMLResponse)
async def results_page(theme_id: str, request: Request, user: CurrentUser) -> Response:
    return await _results_page(request, user, theme_id)



def _rdone(theme_id: str, anchor: str) -> str:
    return f"/themes/{theme_id}/results?saved=1#{anchor}"


@router.post("/themes/{theme_id}/results/actuals")
async def actual_add(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_ACTUAL_ADD, pc.ActualAdd(
        actor=actor, theme_id=theme_id, kpi_id=form.get("kpi_id", ""), value=_decimal(form.get("value")),
        measured_on=form.get("measured_on", ""), note=form.get("note", ""), source=form.get("source", ""))),
        _rdone(theme_id, "actuals"), again_page(_results_page, theme_id))


@router.post("/themes/{theme_id}/results/report")
async def report_put(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_REPORT_PUT, pc.ReportPut(
        actor=actor, theme_id=theme_id, version=form.get("version") or "0", summary=form.get("summary", ""),
        results=form.get("results", ""), issues=form.get("issues", ""), lessons=form.get("lessons", ""))),
        _rdone(theme_id, "report"), again_page(_results_page, theme_id))


@router.post("/themes/{theme_id}/results/budget")
async def budget_put(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_BUDGET_PUT, pc.BudgetPut(
        actor=actor, theme_id=theme_id, version=form.get("version") or "0",
        actual_cost_yen=_decimal(form.get("actual_cost_yen")) or "-1", effects=form.get("effects", ""),
        rationale=form.get("rationale", ""),
        requested_budget_yen=_decimal(form.get("requested_budget_yen")) or "-1")),
        _rdone(theme_id, "budget"), again_page(_results_page, theme_id))


@router.post("/themes/{theme_id}/results/decision")
async def decision_make(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_DECISION_MAKE, pc.DecisionMake(
        actor=actor, theme_id=theme_id, decision=form.get("decision", ""), reasons=form.get("reasons", ""))),
        _rdone(theme_id, "decision"), again_page(_results_page, theme_id))


@router.post("/themes/{theme_id}/results/case")
async def case_put(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_CASE_PUT, pc.CasePut(
        actor=actor, theme_id=theme_id, draft_revision=form.get("draft_revision") or "0",
        title=form.get("title", ""), summary=form.get("summary", ""), approach=form.get("approach", ""),
        outcomes=form.get("outcomes", ""), lessons=form.get("lessons", ""),
        transferability=form.get("transferability", ""), fields=raw.getlist("fields") or None)),
        _rdone(theme_id, "case"), again_page(_results_page, theme_id))


@router.post("/themes/{theme_id}/results/case/publish")
async def case_publish(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, form, user, lambda actor, form, raw: (pc.EP_CASE_PUBLISH, pc.CasePublish(
        actor=actor, theme_id=theme_id, note=form.get("note", ""))), _rdone(theme_id, "case"),
        again_page(_results_page, theme_id))


# ---- public cases --------------------------------------------------------------------------------------------------


@router.get("/cases", response_class=HTMLResponse)
async def cases_page(request: Request, user: OptionalUser) -> Response:
    field = request.query_params.get("field") or None
    if field is not None and field not in categories.codes():
        field = None
    try:
        found = pc.CaseList.model_validate(await ask(request, pc.EP_CASE_LIST, pc.CaseListQuery(field=field)))
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=("/", t("home", ps.lang(request))))
    return _ppage(request, "cases.html", user=user, cases=found.cases, field=field or "")


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(case_id: str, request: Request, user: OptionalUser) -> Response:
    version = request.query_params.get("version")
    try:
        try:
            q = pc.CaseQuery(case_id=case_id, actor=actor_of(user) if user else None,
                             version=int(version) if version and version.isdigit() else None)
        except ValidationError:
            raise c.CASE_NOT_FOUND(f"no case {case_id}") from None
        case = pc.Case.model_validate(await ask(request, pc.EP_CASE_GET, q))
        if case.published is None:
            raise c.CASE_NOT_FOUND(f"no case {case_id}")
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=("/cases", t("pp_cases", ps.lang(request))))
    return _ppage(request, "case.html", user=user, case=case, pub=case.published,
                  likes=await likes.state(request, c.SERVICE, "case", case.id, user))


@router.post("/cases/{case_id}/like")
async def case_like(case_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """共感 on a published case (or withdrawn: `undo`)."""
    return await likes.press(request, form, user, service=c.SERVICE, kind="case", item=case_id,
                             back=f"/cases/{quote(case_id, safe='')}")

