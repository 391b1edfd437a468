"""The portal's course pages (Japanese first): the public list of certified courses (認定講座) and certifications
(修了資格); マイ単位 (a person's credits, progress and certificates); staff pages to define courses and
certifications, record completions (the person looked up at the identity service) and revoke certificates; and the
public certificate pages: /certificates/<id>, /certificates/verify (a pasted token), /certificates/jwks.json.

Each page asks the points service over NATS with the person as an Actor inside the request; the service decides what
they may do. Every form is CSRF-protected (gateway.deps.CsrfForm)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser, StaffUser, logged_in
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import categories, errors, pdf
from towntip.kernel.clock import JST
from towntip.kernel.contracts import courses as c
from towntip.kernel.contracts import identity as ic

router = APIRouter(include_in_schema=False)
# Logged in, or the login page coming back to a page of this module's choosing (as these pages always did): My
# credits; the staff's courses page for the certification form (a post cannot be shown again); a certificate's
# public page for its token, print and PDF.
CreditsUser = Annotated[ic.User, Depends(logged_in(lambda request: "/login?next=%2Fcredits"))]
CertificationFormUser = Annotated[ic.User, Depends(logged_in(lambda request: "/login?next=%2Fstaff%2Fcourses"))]
CertificateUser = Annotated[ic.User, Depends(logged_in(
    lambda request: f"/login?next=%2Fcertificates%2F{request.path_params['cert_id']}"))]
CERT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

add_words({
    "nav_courses": ("認定講座", "Courses"),
    "nav_credits": ("マイ単位", "My credits"),
    "nav_staff_courses": ("講座管理", "Manage courses"),
    "co_courses": ("認定講座", "Certified courses"),
    "co_intro": ("認定講座を受講すると「単位」が付与され、一定の単位を取得した場合には修了資格が得られます。",
                 "Certified courses grant credits; with enough credits you earn a certification."),
    "co_no_courses": ("認定講座はまだありません。", "No course yet."),
    "co_certifications": ("修了資格", "Certifications"),
    "co_no_certifications": ("修了資格はまだ設定されていません。", "No certification yet."),
    "co_code": ("コード（半角英小文字・数字・-_）", "Code (a-z, 0-9, - and _)"),
    "co_title": ("名称", "Title"),
    "co_description": ("説明", "Description"),
    "co_field": ("分野", "Field"),
    "co_credits": ("単位", "Credits"),
    "co_unit": ("単位", "credits"),
    "co_starts": ("開始日", "Starts on"),
    "co_ends": ("終了日", "Ends on"),
    "co_period": ("期間", "Period"),
    "co_required": ("必要単位数", "Credits required"),
    "co_rule_fields": ("対象分野（未選択ならすべて）", "Fields that count (none: all)"),
    "co_rule_courses": ("対象講座（未選択ならすべて）", "Courses that count (none: all)"),
    "co_any": ("すべての講座", "Any course"),
    "co_save": ("保存", "Save"),
    "co_saved": ("保存しました。", "Saved."),
    "co_new_course": ("講座を登録・編集", "Add or edit a course"),
    "co_new_certification": ("修了資格を登録・編集", "Add or edit a certification"),
    "co_edit": ("編集", "Edit"),
    "co_completions": ("受講修了の記録", "Completions"),
    "co_no_completions": ("まだ記録がありません。", "Nothing recorded yet."),
    "co_record": ("受講修了を記録", "Record a completion"),
    "co_person": ("受講者（グローバルID またはメールアドレス）", "Person (global ID or e-mail)"),
    "co_completed_on": ("修了日", "Completed on"),
    "co_recorded": ("記録して単位を付与しました。", "Recorded; the credits are granted."),
    "co_pending_note": ("記録しました。この方がこの地域のポータルで「マイ単位」を開くと単位が付与されます。",
                        "Recorded. The credits are granted when this person opens My credits on this portal."),
    "co_duplicate": ("この方はこの講座をすでに修了しています（単位は1回だけ付与されます）。",
                     "This person already completed this course (credits are granted once)."),
    "co_granted": ("修了資格を付与しました：", "Certification granted: "),
    "co_status_credited": ("付与済み", "Credited"),
    "co_status_pending": ("本人確認待ち", "Waiting for the person"),
    "co_my_credits": ("マイ単位", "My credits"),
    "co_total": ("取得単位", "Credits earned"),
    "co_progress": ("修了資格までの進み具合", "Progress towards certifications"),
    "co_my_certificates": ("修了証", "My certificates"),
    "co_no_certificates": ("まだ修了証はありません。", "No certificate yet."),
    "co_certificate": ("修了証", "Certificate"),
    "co_certificates": ("発行済みの修了証", "Issued certificates"),
    "co_holder": ("氏名", "Name"),
    "co_issued_on": ("発行日", "Issued on"),
    "co_node": ("発行地域", "Issued by"),
    "co_cert_id": ("証明書番号", "Certificate number"),
    "co_valid": ("有効な修了証です", "This certificate is valid"),
    "co_revoked": ("この修了証は取り消されています", "This certificate has been revoked"),
    "co_invalid": ("検証できません", "Could not be verified"),
    "co_revoked_on": ("取消日", "Revoked on"),
    "co_reason": ("取消の理由", "Reason for revocation"),
    "co_revoke": ("取り消す", "Revoke"),
    "co_revoked_done": ("修了証を取り消しました。", "The certificate is revoked."),
    "co_verify": ("修了証の検証", "Verify a certificate"),
    "co_verify_intro": ("修了証のトークン（署名付きデータ）を貼り付けてください。署名と取消の有無を確認します。",
                        "Paste the certificate's token (signed data): its signature and revocation are checked."),
    "co_token": ("トークン", "Token"),
    "co_check": ("検証する", "Verify"),
    "co_download_token": ("署名付きデータ（.jws）", "Signed token (.jws)"),
    "co_print": ("印刷用ページ", "Printable page"),
    "co_pdf": ("PDF", "PDF"),
    "co_verify_at": ("検証用URL", "Verify at"),
    "co_public_page": ("公開検証ページ", "Public verification page"),
    "co_signed": ("この修了証は発行地域の電子署名（Ed25519）付きです。公開鍵：",
                  "Signed by the issuing node (Ed25519). Public key: "),
    "co_certify_text": ("上記の者は、所定の認定講座を修了し、次の修了資格を取得したことを証明します。",
                        "This certifies that the person above completed the certified courses and earned:"),
    "co_status": ("状態", "Status"),
    "co_recorded_by": ("記録者", "Recorded by"),
})
add_nav("nav_courses", "/courses", "all", "join")
add_nav("nav_credits", "/credits", "user", "mine")
add_nav("nav_staff_courses", "/staff/courses", "staff")


async def _call(request: Request, endpoint: str, payload: BaseModel | dict[str, Any] | None = None,
                service: str = "points") -> Any:
    return await call(request, service, endpoint, payload)


# ---- helpers ---------------------------------------------------------------------------------------------------


def _jst(value: Any, fmt: str = "%Y-%m-%d") -> str:
    if not value:
        return ""
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return when.astimezone(JST).strftime(fmt)
    except ValueError:
        return str(value)


def _page(request: Request, template: str, *, user: ic.User | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    names = {cat.code: (cat.name_en if lang == "en" else cat.name_ja) for cat in categories.all_categories()}
    return render(request, f"courses/{template}", status=status, user=user, jst=_jst, field_names=names,
                  categories=categories.all_categories(), public_url=request.app.state.settings.public_url.rstrip("/"),
                  **ctx)


def _refusal(request: Request, exc: errors.ServiceError, user: ic.User | None) -> HTMLResponse:
    lang = ps.lang(request)
    return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=error_status(exc), user=user,
                   link=("/courses", t("co_courses", lang)))


def _blank(v: Any) -> Any:
    return None if v in (None, "") else v


# ---- public: courses -------------------------------------------------------------------------------------------


@router.get("/courses", response_class=HTMLResponse)
async def course_list(request: Request, user: OptionalUser) -> Response:
    try:
        found = c.CourseList.model_validate(await _call(request, c.EP_COURSE_LIST)).courses
        certs = c.CertificationList.model_validate(await _call(request, c.EP_CERTIFICATION_LIST)).certifications
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "list.html", user=user, courses=found, certifications=certs,
                 course_titles={x.code: x.title for x in found})


# ---- マイ単位 --------------------------------------------------------------------------------------------------


@router.get("/credits", response_class=HTMLResponse)
async def my_credits(request: Request, user: CreditsUser) -> Response:
    try:
        mine = c.MyCredits.model_validate(await _call(request, c.EP_COURSE_MINE, c.MineQuery(actor=actor_of(user))))
        found = c.CourseList.model_validate(await _call(request, c.EP_COURSE_LIST)).courses
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "mine.html", user=user, mine=mine, course_titles={x.code: x.title for x in found})


# ---- staff: courses and certifications --------------------------------------------------------------------------


async def _staff_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    try:
        found = c.CourseList.model_validate(await _call(request, c.EP_COURSE_LIST)).courses
        certs = c.CertificationList.model_validate(await _call(request, c.EP_CERTIFICATION_LIST)).certifications
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    ctx.setdefault("course_form", {})
    ctx.setdefault("cert_form", {})
    return _page(request, "staff.html", user=user, status=status, courses=found, certifications=certs, **ctx)


@router.get("/staff/courses", response_class=HTMLResponse)
async def staff_courses(request: Request, user: StaffUser) -> Response:
    ctx: dict[str, Any] = {}
    try:
        if request.query_params.get("course"):
            course = c.Course.model_validate(await _call(request, c.EP_COURSE_GET,
                                                         {"code": request.query_params["course"]}))
            ctx["course_form"] = course.model_dump(mode="json")
        if request.query_params.get("certification"):
            certs = c.CertificationList.model_validate(await _call(request, c.EP_CERTIFICATION_LIST)).certifications
            ctx["cert_form"] = next((x.model_dump(mode="json") for x in certs
                                     if x.code == request.query_params["certification"]), {})
    except (errors.ServiceError, ValidationError):
        pass  # an unknown code to edit: an empty form
    return await _staff_page(request, user, **ctx)


@router.post("/staff/courses")
async def staff_course_put(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    keep = {k: form.get(k, "") for k in ("code", "title", "description", "field", "credits", "starts_on", "ends_on")}
    try:
        data = c.CourseIn(actor=actor_of(user), code=str(form.get("code", "")).strip().lower(),
                          title=form.get("title", ""), description=form.get("description", ""),
                          field=form.get("field", ""), credits=_int(form.get("credits")),
                          starts_on=_blank(form.get("starts_on")), ends_on=_blank(form.get("ends_on")))
        await _call(request, c.EP_COURSE_PUT, data)
    except ValidationError as exc:
        return await _staff_page(request, user, status=400, error=why(exc, lang), course_form=keep)
    except errors.ServiceError as exc:
        if isinstance(exc, errors.Forbidden):
            return _refusal(request, exc, user)
        return await _staff_page(request, user, status=error_status(exc), error=why(exc, lang), course_form=keep)
    return RedirectResponse(f"/staff/courses/{data.code}?saved=1", status_code=303)


def _int(v: Any) -> Any:
    """A number typed in a form: an integer if it is one, else as typed (the contract says why it is refused)."""
    try:
        return int(str(v).strip())
    except ValueError:
        return v


@router.post("/staff/certifications")
async def staff_certification_put(request: Request, form: CsrfForm, user: CertificationFormUser) -> Response:
    lang = ps.lang(request)
    raw = await request.form()
    fields, chosen = raw.getlist("fields"), raw.getlist("courses")
    keep = {"code": form.get("code", ""), "title": form.get("title", ""), "description": form.get("description", ""),
            "credits_required": form.get("credits_required", ""), "fields": fields, "courses": chosen}
    try:
        data = c.CertificationIn(actor=actor_of(user), code=str(form.get("code", "")).strip().lower(),
                                 title=form.get("title", ""), description=form.get("description", ""),
                                 credits_required=_int(form.get("credits_required")), fields=fields, courses=chosen)
        await _call(request, c.EP_CERTIFICATION_PUT, data)
    except ValidationError as exc:
        return await _staff_page(request, user, status=400, error=why(exc, lang), cert_form=keep)
    except errors.ServiceError as exc:
        if isinstance(exc, errors.Forbidden):
            return _refusal(request, exc, user)
        return await _staff_page(request, user, status=error_status(exc), error=why(exc, lang), cert_form=keep)
    return await _staff_page(request, user, notice=t("co_saved", lang))


async def _course_page(request: Request, user: ic.User, code: str, *, status: int = 200, **ctx: Any) -> Response:
    try:
        course = c.Course.model_validate(await _call(request, c.EP_COURSE_GET, {"code": code}))
        done = c.CompletionList.model_validate(await _call(request, c.EP_COURSE_COMPLETIONS, c.CompletionsQuery(
            actor=actor_of(user), course=code))).completions
    except (errors.ServiceError, ValidationError) as exc:
        if isinstance(exc, ValidationError):
            exc = errors.NotFound("no such course")
        return _refusal(request, exc, user)
    return _page(request, "course.html", user=user, status=status, course=course, completions=done,
                 today=datetime.now(JST).date().isoformat(), **ctx)


@router.get("/staff/courses/{code}", response_class=HTMLResponse)
async def staff_course(code: str, request: Request, user: StaffUser) -> Response:
    notice = t("co_saved", ps.lang(request)) if request.query_params.get("saved") else None
    return await _course_page(request, user, code, notice=notice)


@router.post("/staff/courses/{code}/complete")
async def staff_complete(code: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """Record that a person finished the course. The person is looked up at the identity service (staff's
    people.lookup: by global ID or e-mail) so the points service can credit at once; a handle of someone not known
    here yet is recorded and waits for them."""
    lang = ps.lang(request)
    who = str(form.get("person", "")).strip().lower()
    actor = actor_of(user)
    known: c.KnownPerson | None = None
    try:
        if not actor.has("staff"):
            raise errors.Forbidden("staff only / 職員のみ操作できます")
        try:
            ref = ic.PersonRef.model_validate(await _call(
                request, ic.EP_PEOPLE_LOOKUP, ic.PersonLookupIn(actor=actor, query=who), service=ic.SERVICE))
            known = c.KnownPerson(user_id=ref.user_id, global_handle=ref.global_handle,
                                  display_name=ref.display_name)
        except errors.NotFound:
            if "." in who.partition("@")[2]:  # an e-mail address nobody here has
                raise
        data = c.CompletionIn(actor=actor, course=code, person=known.global_handle if known else who, known=known,
                              completed_on=_blank(form.get("completed_on")))
        out = c.CompletionOut.model_validate(await _call(request, c.EP_COURSE_COMPLETE, data))
    except ValidationError as exc:
        return await _course_page(request, user, code, status=400, error=why(exc, lang), person=who)
    except errors.ServiceError as exc:
        if isinstance(exc, errors.Forbidden):
            return _refusal(request, exc, user)
        return await _course_page(request, user, code, status=error_status(exc), error=why(exc, lang), person=who)
    note = {"credited": t("co_recorded", lang), "pending": t("co_pending_note", lang),
            "duplicate": t("co_duplicate", lang)}[out.status]
    if out.certificates:
        note += " " + t("co_granted", lang) + "、".join(x.title for x in out.certificates)
    return await _course_page(request, user, code, notice=note)


@router.get("/staff/certificates", response_class=HTMLResponse)
async def staff_certificates(request: Request, user: StaffUser) -> Response:
    return await _certs_page(request, user)


async def _certs_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        found = c.CertificateList.model_validate(await _call(request, c.EP_CERTIFICATE_LIST, c.CertificateListQuery(
            actor=actor_of(user)))).certificates
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "certificates.html", user=user, status=status, certificates=found, **ctx)


@router.post("/staff/certificates/{cert_id}/revoke")
async def staff_revoke(cert_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        await _call(request, c.EP_CERTIFICATE_REVOKE, c.RevokeIn(actor=actor_of(user), id=cert_id,
                                                                 reason=form.get("reason", "")))
    except ValidationError as exc:
        return await _certs_page(request, user, status=400, error=why(exc, lang))
    except errors.ServiceError as exc:
        if isinstance(exc, errors.Forbidden):
            return _refusal(request, exc, user)
        return await _certs_page(request, user, status=error_status(exc), error=why(exc, lang))
    return await _certs_page(request, user, notice=t("co_revoked_done", lang))


# ---- public: certificates ---------------------------------------------------------------------------------------


@router.get("/certificates/jwks.json")
async def certificate_jwks(request: Request) -> Response:
    try:
        keys = await _call(request, c.EP_CERTIFICATE_JWKS)
    except errors.ServiceError as exc:
        return JSONResponse({"error": why(exc, "en")}, status_code=error_status(exc))
    return JSONResponse(keys, headers={"Cache-Control": "public, max-age=300"})


@router.get("/certificates/verify", response_class=HTMLResponse)
async def verify_page(request: Request, user: OptionalUser) -> Response:
    return _page(request, "verify.html", user=user, result=None, token="")


@router.post("/certificates/verify")
async def verify_token(request: Request, form: CsrfForm, user: OptionalUser) -> Response:
    lang = ps.lang(request)
    token = "".join(str(form.get("token", "")).split())  # pasted tokens may carry line breaks
    try:
        result = c.Verification.model_validate(await _call(request, c.EP_CERTIFICATE_VERIFY,
                                                           c.VerifyIn(token=token)))
    except ValidationError as exc:
        return _page(request, "verify.html", user=user, status=400, result=None, token=token[:c.MAX_TOKEN],
                     error=why(exc, lang))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "verify.html", user=user, result=result, token=token)


async def _certificate(request: Request, cert_id: str, user: ic.User | None) -> c.CertificateView:
    if not CERT_ID.fullmatch(cert_id):
        raise errors.NotFound("no such certificate / 証明書が見つかりません")
    return c.CertificateView.model_validate(await _call(request, c.EP_CERTIFICATE_GET, c.CertificateQuery(
        id=cert_id, actor=actor_of(user) if user is not None else None)))


@router.get("/certificates/{cert_id}", response_class=HTMLResponse)
async def certificate_page(cert_id: str, request: Request, user: OptionalUser) -> Response:
    try:
        cert = await _certificate(request, cert_id, user)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "certificate.html", user=user, cert=cert)


async def _held(request: Request, cert_id: str, user: ic.User) -> c.CertificateView | Response:
    """The certificate with its token: only for its holder and staff (others get 404, as if it were not there)."""
    try:
        cert = await _certificate(request, cert_id, user)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    if cert.token is None:
        return _refusal(request, errors.NotFound("no such certificate / 証明書が見つかりません"), user)
    return cert


@router.get("/certificates/{cert_id}/token")
async def certificate_token(cert_id: str, request: Request, user: CertificateUser) -> Response:
    cert = await _held(request, cert_id, user)
    if isinstance(cert, Response):
        return cert
    return Response(cert.token or "", media_type="application/jose",
                    headers={"Content-Disposition": f'attachment; filename="certificate-{cert.id}.jws"',
                             "Cache-Control": "no-store"})


@router.get("/certificates/{cert_id}/print", response_class=HTMLResponse)
async def certificate_print(cert_id: str, request: Request, user: CertificateUser) -> Response:
    cert = await _held(request, cert_id, user)
    if isinstance(cert, Response):
        return cert
    return _page(request, "print.html", user=None, cert=cert)


@router.get("/certificates/{cert_id}/pdf")
async def certificate_pdf(cert_id: str, request: Request, user: CertificateUser) -> Response:
    cert = await _held(request, cert_id, user)
    if isinstance(cert, Response):
        return cert
    base = request.app.state.settings.public_url.rstrip("/")
    # ReportLab is pure Python: a thread keeps the event loop answering while it lays out the page.
    body = await asyncio.to_thread(certificate_pdf_bytes, cert, verify_url=f"{base}/certificates/{cert.id}")
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="certificate-{cert.id}.pdf"',
                             "Cache-Control": "no-store"})


# ---- the certificate as PDF (towntip/kernel/pdf.py: ReportLab, the Japanese font embedded) ------------------------


def certificate_pdf_bytes(cert: c.CertificateView, *, verify_url: str) -> bytes:
    """An A4 certificate (修了証): what the certificate states, the verification URL and the certificate number.
    The signed token remains the proof; the PDF points to where it is checked. Printed here, beside the page and the
    printable page, from the same view the service read from the signed claims."""
    green = pdf.colors.Color(0.04, 0.43, 0.31)
    doc = pdf.Canvas(title=f"修了証 {cert.title}", subject="修了証 Certificate of completion")
    w = doc.width
    doc.rect(40, 40, w - 80, 762, 3, colour=green)
    doc.rect(48, 48, w - 96, 746, 0.8, colour=green)
    doc.centred(740, "修了証", 36, bold=True)
    doc.centred(712, "Certificate of completion", 14)
    # The name and the title are printed whole however long (smaller, or over lines); what follows moves down.
    y = doc.line_or_lines(90, 620, w - 180, f"{cert.name} 殿", 24, smallest=14) - 2
    doc.line(90, y, w - 90, y, 0.6)
    doc.text(90, y - 52, "上記の者は、所定の認定講座を修了し、", 14)
    doc.text(90, y - 74, "次の修了資格を取得したことを証明します。", 14)
    y = doc.paragraph(90, y - 107, w - 180, cert.title, 22, leading=30) - 36
    for line in (f"取得単位 Credits: {cert.credits}", f"発行日 Issued on: {cert.issued_on.isoformat()}",
                 f"発行地域 Issued by: {cert.node}"):
        doc.text(90, y, line, 12)
        y -= 20
    if cert.status == "revoked":
        doc.text(90, y - 40, "この修了証は取り消されています / REVOKED", 16, bold=True, colour=pdf.colors.red)
        y -= 60
    y = min(y - 40, 300)
    doc.text(90, y, f"証明書番号 No.: {cert.id}", 10)
    doc.text(90, y - 16, "検証 Verify at:", 9)
    size = max(6.0, min(9.0, 9 * (w - 180) / pdf.text_width(verify_url, 9)))  # the address whole, on one line
    doc.paragraph(90, y - 20, w - 180, verify_url, size)
    return doc.finish()
