"""The staff's notice pages (お知らせ配信): the list with how many each notice reached and opened (never who), a new
notice with its recipients counted before sending, publishing now or at a time, approval by a second staff member,
correction and withdrawal with the history. Every page asks the notices service with the staff member as the
Actor; the service checks the role again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.notices import jst
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices as c

router = APIRouter(include_in_schema=False)

add_words({
    "ns_title": ("お知らせ配信", "Notices"),
    "ns_new": ("新しいお知らせ", "New notice"),
    "ns_none": ("まだお知らせはありません。", "No notice yet."),
    "ns_target": ("配信対象", "Target"),
    "ns_target_id": ("コミュニティID・テーマ（ノード/ID）", "Community id, or theme as node/id"),
    "ns_count": ("配信対象者数", "Recipients"),
    "ns_count_is": ("{n}人に届きます。", "Reaches {n} people."),
    "ns_needs_approval": ("{n}人を超えるため、送信前に別の職員の承認が必要です。",
                          "More than {n} people: another staff member approves it before it is sent."),
    "ns_preview": ("対象者数を確認", "Count recipients"),
    "ns_title_f": ("件名", "Title"),
    "ns_body": ("本文", "Text"),
    "ns_sender": ("発信元（担当課）", "From (section)"),
    "ns_category": ("分野", "Category"),
    "ns_none_cat": ("なし", "None"),
    "ns_link": ("リンク", "Link"),
    "ns_link_title": ("表示名", "Title"),
    "ns_valid_from": ("掲載開始", "Valid from"),
    "ns_valid_until": ("掲載終了", "Valid until"),
    "ns_publish": ("配信", "Publish"),
    "ns_publish_now": ("すぐに配信", "Now"),
    "ns_publish_at": ("日時を指定", "At a time"),
    "ns_send": ("配信する", "Send"),
    "ns_state": ("状態", "State"),
    "ns_delivered": ("配信済み", "Delivered"),
    "ns_opened": ("開封", "Opened"),
    "ns_opened_note": ("開封数は人数だけです。誰が開封したかは表示されません。",
                       "Only how many opened it: who opened it is never shown."),
    "ns_approve": ("承認する", "Approve"),
    "ns_correct": ("訂正する", "Correct"),
    "ns_withdraw": ("取り下げる", "Withdraw"),
    "ns_history": ("履歴", "History"),
    "ns_created_by": ("作成", "Written by"),
    "ns_approved_by": ("承認", "Approved by"),
    "ns_publish_time": ("配信日時", "Publishing time"),
    "ns_bad_time": ("日時の形式が正しくありません。", "The date and time are not valid."),
    **{f"ns_state_{s}": p for s, p in {
        "awaiting_approval": ("承認待ち", "Awaiting approval"), "scheduled": ("配信予定", "Scheduled"),
        "sending": ("配信中", "Sending"), "sent": ("配信済み", "Sent"), "withdrawn": ("取り下げ", "Withdrawn"),
    }.items()},
    **{f"ns_action_{s}": p for s, p in {
        "created": ("作成", "Created"), "approved": ("承認", "Approved"), "sent": ("配信", "Sent"),
        "corrected": ("訂正", "Corrected"), "withdrawn": ("取り下げ", "Withdrawn")}.items()},
    **{f"ns_kind_{k}": p for k, p in {
        "everyone": ("全員", "Everyone"), "district": ("地区", "District"), "stage": ("ライフステージ", "Life stage"),
        "event": ("ライフイベント", "Life event"), "interest": ("関心分野", "Interest"),
        "community": ("コミュニティの参加者", "Community members"), "theme": ("テーマのフォロワー", "Theme followers"),
    }.items()},
    **{f"ns_stage_{s}": p for s, p in {
        "children": ("子どもがいる世帯", "Households with children"),
        "child_preschool": ("未就学児のいる世帯", "With a preschool child"),
        "child_elementary": ("小学生のいる世帯", "With an elementary school child"),
        "child_junior_high": ("中学生のいる世帯", "With a junior high school child"),
        "child_high": ("高校生世代のいる世帯", "With a high-school-age child"),
        "caring": ("介護をしている世帯", "Caring for someone"), "living_alone": ("ひとり暮らし", "Living alone"),
        "senior": ("70代以上", "70 and over"),
        **{f"age_{b}": (f"年代: {b}", f"Age: {b}") for b in c.AGE_BANDS},
    }.items()},
})
add_nav("ns_title", "/staff/notices", "staff")


def _local(v: Any) -> datetime | None:
    """A datetime-local field (no zone: JST is meant)."""
    text = str(v or "").strip()
    return datetime.fromisoformat(text).replace(tzinfo=JST) if text else None


def _target(form: dict[str, Any]) -> c.Target:
    kind, _, value = str(form.get("target", "everyone:")).partition(":")
    if kind in ("community", "theme"):
        value = str(form.get("target_id", "")).strip()
    return c.Target.model_validate({"kind": kind, "value": value})


def _links(form: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for i in (1, 2):
        url = str(form.get(f"link_url_{i}", "")).strip()
        if url:
            out.append({"title": str(form.get(f"link_title_{i}", "")).strip() or url, "url": url})
    return out


def _content(form: dict[str, Any]) -> dict[str, Any]:
    return {"title": form.get("title", ""), "body": form.get("body", ""), "sender": form.get("sender", ""),
            "category": str(form.get("category", "")).strip() or None, "links": _links(form),
            "valid_from": _local(form.get("valid_from")), "valid_until": _local(form.get("valid_until"))}


async def _list_page(request: Request, user: Any, *, status: int = 200, error: str = "",
                     form: dict[str, Any] | None = None, count: c.RecipientCount | None = None) -> Response:
    try:
        found = c.StaffNoticeList.model_validate(await call(request, c.SERVICE, c.EP_NOTICE_LIST,
                                                            c.StaffQuery(actor=actor_of(user))))
    except errors.ServiceError as exc:
        return message(request, heading=t("ns_title", ps.lang(request)), paragraphs=[why(exc, ps.lang(request))],
                       status=error_status(exc), user=user)
    return render(request, "notices/staff.html", status=status, user=user, notices=found.notices, error=error,
                  form=form or {}, count=count, districts=request.app.state.town.districts, stages=c.LIFE_STAGES,
                  life_events=c.LIFE_EVENTS, jst=jst)


@router.get("/staff/notices", response_class=HTMLResponse)
async def staff_notices(request: Request, user: StaffUser) -> Response:
    return await _list_page(request, user)


@router.post("/staff/notices/preview")
async def staff_preview(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        count = c.RecipientCount.model_validate(await call(request, c.SERVICE, c.EP_NOTICE_PREVIEW, c.PreviewIn(
            actor=actor_of(user), target=_target(form))))
    except (errors.ServiceError, ValidationError) as exc:
        return await _list_page(request, user, status=bad_status(exc), error=why(exc, lang), form=form)
    return await _list_page(request, user, form=form, count=count)


@router.post("/staff/notices")
async def staff_create(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        at = _local(form.get("publish_at")) if form.get("publish") == "at" else None
        made = c.StaffNotice.model_validate(await call(request, c.SERVICE, c.EP_NOTICE_CREATE, c.NoticeCreate(
            actor=actor_of(user), target=_target(form), publish_at=at, **_content(form))))
    except ValidationError as exc:
        return await _list_page(request, user, status=400, error=why(exc, lang), form=form)
    except ValueError:
        return await _list_page(request, user, status=400, error=t("ns_bad_time", lang), form=form)
    except errors.ServiceError as exc:
        return await _list_page(request, user, status=error_status(exc), error=why(exc, lang), form=form)
    return RedirectResponse(f"/staff/notices/{made.id}", status_code=303)


async def _detail(request: Request, user: Any, notice_id: str, *, status: int = 200, error: str = "") -> Response:
    lang = ps.lang(request)
    try:
        notice = c.StaffNoticeDetail.model_validate(await call(request, c.SERVICE, c.EP_NOTICE_GET, c.NoticeAction(
            actor=actor_of(user), notice_id=notice_id)))
    except (errors.ServiceError, ValidationError) as exc:
        return message(request, heading=t("ns_title", lang), paragraphs=[why(exc, lang)], status=bad_status(exc),
                       user=user, link=("/staff/notices", t("ns_title", lang)))
    return render(request, "notices/staff_notice.html", status=status, user=user, n=notice, error=error, jst=jst,
                  local=lambda v: v.astimezone(JST).strftime("%Y-%m-%dT%H:%M") if v else "")


@router.get("/staff/notices/{notice_id}", response_class=HTMLResponse)
async def staff_notice(request: Request, notice_id: str, user: StaffUser) -> Response:
    return await _detail(request, user, notice_id)


async def _act(request: Request, user: Any, notice_id: str, endpoint: str, payload: Any) -> Response:
    try:
        await call(request, c.SERVICE, endpoint, payload)
    except errors.ServiceError as exc:
        return await _detail(request, user, notice_id, status=error_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/staff/notices/{notice_id}", status_code=303)


@router.post("/staff/notices/{notice_id}/approve")
async def staff_approve(request: Request, notice_id: str, form: CsrfForm, user: StaffUser) -> Response:
    return await _act(request, user, notice_id, c.EP_NOTICE_APPROVE,
                      c.NoticeAction(actor=actor_of(user), notice_id=notice_id))


@router.post("/staff/notices/{notice_id}/withdraw")
async def staff_withdraw(request: Request, notice_id: str, form: CsrfForm, user: StaffUser) -> Response:
    return await _act(request, user, notice_id, c.EP_NOTICE_WITHDRAW,
                      c.NoticeAction(actor=actor_of(user), notice_id=notice_id))


@router.post("/staff/notices/{notice_id}/correct")
async def staff_correct(request: Request, notice_id: str, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        payload = c.NoticeCorrect(actor=actor_of(user), notice_id=notice_id, **_content(form))
    except (ValidationError, ValueError) as exc:
        return await _detail(request, user, notice_id, status=400, error=why(exc, lang))
    return await _act(request, user, notice_id, c.EP_NOTICE_CORRECT, payload)
