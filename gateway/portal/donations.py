"""The portal's donation pages (寄附): certified projects and their transparency pages (public), the pledge form and
マイ寄附 with receipts (a logged-in person), and the staff's desk: projects and their certification, pledges to
confirm or cancel, the use of funds, the node's rate of points. Each page asks the points service
(svc.<node>.points.donations.*) with the person as an Actor; the service decides what they may do."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call_points, message, render, why
from gateway.portal.confirm import ask_first, confirm_page, confirmed
from gateway.portal.i18n import add_words, t
from gateway.portal.pages import JST
from towntip.kernel import categories, errors
from towntip.kernel.contracts import donations as c
from towntip.kernel.contracts import identity as ic

router = APIRouter(include_in_schema=False)

add_words({
    "dn_nav": ("寄附", "Donate"),
    "dn_nav_mine": ("マイ寄附", "My donations"),
    "dn_nav_staff": ("寄附の確認（職員）", "Donations (staff)"),
    "dn_projects": ("認定プロジェクトへの寄附", "Donate to certified projects"),
    "dn_intro": (
        "寄附によるまちづくり条例に基づいて認定されたプロジェクトに寄附できます。寄附が確認されると「まちづくりポイント」が貯まり、寄附金受領証明書をダウンロードできます。",
        "Donate to projects certified under the town's donation ordinance. Once your donation is confirmed "
        "you earn town points and can download the receipt."),
    "dn_no_projects": ("受付中のプロジェクトはまだありません。", "No project takes donations yet."),
    "dn_raised": ("寄附総額", "Raised"),
    "dn_donors": ("寄附者数", "Donors"),
    "dn_goal": ("目標金額", "Goal"),
    "dn_no_goal": ("目標なし", "No goal"),
    "dn_people": ("人", "people"),
    "dn_yen": ("円", "yen"),
    "dn_progress": ("達成率", "Progress"),
    "dn_organisation": ("実施団体", "Organisation"),
    "dn_field": ("分野", "Field"),
    "dn_closed": ("受付終了", "Closed"),
    "dn_open": ("受付中", "Open"),
    "dn_uncertified": ("未認定", "Not certified"),
    "dn_certified": ("認定", "Certified"),
    "dn_uses": ("寄附金の使いみち", "Use of funds"),
    "dn_no_uses": ("まだ使用の記録はありません。", "Nothing used yet."),
    "dn_used": ("使用額", "Used"),
    "dn_balance": ("残高", "Balance"),
    "dn_date": ("日付", "Date"),
    "dn_amount": ("金額（円）", "Amount (yen)"),
    "dn_description": ("内容", "Description"),
    "dn_pledge": ("寄附を申し込む", "Pledge a donation"),
    "dn_method": ("お支払い方法", "How you pay"),
    "dn_donor_address": ("受領証明書に記載するご住所（任意）", "Your address for the receipt (optional)"),
    "dn_donor_address_hint": (
        "寄附金控除の申告には、住所と氏名の入った受領証明書が必要です。ご住所は受領証明書のためだけに使い、"
        "一覧には表示しません。寄附が取り消されたとき、または受領の年から5年を過ぎたときに消去します。",
        "A tax deduction needs a receipt with your address and name. The address is used for the receipt only "
        "and never shown in lists; it is erased if the donation is cancelled, or five years after the year of "
        "the receipt."),
    "dn_donor_name": ("受領証明書に記載するお名前（空欄なら表示名）",
                      "Name on the receipt (your display name if empty)"),
    "dn_login_to_pledge": ("寄附を申し込むにはログインしてください。", "Log in to pledge a donation."),
    "dn_pledged": ("寄附の申し込みを受け付けました", "Your pledge is recorded"),
    "dn_reference": ("受付番号", "Reference"),
    "dn_mine": ("マイ寄附", "My donations"),
    "dn_mine_intro": ("認定プロジェクトに寄附を行うと「まちづくりポイント」が取得できます。",
                      "Donating to a certified project earns you town points."),
    "dn_none": ("まだ寄附はありません。", "No donations yet."),
    "dn_total": ("確定した寄附の合計", "Confirmed donations"),
    "dn_points": ("寄附で得たまちづくりポイント", "Town points from donating"),
    "dn_status": ("状態", "Status"),
    "dn_status_pledged": ("入金確認待ち", "Awaiting payment"),
    "dn_status_confirmed": ("確定", "Confirmed"),
    "dn_status_cancelled": ("取消", "Cancelled"),
    "dn_receipt": ("受領証明書（PDF）", "Receipt (PDF)"),
    "dn_project": ("プロジェクト", "Project"),
    "dn_pt": ("ポイント", "Points"),
    "dn_staff": ("寄附の管理（職員）", "Donations desk (staff)"),
    "dn_staff_projects": ("プロジェクトの登録と認定", "Projects and certification"),
    "dn_new_project": ("プロジェクトを登録・変更", "Register or change a project"),
    "dn_code": ("コード（半角英小文字・数字・-）", "Code (a-z, 0-9, -)"),
    "dn_title": ("プロジェクト名", "Title"),
    "dn_open_label": ("寄附を受け付ける", "Takes donations"),
    "dn_certify": ("認定する", "Certify"),
    "dn_withdraw": ("認定を取り消す", "Withdraw certification"),
    "dn_manage": ("使いみち・詳細", "Uses and details"),
    "dn_pledges": ("入金確認待ちの寄附", "Pledges awaiting payment"),
    "dn_recent": ("最近の寄附", "Recent donations"),
    "dn_confirm": ("入金を確認", "Confirm payment"),
    "dn_cancel": ("取り消す", "Cancel"),
    "dn_reason": ("取消の理由", "Reason"),
    "dn_donor": ("寄附者", "Donor"),
    "dn_no_pledges": ("確認待ちの寄附はありません。", "No pledge is waiting."),
    "dn_confirmed_notice": ("寄附を確定しました", "Donation confirmed"),
    "dn_cancelled_notice": ("寄附を取り消しました", "Donation cancelled"),
    "dn_record_use": ("使いみちを記録", "Record a use of funds"),
    "dn_pending": ("入金確認待ち", "Awaiting payment"),
    "dn_rules": ("寄附のルール", "Donation rules"),
    "dn_rate": ("1,000円あたりのまちづくりポイント", "Town points per 1,000 yen"),
    "dn_issuer": ("受領証明書の発行者（自治体名）", "Issuer on receipts (the municipality)"),
    "dn_bank": ("振込先（銀行振込の案内に表示）", "Bank account (shown with transfer instructions)"),
    "dn_terminal_hint": (
        "窓口の端末を「寄附」モードにして受付番号を設定し、寄附者が登録済みのカードをタッチしても確定できます。",
        "You can also confirm at a counter terminal in donation mode: set the reference and let the "
        "donor touch their registered card."),
})
add_nav("dn_nav", "/donations", "all", "join")
add_nav("dn_nav_mine", "/donations/mine", "user", "mine")
add_nav("dn_nav_staff", "/staff/donations/pledges", "staff")


# ---- helpers ---------------------------------------------------------------------------------------------------


async def _ask(request: Request, endpoint: str, payload: BaseModel | None = None) -> Any:
    return await call_points(request, endpoint, payload if payload is not None else _Empty())


class _Empty(BaseModel):
    pass


def _jst(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(JST).strftime(fmt)


def _page(request: Request, template: str, *, user: ic.User | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    names = categories.labels(lang)
    return render(request, f"donations/{template}", status=status, user=user, jst=_jst, yen=lambda n: f"{n:,}",
                  category_names=names, categories=categories.all_categories(), percent=_percent, **ctx)


def _percent(p: c.Project) -> int:
    return min(100, p.raised_yen * 100 // p.goal_yen) if p.goal_yen else 0


def _code(exc: Exception) -> int:
    if isinstance(exc, ValidationError):
        return 400
    code = getattr(exc, "code", 400)
    return code if isinstance(code, int) and 400 <= code < 600 else 400


def _refusal(request: Request, exc: Exception, user: ic.User | None, back: tuple[str, str] | None = None
             ) -> HTMLResponse:
    lang = ps.lang(request)
    return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=_code(exc), user=user,
                   link=back or ("/donations", t("dn_projects", lang)))


def _int(value: Any) -> Any:
    """A number typed in a form (commas and spaces allowed, full-width digits too); anything else is passed on for
    the contract to refuse with its reason."""
    text = str(value or "").translate(str.maketrans("０１２３４５６７８９，", "0123456789,")).replace(",", "").strip()
    return int(text) if text.isdigit() or (text.startswith("-") and text[1:].isdigit()) else text


# ---- public: projects and their transparency pages ------------------------------------------------------------------


@router.get("/donations", response_class=HTMLResponse)
async def projects_page(request: Request, user: OptionalUser) -> Response:
    try:
        found = c.ProjectList.model_validate(await _ask(request, c.EP_PROJECT_LIST, c.ProjectListQuery()))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user, back=("/", t("home", ps.lang(request))))
    return _page(request, "projects.html", user=user, projects=found.projects)


async def _project_page(request: Request, code: str, user: ic.User | None, *, status: int = 200, **ctx: Any
                        ) -> Response:
    try:
        q = c.ProjectQuery(code=code, actor=actor_of(user) if user else None)
    except ValidationError:
        return _refusal(request, errors.NotFound(f"no certified project {code!r}"), user)
    try:
        detail = c.ProjectDetail.model_validate(await _ask(request, c.EP_PROJECT_GET, q))
        methods = c.MethodList.model_validate(await _ask(request, c.EP_METHODS)).methods
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "project.html", user=user, status=status, detail=detail, p=detail.project,
                 methods=methods, **ctx)


@router.get("/donations/projects/{code}", response_class=HTMLResponse)
async def project_page(code: str, request: Request, user: OptionalUser) -> Response:
    return await _project_page(request, code, user)


@router.post("/donations/projects/{code}/pledge")
async def pledge(code: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        data = c.PledgeIn(actor=actor_of(user), project=code, amount_yen=_int(form.get("amount_yen")),
                          method=str(form.get("method", "")), donor_name=str(form.get("donor_name", "")),
                          donor_address=str(form.get("donor_address", "")))
        done = c.Donation.model_validate(await _ask(request, c.EP_PLEDGE, data))
    except (ValidationError, errors.ServiceError) as exc:
        return await _project_page(request, code, user, status=_code(exc), error=why(exc, ps.lang(request)),
                                   form=form)
    return RedirectResponse(f"/donations/mine?pledged={done.reference}", status_code=303)


# ---- a person's donations ---------------------------------------------------------------------------------------


@router.get("/donations/mine", response_class=HTMLResponse)
async def mine_page(request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        mine = c.MyDonations.model_validate(await _ask(request, c.EP_MINE, c.ActorQuery(actor=actor_of(user))))
        methods = {m.code: m for m in c.MethodList.model_validate(await _ask(request, c.EP_METHODS)).methods}
        rules = c.Rules.model_validate(await _ask(request, c.EP_RULES_GET))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    new = next((d for d in mine.donations if d.reference == request.query_params.get("pledged")), None)
    instructions = ""
    if new is not None and new.method in methods:
        m = methods[new.method]
        bank = f"（{rules.bank_account}）" if rules.bank_account and lang == "ja" else \
            (f"({rules.bank_account}) " if rules.bank_account else "")
        instructions = (m.instructions_en if lang == "en" else m.instructions_ja).format(
            reference=new.reference, bank_account=bank)
    return _page(request, "mine.html", user=user, mine=mine, new=new, instructions=instructions,
                 methods=methods)


@router.get("/donations/receipts/{reference}.pdf")
async def receipt(reference: str, request: Request, user: CurrentUser) -> Response:
    try:
        out = c.ReceiptPdf.model_validate(await _ask(request, c.EP_RECEIPT, c.DonationAction(
            actor=actor_of(user), reference=reference)))
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user, back=("/donations/mine", t("dn_mine", ps.lang(request))))
    return Response(base64.b64decode(out.pdf_base64), media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{out.filename}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


# ---- staff ------------------------------------------------------------------------------------------------------


async def _staff_projects_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        found = c.ProjectList.model_validate(await _ask(request, c.EP_PROJECT_LIST, c.ProjectListQuery(
            actor=actor_of(user), include_uncertified=True)))
        rules = c.Rules.model_validate(await _ask(request, c.EP_RULES_GET))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    ctx.setdefault("form", {"open": "1"})
    return _page(request, "staff_projects.html", user=user, status=status, projects=found.projects, rules=rules,
                 **ctx)


@router.get("/staff/donations", response_class=HTMLResponse)
async def staff_projects(request: Request, user: StaffUser) -> Response:
    notice = t("saved", ps.lang(request)) if request.query_params.get("saved") else None
    return await _staff_projects_page(request, user, notice=notice)


async def _staff_post(request: Request, form: dict[str, Any], user: ic.User, make: Any, back: str, on_error: Any
                      ) -> Response:
    """A staff form: the service call `make(actor, form)`; then back to `back`, or `on_error(user, exc, form)`."""
    try:
        endpoint, payload = make(actor_of(user), form)
        await _ask(request, endpoint, payload)
    except (ValidationError, errors.ServiceError) as exc:
        return await on_error(user, exc, form)
    return RedirectResponse(back, status_code=303)


@router.post("/staff/donations/projects")
async def staff_project_put(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    async def again(user: ic.User, exc: Exception, form: dict[str, Any]) -> Response:
        return await _staff_projects_page(request, user, status=_code(exc), error=why(exc, ps.lang(request)),
                                          form=form)

    return await _staff_post(request, form, user, lambda actor, form: (c.EP_PROJECT_PUT, c.ProjectPut(
        actor=actor, code=str(form.get("code", "")).strip(), title=form.get("title", ""),
        organisation=form.get("organisation", ""), description=form.get("description", ""),
        field=form.get("field", ""), goal_yen=_int(form.get("goal_yen") or "0"), open=bool(form.get("open")),
    )), "/staff/donations?saved=1", again)


@router.post("/staff/donations/projects/{code}/certify")
async def staff_certify(code: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    async def again(user: ic.User, exc: Exception, form: dict[str, Any]) -> Response:
        return await _staff_projects_page(request, user, status=_code(exc), error=why(exc, ps.lang(request)))

    return await _staff_post(request, form, user, lambda actor, form: (c.EP_PROJECT_CERTIFY, c.ProjectCertify(
        actor=actor, code=code, certified=form.get("certified") == "1")), "/staff/donations?saved=1", again)


@router.post("/staff/donations/rules")
async def staff_rules(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    async def again(user: ic.User, exc: Exception, form: dict[str, Any]) -> Response:
        return await _staff_projects_page(request, user, status=_code(exc), error=why(exc, ps.lang(request)))

    return await _staff_post(request, form, user, lambda actor, form: (c.EP_RULES_PUT, c.RulesPut(
        actor=actor, points_per_1000_yen=_int(form.get("points_per_1000_yen")),
        issuer_name=form.get("issuer_name", ""), bank_account=form.get("bank_account", ""),
    )), "/staff/donations?saved=1", again)


async def _staff_project_page(request: Request, code: str, user: ic.User, *, status: int = 200, **ctx: Any
                              ) -> Response:
    try:
        detail = c.ProjectDetail.model_validate(await _ask(request, c.EP_PROJECT_GET, c.ProjectQuery(
            code=code, actor=actor_of(user))))
        pledges = c.DonationList.model_validate(await _ask(request, c.EP_LIST, c.DonationListQuery(
            actor=actor_of(user), project=code)))
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user, back=("/staff/donations", t("dn_staff", ps.lang(request))))
    return _page(request, "staff_project.html", user=user, status=status, detail=detail, p=detail.project,
                 donations=pledges.donations, **ctx)


@router.get("/staff/donations/projects/{code}", response_class=HTMLResponse)
async def staff_project(code: str, request: Request, user: StaffUser) -> Response:
    notice = t("saved", ps.lang(request)) if request.query_params.get("saved") else None
    return await _staff_project_page(request, code, user, notice=notice)


@router.post("/staff/donations/projects/{code}/uses")
async def staff_fund_use(code: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    async def again(user: ic.User, exc: Exception, form: dict[str, Any]) -> Response:
        return await _staff_project_page(request, code, user, status=_code(exc), error=why(exc, ps.lang(request)),
                                         form=form)

    return await _staff_post(request, form, user, lambda actor, form: (c.EP_FUND_USE_ADD, c.FundUseIn(
        actor=actor, project=code, used_on=form.get("used_on", ""), amount_yen=_int(form.get("amount_yen")),
        description=form.get("description", ""),
    )), f"/staff/donations/projects/{code}?saved=1", again)


async def _pledges_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        waiting = c.DonationList.model_validate(await _ask(request, c.EP_LIST, c.DonationListQuery(
            actor=actor_of(user), status="pledged")))
        recent = c.DonationList.model_validate(await _ask(request, c.EP_LIST, c.DonationListQuery(
            actor=actor_of(user))))
        methods = {m.code: m for m in c.MethodList.model_validate(await _ask(request, c.EP_METHODS)).methods}
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "pledges.html", user=user, status=status, waiting=waiting.donations,
                 recent=[d for d in recent.donations if d.status != "pledged"][:50], methods=methods, **ctx)


@router.get("/staff/donations/pledges", response_class=HTMLResponse)
async def staff_pledges(request: Request, user: StaffUser) -> Response:
    lang = ps.lang(request)
    q = request.query_params
    notice = None
    if q.get("confirmed"):
        notice = f"{t('dn_confirmed_notice', lang)}: {q.get('confirmed')}"
    elif q.get("cancelled"):
        notice = f"{t('dn_cancelled_notice', lang)}: {q.get('cancelled')}"
    return await _pledges_page(request, user, notice=notice)


async def _pledge_action(request: Request, form: dict[str, Any], user: ic.User, reference: str, endpoint: str,
                         word: str) -> Response:
    async def again(user: ic.User, exc: Exception, form: dict[str, Any]) -> Response:
        return await _pledges_page(request, user, status=_code(exc), error=why(exc, ps.lang(request)))

    return await _staff_post(request, form, user, lambda actor, form: (endpoint, c.DonationAction(
        actor=actor, reference=reference, reason=form.get("reason", ""),
    )), f"/staff/donations/pledges?{word}={quote(reference)}", again)


@router.get("/staff/donations/pledges/{reference}/confirm", response_class=HTMLResponse)
async def staff_confirm_page(reference: str, request: Request, user: StaffUser) -> Response:
    """Confirming a payment awards points and issues a receipt: the pledge is shown whole before the post (gateway/
    portal/confirm.py), so that staff check the money against the reference and the amount."""
    try:
        waiting = c.DonationList.model_validate(await _ask(request, c.EP_LIST, c.DonationListQuery(
            actor=actor_of(user), status="pledged"))).donations
        pledge = next((d for d in waiting if d.reference == reference), None)
        if pledge is None:
            raise errors.NotFound(f"no pledge {reference} waiting for its payment")
    except errors.ServiceError as exc:
        return _refusal(request, exc, user, back=("/staff/donations/pledges", t("dn_pledges", ps.lang(request))))
    return confirm_page(request, user, key="payment", action=f"/staff/donations/pledges/{quote(reference)}/confirm",
                        back="/staff/donations/pledges", steps=2, danger=False, facts=[
                            ("cf_reference", pledge.reference), ("cf_donor", pledge.donor_name),
                            ("cf_amount", f"{pledge.amount_yen:,} 円"), ("cf_project", pledge.project_title)])


@router.post("/staff/donations/pledges/{reference}/confirm")
async def staff_confirm(reference: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    if not confirmed(form):
        return ask_first(f"/staff/donations/pledges/{quote(reference, safe='')}/confirm")
    return await _pledge_action(request, form, user, reference, c.EP_CONFIRM, "confirmed")


@router.post("/staff/donations/pledges/{reference}/cancel")
async def staff_cancel(reference: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _pledge_action(request, form, user, reference, c.EP_CANCEL, "cancelled")
