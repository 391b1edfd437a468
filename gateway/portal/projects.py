"""The portal's co-creation pages (ORG, phase 1): the public theme list and theme pages, the staff's hearings, theme
editing, requirements, publication, phase moves and history; company registration and profiles; the public contact
form and the secretariat's inbox. Each page asks the projects service over NATS with the person as an Actor inside
the request; the service decides what they may do. Every form is CSRF-protected (gateway.deps.CsrfForm)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser, SecretariatUser, ThemeOwner
from gateway.portal import federation, likes, projects_calls, projects_pilots
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, error_status, why
from gateway.portal.confirm import ask_first, confirm_page, confirmed
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import (
    ask,
    form_lists,
    get_theme,
    is_internal,
    jst,
    managed_theme,
    my_departments,
    page,
    refusal,
)
from towntip.kernel import categories, errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts import sns_openings as oc

router = APIRouter(include_in_schema=False)
CRITERIA_ROWS = 6
# The contact form is open to anyone: at most CONTACT_LIMIT posts per client address per CONTACT_WINDOW seconds,
# at this gateway (the service also caps auto-replies per address).
CONTACT_LIMIT = 5
CONTACT_WINDOW = 600.0

add_words({
    "nav_themes": ("共創テーマ", "Themes"),
    "nav_orgs": ("所属団体", "My organisations"),
    "nav_hearings": ("ヒアリング", "Hearings"),
    "nav_contact": ("お問い合わせ", "Contact"),
    "nav_inquiries": ("問い合わせ受付", "Inquiries"),
    "pj_themes": ("公民連携テーマ一覧", "Co-creation themes"),
    "pj_themes_intro": ("自治体が企業と共に取り組みたい地域課題です。分野で絞り込めます。",
                        "Local issues a municipality wants to work on with companies. Filter them by field."),
    "pj_all_fields": ("すべての分野", "All fields"),
    "pj_filter": ("絞り込む", "Filter"),
    "pj_no_themes": ("該当するテーマはまだありません。", "No theme yet."),
    "pj_new_theme": ("テーマを作成", "New theme"),
    "pj_draft": ("下書き", "Draft"),
    "pj_published": ("公開中", "Published"),
    "pj_phase": ("フェーズ", "Phase"),
    "pj_owner": ("担当部局", "Owner department"),
    "pj_title": ("テーマ名", "Title"),
    "pj_background": ("背景", "Background"),
    "pj_target": ("対象", "Target"),
    "pj_outcome": ("目指す成果", "Desired outcome"),
    "pj_fields": ("分野", "Fields"),
    "pj_company_points": ("企業連携ポイント（民間に期待すること）", "Where companies can help"),
    "pj_hearing": ("もとになったヒアリング", "From hearing"),
    "pj_none": ("なし", "None"),
    "pj_edit": ("編集", "Edit"),
    "pj_save": ("保存", "Save"),
    "pj_publish": ("公開する", "Publish"),
    "pj_requirements": ("募集要件", "Recruitment requirements"),
    "pj_set_requirements": ("募集要件を設定", "Set the requirements"),
    "pj_no_requirements": ("募集要件はまだ設定されていません。", "No recruitment requirements yet."),
    "pj_conditions": ("提案条件", "Proposal conditions"),
    "pj_scope": ("提案範囲", "Scope"),
    "pj_deadline": ("締切（日本時間）", "Deadline (Japan time)"),
    "pj_criteria": ("評価基準と配点（合計100）", "Evaluation criteria and weights (sum 100)"),
    "pj_criterion": ("評価項目", "Criterion"),
    "pj_weight": ("配点", "Weight"),
    "pj_description": ("説明", "Description"),
    "pj_frozen": ("公募開始後は、公平性のため募集要件と評価基準を変更できません。",
                  "Once the call is open, the requirements and criteria are frozen, for fairness."),
    "pj_call_open": ("公募中（開始: ", "Call open (since "),
    "pj_open_call": ("公募を開始する", "Open the call"),
    "pj_move_phase": ("次のフェーズへ進める", "Move to the next phase"),
    "pj_move_note": ("理由・判断の記録", "Reason (recorded in the history)"),
    "pj_history": ("変更履歴", "History"),
    "pj_when": ("日時", "When"),
    "pj_who": ("担当者", "Who"),
    "pj_what": ("内容", "What"),
    "pj_before": ("変更前", "Before"),
    "pj_after": ("変更後", "After"),
    "pj_hearings": ("部局横断ヒアリング", "Cross-department hearings"),
    "pj_record_hearing": ("ヒアリングを記録", "Record a hearing"),
    "pj_department": ("部局", "Department"),
    "pj_held_on": ("実施日", "Held on"),
    "pj_current_state": ("現状", "Current state"),
    "pj_issues": ("課題（1行に1つ）", "Issues (one per line)"),
    "pj_attendees": ("出席者", "Attendees"),
    "pj_no_hearings": ("まだ記録がありません。", "Nothing recorded yet."),
    "pj_no_department": ("先に部局を登録してください（所属団体 → 登録）。",
                         "Register a department first (My organisations → Register)."),
    "pj_orgs": ("所属団体", "My organisations"),
    "pj_register_org": ("企業・団体を登録", "Register a company or organisation"),
    "pj_org_kind": ("種別", "Kind"),
    "pj_kind_department": ("自治体の部局", "Municipal department"),
    "pj_kind_company": ("企業・団体", "Company or organisation"),
    "pj_org_name": ("名称", "Name"),
    "pj_size": ("規模", "Size"),
    "pj_size_": ("未回答", "Not given"),
    "pj_size_individual": ("個人事業", "Sole proprietor"),
    "pj_size_micro": ("小規模（〜9人）", "Micro (up to 9)"),
    "pj_size_small": ("中小（10〜99人）", "Small (10-99)"),
    "pj_size_medium": ("中堅（100〜999人）", "Medium (100-999)"),
    "pj_size_large": ("大企業（1000人〜）", "Large (1000+)"),
    "pj_industry": ("業種", "Industry"),
    "pj_expertise": ("得意分野・専門性", "Expertise"),
    "pj_website": ("ウェブサイト", "Website"),
    "pj_members": ("メンバー", "Members"),
    "pj_add_member": ("メンバーを追加", "Add a member"),
    "pj_member_handle": ("グローバルID（例: hanako@tsurugashima）", "Global ID (e.g. hanako@tsurugashima)"),
    "pj_role": ("権限", "Role"),
    "pj_role_admin": ("管理者", "Admin"),
    "pj_role_member": ("メンバー", "Member"),
    "pj_no_orgs": ("まだどの団体にも所属していません。", "You belong to no organisation yet."),
    "pj_any_size": ("業種や規模を問わず、地域課題の解決に取り組む企業・団体が参加できます。",
                    "Companies and organisations of any size or industry can take part."),
    "pj_not_found": ("見つかりません。", "Not found."),
    "pj_contact": ("相談・お問い合わせ", "Contact us"),
    "pj_contact_intro": (
        "構想段階や情報整理の初期段階からご相談いただけます。必要事項をご入力のうえ、送信ボタンを押してください。送信後、自動返信メールをお送りします。",
        "You can consult us from the very first idea. Fill in the form and send it; an automatic reply will follow by "
        "e-mail."),
    "pj_i_am": ("ご所属", "You are"),
    "pj_kind_municipality": ("自治体", "A municipality"),
    "pj_kind_resident": ("市民（個人）", "A resident"),
    "pj_organisation_hint": ("市民（個人）の方は空欄でかまいません。", "Residents may leave this empty."),
    "pj_name": ("お名前", "Your name"),
    "pj_organisation": ("所属・団体名（企業・団体・自治体の方）", "Organisation (companies, groups, municipalities)"),
    "pj_email": ("メールアドレス", "E-mail"),
    "pj_phone": ("電話番号（任意）", "Phone (optional)"),
    "pj_topic": ("件名", "Subject"),
    "pj_message": ("ご相談内容", "Message"),
    "pj_send": ("送信する", "Send"),
    "pj_contact_done": ("お問い合わせを受け付けました", "Your inquiry was received"),
    "pj_reference": ("受付番号", "Reference"),
    "pj_auto_reply_sent": ("ご入力のメールアドレスに自動返信メールをお送りしました。",
                           "An automatic reply is on its way to the address you gave."),
    "pj_auto_reply_skipped": (
        "このアドレスには短時間に多くの自動返信をお送りしたため、今回は自動返信を控えました。お問い合わせは事務局に届いています。",
        "This address had several automatic replies in a short time, so none was sent this time. Your inquiry has "
        "reached the secretariat."),
    "pj_no_mail": ("10分以上経過してもメールが届かない場合は、以下の可能性がございます。",
                   "If no e-mail has arrived after 10 minutes or more, it may be that:"),
    "pj_no_mail_1": ("迷惑メールフォルダに振り分けられている", "it was sorted into your spam folder"),
    "pj_no_mail_2": ("入力されたメールアドレスに誤りがある", "the e-mail address you entered has a typo"),
    "pj_no_mail_3": ("受信拒否設定（ドメイン指定受信等）が有効になっている",
                     "a reception filter (e.g. accepting only chosen domains) is on"),
    "pj_no_mail_4": ("セキュリティ設定によりブロックされている", "it was blocked by security settings"),
    "pj_no_mail_then": ("その際は、お手数ですが再度ご送信いただくか、別のメールアドレスにてお試しください。",
                        "In that case, please send the form again or try another e-mail address."),
    "pj_too_many": ("送信が多すぎます。しばらく待ってからお試しください。",
                    "Too many messages. Please wait a while and try again."),
    "pj_inquiries": ("お問い合わせ（事務局）", "Inquiries (secretariat)"),
    "pj_status": ("状態", "Status"),
    "pj_status_open": ("未対応", "Open"),
    "pj_status_answered": ("対応済み", "Answered"),
    "pj_mark_answered": ("対応済みにする", "Mark answered"),
    "pj_reopen": ("未対応に戻す", "Reopen"),
    "pj_auto_reply": ("自動返信", "Auto-reply"),
    "pj_no_inquiries": ("お問い合わせはありません。", "No inquiries."),
    "pj_received": ("受付日時", "Received"),
    "pj_all": ("すべて", "All"),
})
add_nav("nav_themes", "/themes", "all", "join")
add_nav("nav_orgs", "/orgs", "user", "menu")
add_nav("nav_hearings", "/hearings", "staff")
add_nav("nav_inquiries", "/secretariat/inquiries", "secretariat")
add_nav("nav_contact", "/contact", "all", "menu")


def install(app: FastAPI) -> None:
    """Called by gateway.app.create_app: the routes (phase 2's in projects_calls, phases 3 and 4 and the cases in
    projects_pilots, other towns' themes and cases in federation), and the contact form's throttle."""
    app.include_router(router)
    app.include_router(projects_calls.router)
    app.include_router(projects_pilots.router)
    app.include_router(federation.router)
    app.state.contact_throttle = ps.Throttle(CONTACT_LIMIT, CONTACT_WINDOW, store=app.state.throttle_store,
                                             name="contact")


# ---- helpers ---------------------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _deadline(value: str) -> str:
    """A datetime-local value (Japan time, as the form says) as an aware ISO time; the contract checks the rest."""
    try:
        return datetime.fromisoformat(value).replace(tzinfo=JST).isoformat() if value else ""
    except ValueError:
        return value


# ---- themes ----------------------------------------------------------------------------------------------------


@router.get("/themes", response_class=HTMLResponse)
async def theme_list(request: Request, user: OptionalUser) -> Response:
    field = request.query_params.get("field") or None
    if field is not None and field not in categories.codes():
        field = None
    actor = actor_of(user) if user else None
    try:
        found = c.ThemeList.model_validate(await ask(request, c.EP_THEME_LIST, c.ThemeListQuery(
            actor=actor, field=field, include_drafts=is_internal(user))))
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=("/", t("home", ps.lang(request))))
    return page(request, "themes.html", user=user, themes=found.themes, field=field or "",
                internal=is_internal(user))


async def _hearings(request: Request, user: ic.User) -> list[c.Hearing]:
    return c.HearingList.model_validate(
        await ask(request, c.EP_HEARING_LIST, c.HearingListQuery(actor=actor_of(user)))).hearings


@router.get("/themes/new", response_class=HTMLResponse)
async def theme_new_page(request: Request, user: ThemeOwner) -> Response:
    try:
        depts, hearings = await my_departments(request, user), await _hearings(request, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "theme_form.html", user=user, theme=None, departments=depts, hearings=hearings,
                form={"hearing_id": request.query_params.get("hearing", "")}, chosen=[])


def _content(form: dict[str, Any], raw: Any) -> dict[str, Any]:
    return {"title": form.get("title", ""), "background": form.get("background", ""),
            "target": form.get("target", ""), "desired_outcome": form.get("desired_outcome", ""),
            "company_points": form.get("company_points", ""), "fields": raw.getlist("fields")}


@router.post("/themes/new")
async def theme_create(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    raw = await form_lists(request)
    content = _content(form, raw)
    try:
        data = c.ThemeCreate(actor=actor_of(user), owner_department_id=form.get("owner_department_id", ""),
                             hearing_id=form.get("hearing_id") or None, **content)
        theme = c.Theme.model_validate(await ask(request, c.EP_THEME_CREATE, data))
    except (ValidationError, errors.ServiceError) as exc:
        try:
            depts, hearings = await my_departments(request, user), await _hearings(request, user)
        except errors.ServiceError as exc2:
            return refusal(request, exc2, user)
        return page(request, "theme_form.html", user=user, theme=None, departments=depts, hearings=hearings,
                    form=form, chosen=content["fields"], error=why(exc, ps.lang(request)),
                    status=400 if isinstance(exc, ValidationError) else error_status(exc))
    return RedirectResponse(f"/themes/{theme.id}", status_code=303)


@router.get("/themes/{theme_id}", response_class=HTMLResponse)
async def theme_page(theme_id: str, request: Request, user: OptionalUser) -> Response:
    try:
        theme = await get_theme(request, theme_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    notice = t("saved", ps.lang(request)) if request.query_params.get("saved") else None
    liked = await likes.state(request, c.SERVICE, "theme", theme.id, user) if theme.status == "published" else None
    return page(request, "theme.html", user=user, theme=theme, internal=is_internal(user), notice=notice,
                likes=liked, **await _later_phases(request, theme, user))


@router.post("/themes/{theme_id}/like")
async def theme_like(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """共感 on a published theme (or withdrawn: `undo`)."""
    return await likes.press(request, form, user, service=c.SERVICE, kind="theme", item=theme_id,
                             back=f"/themes/{quote(theme_id, safe='')}")


async def _later_phases(request: Request, theme: c.Theme, user: ic.User | None) -> dict[str, Any]:
    """What the theme's page shows of phases 3 and 4 (the pilot workspace's link and gate, the published case), and
    its openings (募集)."""
    return {**await projects_pilots.theme_extras(request, theme, user), **await _openings(request, theme)}


async def _openings(request: Request, theme: c.Theme) -> dict[str, Any]:
    """A published theme's open openings (the sns service keeps them) and, for its managers, the link to post one
    (the sns service asks this one again who manages it). A draft shows none: its openings would name it in public.
    None when the sns service does not answer: the theme's page works without them."""
    if theme.status != "published":
        return {"host_openings": None, "new_opening": None}
    try:
        found = oc.OpeningList.model_validate(await call(request, sc.SERVICE, oc.EP_OPENING_LIST,
                                                         oc.OpeningListQuery(host_id=theme.id))).openings
    except errors.ServiceError:
        found = None
    return {"host_openings": found, "new_opening": f"/openings/new?theme={theme.id}" if theme.may_manage else None}


@router.get("/themes/{theme_id}/edit", response_class=HTMLResponse)
async def theme_edit_page(theme_id: str, request: Request, user: ThemeOwner) -> Response:
    try:
        theme = await managed_theme(request, theme_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "theme_form.html", user=user, theme=theme, form=theme.model_dump(), chosen=theme.fields)


@router.post("/themes/{theme_id}/edit")
async def theme_edit(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    raw = await form_lists(request)
    content = _content(form, raw)
    try:
        data = c.ThemeUpdate(actor=actor_of(user), theme_id=theme_id, version=form.get("version", "0"), **content)
        await ask(request, c.EP_THEME_UPDATE, data)
    except (ValidationError, errors.ServiceError) as exc:
        try:
            theme = await get_theme(request, theme_id, user)
        except errors.ServiceError as exc2:
            return refusal(request, exc2, user)
        return page(request, "theme_form.html", user=user, theme=theme, form=form, chosen=content["fields"],
                    error=why(exc, ps.lang(request)),
                    status=400 if isinstance(exc, ValidationError) else error_status(exc))
    return RedirectResponse(f"/themes/{theme_id}?saved=1", status_code=303)


async def _theme_action(request: Request, form: dict[str, Any], user: ic.User, theme_id: str, endpoint: str,
                        make: Any) -> Response:
    """A button on the theme's page (publish, open the call, move the phase): the theme page again, with the
    service's reason when it refused."""
    try:
        await ask(request, endpoint, make(actor_of(user), form))
    except (ValidationError, errors.ServiceError) as exc:
        try:
            theme = await get_theme(request, theme_id, user)
        except errors.ServiceError as exc2:
            return refusal(request, exc2, user)
        return page(request, "theme.html", user=user, theme=theme, internal=is_internal(user),
                    error=why(exc, ps.lang(request)),
                    status=400 if isinstance(exc, ValidationError) else error_status(exc),
                    **await _later_phases(request, theme, user))
    return RedirectResponse(f"/themes/{theme_id}?saved=1", status_code=303)


@router.get("/themes/{theme_id}/publish", response_class=HTMLResponse)
async def theme_publish_page(theme_id: str, request: Request, user: CurrentUser) -> Response:
    """Publication cannot be withdrawn: its managers are told what it means first (gateway/portal/confirm.py)."""
    try:
        theme = await managed_theme(request, theme_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return confirm_page(request, user, key="publish", action=f"/themes/{theme.id}/publish",
                        back=f"/themes/{theme.id}", facts=[("cf_theme", theme.title)], steps=2, danger=False)


@router.post("/themes/{theme_id}/publish")
async def theme_publish(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    if not confirmed(form):
        return ask_first(f"/themes/{quote(theme_id, safe='')}/publish")
    return await _theme_action(request, form, user, theme_id, c.EP_THEME_PUBLISH,
                               lambda actor, form: c.ThemeAction(actor=actor, theme_id=theme_id))


@router.post("/themes/{theme_id}/call")
async def theme_open_call(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _theme_action(request, form, user, theme_id, c.EP_THEME_CALL_OPEN,
                               lambda actor, form: c.ThemeAction(actor=actor, theme_id=theme_id))


@router.post("/themes/{theme_id}/phase")
async def theme_phase(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _theme_action(request, form, user, theme_id, c.EP_THEME_ADVANCE, lambda actor, form: c.PhaseAdvance(
        actor=actor, theme_id=theme_id, to_phase=form.get("to_phase", "0"), note=form.get("note", "")))


def _requirements_form(theme: c.Theme) -> dict[str, Any]:
    r = theme.requirements
    if r is None:
        return {}
    out: dict[str, Any] = {"conditions": r.conditions, "scope": r.scope,
                           "deadline": jst(r.deadline, "%Y-%m-%dT%H:%M")}
    for x in r.criteria:
        out |= {f"crit_name_{x.position}": x.name, f"crit_weight_{x.position}": str(x.weight),
                f"crit_desc_{x.position}": x.description}
    return out


@router.get("/themes/{theme_id}/requirements", response_class=HTMLResponse)
async def requirements_page(theme_id: str, request: Request, user: ThemeOwner) -> Response:
    try:
        theme = await managed_theme(request, theme_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "requirements.html", user=user, theme=theme, form=_requirements_form(theme),
                rows=range(1, CRITERIA_ROWS + 1))


@router.post("/themes/{theme_id}/requirements")
async def requirements_put(theme_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    rows = []
    for i in range(1, CRITERIA_ROWS + 1):
        name = str(form.get(f"crit_name_{i}", "")).strip()
        if name:
            rows.append({"name": name, "weight": form.get(f"crit_weight_{i}") or "0",
                         "description": form.get(f"crit_desc_{i}", "")})
    try:
        data = c.RequirementsPut(actor=actor_of(user), theme_id=theme_id, conditions=form.get("conditions", ""),
                                 scope=form.get("scope", ""), deadline=_deadline(str(form.get("deadline", ""))),
                                 criteria=rows)
        await ask(request, c.EP_THEME_REQUIREMENTS, data)
    except (ValidationError, errors.ServiceError) as exc:
        try:
            theme = await get_theme(request, theme_id, user)
        except errors.ServiceError as exc2:
            return refusal(request, exc2, user)
        return page(request, "requirements.html", user=user, theme=theme, form=form,
                    rows=range(1, CRITERIA_ROWS + 1), error=why(exc, ps.lang(request)),
                    status=400 if isinstance(exc, ValidationError) else error_status(exc))
    return RedirectResponse(f"/themes/{theme_id}?saved=1", status_code=303)


@router.get("/themes/{theme_id}/history", response_class=HTMLResponse)
async def history_page(theme_id: str, request: Request, user: ThemeOwner) -> Response:
    try:
        theme = await get_theme(request, theme_id, user)
        hist = c.History.model_validate(await ask(request, c.EP_THEME_HISTORY, c.ThemeQuery(
            theme_id=theme_id, actor=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "history.html", user=user, theme=theme, entries=hist.entries)


# ---- hearings --------------------------------------------------------------------------------------------------


async def _hearings_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    try:
        depts = c.OrgList.model_validate(await ask(request, c.EP_ORG_LIST, c.OrgListQuery(kind="department")))
        found = await _hearings(request, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "hearings.html", user=user, status=status, departments=depts.orgs, hearings=found, **ctx)


@router.get("/hearings", response_class=HTMLResponse)
async def hearings_page(request: Request, user: ThemeOwner) -> Response:
    return await _hearings_page(request, user)


@router.post("/hearings")
async def hearing_create(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        data = c.HearingCreate(actor=actor_of(user), department_id=form.get("department_id", ""),
                               held_on=form.get("held_on", ""), current_state=form.get("current_state", ""),
                               issues=_lines(str(form.get("issues", ""))), attendees=form.get("attendees", ""))
        await ask(request, c.EP_HEARING_CREATE, data)
    except (ValidationError, errors.ServiceError) as exc:
        return await _hearings_page(request, user, form=form, error=why(exc, ps.lang(request)),
                                    status=400 if isinstance(exc, ValidationError) else error_status(exc))
    return await _hearings_page(request, user, notice=t("saved", ps.lang(request)))


# ---- organisations ---------------------------------------------------------------------------------------------


@router.get("/orgs", response_class=HTMLResponse)
async def orgs_page(request: Request, user: CurrentUser) -> Response:
    try:
        mine = c.OrgList.model_validate(await ask(request, c.EP_ORG_LIST, c.OrgListQuery(member=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "orgs.html", user=user, orgs=mine.orgs)


@router.get("/orgs/new", response_class=HTMLResponse)
async def org_new_page(request: Request, user: CurrentUser) -> Response:
    return page(request, "org_form.html", user=user, org=None, chosen=[], staff="staff" in user.roles)


def _profile(form: dict[str, Any], raw: Any) -> dict[str, Any]:
    return {"name": form.get("name", ""), "size": form.get("size", ""), "industry": form.get("industry", ""),
            "expertise": form.get("expertise", ""), "website": form.get("website", ""),
            "fields": raw.getlist("fields")}


@router.post("/orgs/new")
async def org_create(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    profile = _profile(form, await form_lists(request))
    try:
        data = c.OrgCreate(actor=actor_of(user), kind=form.get("kind", "company"), **profile)
        org = c.Org.model_validate(await ask(request, c.EP_ORG_CREATE, data))
    except (ValidationError, errors.ServiceError) as exc:
        return page(request, "org_form.html", user=user, org=None, form=form, chosen=profile["fields"],
                    staff="staff" in user.roles, error=why(exc, ps.lang(request)),
                    status=400 if isinstance(exc, ValidationError) else error_status(exc))
    return RedirectResponse(f"/orgs/{org.id}", status_code=303)


async def _org(request: Request, org_id: str, user: ic.User | None) -> c.Org:
    try:
        q = c.OrgQuery(org_id=org_id, actor=actor_of(user) if user else None)
    except ValidationError:
        raise c.ORG_NOT_FOUND(f"no organisation {org_id}") from None
    return c.Org.model_validate(await ask(request, c.EP_ORG_GET, q))


@router.get("/orgs/{org_id}", response_class=HTMLResponse)
async def org_page(org_id: str, request: Request, user: OptionalUser) -> Response:
    try:
        org = await _org(request, org_id, user)
    except errors.ServiceError as exc:
        return refusal(request, exc, user, back=("/orgs", t("pj_orgs", ps.lang(request))))
    notice = t("saved", ps.lang(request)) if request.query_params.get("saved") else None
    return page(request, "org.html", user=user, org=org, form=org.model_dump(), chosen=org.fields, notice=notice)


async def _org_action(request: Request, form: dict[str, Any], user: ic.User, org_id: str, endpoint: str,
                      make: Any) -> Response:
    raw = await form_lists(request)
    try:
        await ask(request, endpoint, make(actor_of(user), form, raw))
    except (ValidationError, errors.ServiceError) as exc:
        try:
            org = await _org(request, org_id, user)
        except errors.ServiceError as exc2:
            return refusal(request, exc2, user, back=("/orgs", t("pj_orgs", ps.lang(request))))
        return page(request, "org.html", user=user, org=org, form=form, chosen=raw.getlist("fields"),
                    error=why(exc, ps.lang(request)),
                    status=400 if isinstance(exc, ValidationError) else error_status(exc))
    return RedirectResponse(f"/orgs/{org_id}?saved=1", status_code=303)


@router.post("/orgs/{org_id}")
async def org_update(org_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _org_action(request, form, user, org_id, c.EP_ORG_UPDATE, lambda actor, form, raw: c.OrgUpdate(
        actor=actor, org_id=org_id, **_profile(form, raw)))


@router.post("/orgs/{org_id}/members")
async def org_member_add(org_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _org_action(request, form, user, org_id, c.EP_ORG_MEMBER_ADD, lambda actor, form, raw: c.MemberAdd(
        actor=actor, org_id=org_id, global_handle=str(form.get("global_handle", "")).strip().lower(),
        role=form.get("role", "member")))


# ---- the contact form (public) and the secretariat's inbox -----------------------------------------------------


@router.get("/contact", response_class=HTMLResponse)
async def contact_page(request: Request, user: OptionalUser) -> Response:
    return page(request, "contact.html", user=user, form={"kind": "company"})


@router.post("/contact")
async def contact(request: Request, form: CsrfForm, user: OptionalUser) -> Response:
    # CSRF like every form: a page elsewhere cannot post it for a visitor
    lang = ps.lang(request)
    ip = request.client.host if request.client else ""
    if not request.app.state.contact_throttle.allow(ip):
        return page(request, "contact.html", user=user, form=form, error=t("pj_too_many", lang), status=429)
    try:
        data = c.InquiryCreate(kind=form.get("kind", ""), name=form.get("name", ""),
                               organisation=form.get("organisation", ""), email=form.get("email", ""),
                               phone=form.get("phone", ""), topic=form.get("topic", ""),
                               message=form.get("message", ""), lang=lang)
        receipt = c.InquiryReceipt.model_validate(await ask(request, c.EP_INQUIRY_CREATE, data))
    except (ValidationError, errors.ServiceError) as exc:
        return page(request, "contact.html", user=user, form=form, error=why(exc, lang),
                    status=400 if isinstance(exc, ValidationError) else error_status(exc))
    return page(request, "contact_done.html", user=user, receipt=receipt)


@router.get("/secretariat/inquiries", response_class=HTMLResponse)
async def inquiries_page(request: Request, user: SecretariatUser) -> Response:
    status = request.query_params.get("status")
    try:
        found = c.InquiryList.model_validate(await ask(request, c.EP_INQUIRY_LIST, c.InquiryListQuery(
            actor=actor_of(user), status=status if status in ("open", "answered") else None)))
    except errors.ServiceError as exc:
        return refusal(request, exc, user)
    return page(request, "inquiries.html", user=user, inquiries=found.inquiries, shown=status or "")


@router.post("/secretariat/inquiries/{inquiry_id}/status")
async def inquiry_status(inquiry_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await ask(request, c.EP_INQUIRY_STATUS, c.InquiryStatusSet(
            actor=actor_of(user), inquiry_id=inquiry_id, status=form.get("status", ""), note=form.get("note", "")))
    except (ValidationError, errors.ServiceError) as exc:
        return refusal(request, exc, user, back=("/secretariat/inquiries", t("pj_inquiries", ps.lang(request))))
    return RedirectResponse("/secretariat/inquiries", status_code=303)
