"""The portal's federation pages: other municipalities' themes and cases (他の自治体のテーマ・事例, read-only
copies with a link to the original), following them, a staff member's new draft theme started from a case (横展開),
and wide-area themes (広域連携): the owner invites member municipalities, an invited town's staff declare
participation. Every change goes to the projects service, which decides who may; every form is CSRF-protected."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser, ThemeOwner
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, error_status, why
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import (
    ask,
    form_lists,
    is_internal,
    managed_theme,
    my_departments,
    page,
    refusal,
)
from towntip.kernel import categories, errors
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import projects as c

router = APIRouter(include_in_schema=False)

add_words({
    "nav_federation": ("他の自治体", "Other towns"),
    "fd_themes": ("他の自治体のテーマ", "Other municipalities' themes"),
    "fd_cases": ("他の自治体の事例", "Other municipalities' cases"),
    "fd_intro": (
        "連携する自治体が公開した共創テーマと事例です（閲覧のみ。元の自治体のページで最新情報を確認できます）。",
        "Co-creation themes and cases published by the member municipalities (read-only here; the "
        "original page at their town has the latest)."),
    "fd_no_themes": ("まだ届いたテーマはありません。", "No theme has arrived yet."),
    "fd_no_cases": ("まだ届いた事例はありません。", "No case has arrived yet."),
    "fd_origin": ("自治体", "Municipality"),
    "fd_original": ("元のページを開く", "Open the original page"),
    "fd_read_only": ("他の自治体のテーマです。ここでは編集できません。",
                     "Another municipality's theme: read-only here."),
    "fd_follow": ("フォローする", "Follow"),
    "fd_unfollow": ("フォローをやめる", "Unfollow"),
    "fd_following": ("フォロー中", "Following"),
    "fd_my_follows": ("フォローしているテーマ・事例", "Themes and cases I follow"),
    "fd_none_followed": ("まだフォローしていません。", "You follow nothing yet."),
    "fd_changed": ("更新あり", "Updated"),
    "fd_unchanged": ("変更なし", "No change"),
    "fd_seen": ("前回見た版", "Version you last saw"),
    "fd_latest": ("最新の版", "Latest version"),
    "fd_version": ("版", "Version"),
    "fd_phase_changed": ("フェーズが進みました", "The phase moved"),
    "fd_result": ("選定結果（実証候補）", "Selection result (pilot candidates)"),
    "fd_wide_area": ("広域連携テーマ", "Wide-area theme"),
    "fd_invited": ("招待された自治体", "Invited municipalities"),
    "fd_participants": ("参加している自治体", "Participating municipalities"),
    "fd_participate": ("この自治体として参加を表明する", "Declare this municipality's participation"),
    "fd_participating": ("この自治体は参加を表明しています。", "This municipality takes part."),
    "fd_note": ("ひとこと（任意）", "Note (optional)"),
    "fd_summary": ("概要", "Summary"),
    "fd_approach": ("取り組み方", "Approach"),
    "fd_outcomes": ("成果", "Outcomes"),
    "fd_lessons": ("教訓", "Lessons"),
    "fd_transferability": ("横展開のポイント", "Transferability"),
    "fd_kpis": ("KPI", "KPIs"),
    "fd_partners": ("連携企業", "Partners"),
    "fd_decision": ("次年度判断", "Next-year decision"),
    "fd_decision_adopt": ("本格導入", "Adopt"),
    "fd_decision_continue": ("継続実証", "Continue the pilot"),
    "fd_decision_expand": ("拡大・横展開", "Expand"),
    "fd_decision_end": ("終了", "End"),
    "fd_adopt": ("この事例から自分たちのテーマを作る（横展開）", "Start our own theme from this case"),
    "fd_adopt_intro": ("事例の内容を下書きに写しました。自分たちの地域に合わせて編集してから保存してください。"
                       "テーマには元の事例へのリンクが残ります。",
                       "The case's content is copied into the draft. Edit it for your town, then save; the theme "
                       "keeps a link to the original case."),
    "fd_origin_case": ("もとにした事例", "Started from the case"),
    "fd_wide_area_manage": ("広域連携（他の自治体を招待）", "Wide-area (invite other municipalities)"),
    "fd_invite": ("招待する", "Invite"),
    "fd_no_members": ("連携する自治体がまだ登録されていません（トラストアンカー未設定）。",
                      "No member municipality is known yet (no trust anchor configured)."),
    "fd_metric": ("指標", "Metric"),
    "fd_baseline": ("基準値", "Baseline"),
    "fd_target": ("目標値", "Target"),
    "fd_actual": ("実績", "Actual"),
    "fd_achievement": ("達成率", "Achievement"),
})
add_nav("nav_federation", "/federation/themes", "all", "join")


def _names(request: Request) -> dict[str, str]:
    lang = ps.lang(request)
    return {k: t(f"fd_decision_{k}", lang) for k in ("adopt", "continue", "expand", "end")}


def _query(origin: str, item_id: str, user: Any) -> f.RemoteQuery:
    try:
        return f.RemoteQuery(origin_node=origin, id=item_id, actor=actor_of(user) if user else None)
    except ValidationError:
        raise errors.NotFound(f"no item {item_id} of {origin}") from None


@router.get("/federation/themes", response_class=HTMLResponse)
async def themes_page(request: Request, user: OptionalUser) -> Response:
    field = request.query_params.get("field") or None
    if field is not None and field not in categories.codes():
        field = None
    try:
        got = f.RemoteThemeList.model_validate(await ask(request, f.EP_THEMES_LIST, f.RemoteListQuery(
            actor=actor_of(user) if user else None, field=field)))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "fed_themes.html", user=user, themes=got.themes, field=field or "")


@router.get("/federation/themes/{origin}/{theme_id}", response_class=HTMLResponse)
async def theme_page(origin: str, theme_id: str, request: Request, user: OptionalUser) -> Response:
    try:
        theme = f.RemoteTheme.model_validate(await ask(request, f.EP_THEMES_GET, _query(origin, theme_id, user)))
        if user is not None and theme.following:  # the person looked at it now: the followed list says so
            await ask(request, f.EP_FOLLOW, f.FollowIn(actor=actor_of(user), kind="theme", origin_node=origin,
                                                       id=theme.id))
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=("/federation/themes", t("fd_themes", ps.lang(request))))
    return page(request, "fed_theme.html", user=user, theme=theme)


@router.get("/federation/cases", response_class=HTMLResponse)
async def cases_page(request: Request, user: OptionalUser) -> Response:
    field = request.query_params.get("field") or None
    if field is not None and field not in categories.codes():
        field = None
    try:
        got = f.RemoteCaseList.model_validate(await ask(request, f.EP_CASES_LIST, f.RemoteListQuery(
            actor=actor_of(user) if user else None, field=field)))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "fed_cases.html", user=user, cases=got.cases, field=field or "",
                decisions=_names(request))


@router.get("/federation/cases/{origin}/{case_id}", response_class=HTMLResponse)
async def case_page(origin: str, case_id: str, request: Request, user: OptionalUser) -> Response:
    try:
        case = f.RemoteCase.model_validate(await ask(request, f.EP_CASES_GET, _query(origin, case_id, user)))
        if user is not None and case.following:
            await ask(request, f.EP_FOLLOW, f.FollowIn(actor=actor_of(user), kind="case", origin_node=origin,
                                                       id=case.id))
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=("/federation/cases", t("fd_cases", ps.lang(request))))
    return page(request, "fed_case.html", user=user, case=case, internal=is_internal(user),
                decisions=_names(request))


@router.post("/federation/follow")
async def follow(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    kind, origin, item_id = form.get("kind", ""), form.get("origin_node", ""), form.get("id", "")
    endpoint = f.EP_UNFOLLOW if form.get("action") == "unfollow" else f.EP_FOLLOW
    try:
        await ask(request, endpoint, f.FollowIn(actor=actor_of(user), kind=kind, origin_node=origin, id=item_id))
    except (ValidationError, errors.ServiceError) as exc:
        return refusal(request, exc, user)
    return RedirectResponse(f"/federation/{kind}s/{origin}/{item_id}", status_code=303)


@router.get("/federation/following", response_class=HTMLResponse)
async def following_page(request: Request, user: CurrentUser) -> Response:
    try:
        got = f.FollowingList.model_validate(await ask(request, f.EP_FOLLOWING, f.FollowingQuery(
            actor=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "fed_following.html", user=user, items=got.items)


@router.post("/federation/themes/{origin}/{theme_id}/participate")
async def participate(origin: str, theme_id: str, request: Request,
                      form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await ask(request, f.EP_PARTICIPATE, f.ParticipationDeclare(
            actor=actor_of(user), origin_node=origin, theme_id=theme_id, note=form.get("note", "")))
    except (ValidationError, errors.ServiceError) as exc:
        return refusal(request, exc, user)
    return RedirectResponse(f"/federation/themes/{origin}/{theme_id}", status_code=303)


# ---- 横展開: a new draft theme from a case ------------------------------------------------------------------------


async def _adopt_form(request: Request, user: Any, case: f.RemoteCase, form: dict[str, Any], chosen: list[str],
                      *, status: int = 200, error: str | None = None) -> HTMLResponse:
    depts = await my_departments(request, user)
    return page(request, "fed_adopt.html", user=user, case=case, departments=depts, form=form,
                chosen=chosen, status=status, error=error)


@router.get("/federation/cases/{origin}/{case_id}/adopt", response_class=HTMLResponse)
async def adopt_page(origin: str, case_id: str, request: Request, user: ThemeOwner) -> Response:
    try:
        case = f.RemoteCase.model_validate(await ask(request, f.EP_CASES_GET, _query(origin, case_id, user)))
        return await _adopt_form(request, user, case, dict(case.prefill), list(case.prefill.get("fields", [])))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)


@router.post("/federation/cases/{origin}/{case_id}/adopt")
async def adopt(origin: str, case_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    raw = await form_lists(request)
    content = {k: form.get(k, "") for k in ("title", "background", "target", "desired_outcome", "company_points")}
    content["fields"] = raw.getlist("fields")
    try:
        case = f.RemoteCase.model_validate(await ask(request, f.EP_CASES_GET, _query(origin, case_id, user)))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    try:
        data = f.CaseAdopt(actor=actor_of(user), owner_department_id=form.get("owner_department_id", ""),
                           case_origin_node=origin, case_id=case_id, **content)
        theme = c.Theme.model_validate(await ask(request, f.EP_ADOPT, data))
    except (ValidationError, errors.ServiceError) as exc:
        try:
            return await _adopt_form(request, user, case, {**form}, content["fields"],
                                     status=400 if isinstance(exc, ValidationError) else error_status(exc),
                                     error=why(exc, ps.lang(request)))
        except errors.ServiceError as exc2:
            return refusal(request, exc2, user)
    return RedirectResponse(f"/themes/{theme.id}", status_code=303)


# ---- 広域連携: the owner invites member municipalities --------------------------------------------------------------


@router.get("/themes/{theme_id}/wide-area", response_class=HTMLResponse)
async def wide_area_page(theme_id: str, request: Request, user: ThemeOwner) -> Response:
    try:
        theme = await managed_theme(request, theme_id, user)
        members = f.Members.model_validate(await ask(request, f.EP_MEMBERS, f.MembersQuery()))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    others = [m for m in members.members if m.active and m.node != members.node]
    return page(request, "fed_wide_area.html", user=user, theme=theme, members=others)


@router.post("/themes/{theme_id}/wide-area")
async def wide_area(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    raw = await form_lists(request)
    try:
        await ask(request, f.EP_WIDE_AREA, f.WideAreaSet(actor=actor_of(user), theme_id=theme_id,
                                                         invite=raw.getlist("invite"), note=form.get("note", "")))
    except (ValidationError, errors.ServiceError) as exc:
        return refusal(request, exc, user, back=(f"/themes/{theme_id}", t("pj_themes", ps.lang(request))))
    return RedirectResponse(f"/themes/{theme_id}?saved=1", status_code=303)
