"""The portal's pages of a booking's life: the staff's approval queue (承認待ち: approve or reject with a reason, each
after a confirmation step) and a resident's payment page for one booking (the fee, its deadline, the wallet's local
currency and the coupons that fit, then a confirmation step). Each page asks the bookings service
(svc.<node>.bookings.*) with the person as an Actor, and the points service for the wallet; the services decide
what they may do. The resident's booking pages (gateway/portal/bookings.py) link to /bookings/<id>/pay."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, call_points, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.pages import JST
from towntip.kernel import errors
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_life as lc
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import points as pc

router = APIRouter(include_in_schema=False)

add_words({
    "bl_nav_approvals": ("予約の承認（職員）", "Booking approvals (staff)"),
    "bl_approvals": ("承認待ちの予約", "Bookings waiting for approval"),
    "bl_approvals_intro": ("申込みの古い順に表示しています。内容を確認して承認または却下してください。",
                           "Oldest request first. Check each one, then approve or reject it."),
    "bl_none_waiting": ("承認待ちの予約はありません。", "No request is waiting."),
    "bl_filter": ("絞り込む", "Filter"),
    "bl_facility": ("施設", "Facility"),
    "bl_date": ("利用日", "Date"),
    "bl_time": ("日時", "When"),
    "bl_booker": ("申込者", "Booked by"),
    "bl_purpose": ("利用目的", "Purpose"),
    "bl_fee": ("使用料", "Fee"),
    "bl_requested_at": ("申込日時", "Requested"),
    "bl_approve": ("承認…", "Approve…"),
    "bl_reject": ("却下…", "Reject…"),
    "bl_confirm_approve": ("この予約を承認しますか？", "Approve this booking?"),
    "bl_confirm_reject": ("この予約を却下しますか？", "Reject this booking?"),
    "bl_note": ("申込者への連絡事項（任意）", "A note for the booker (optional)"),
    "bl_reason": ("却下の理由（必須・申込者に伝わります）", "Why (required: the booker is told)"),
    "bl_do_approve": ("承認する", "Approve"),
    "bl_do_reject": ("却下する", "Reject"),
    "bl_back_queue": ("承認待ちの一覧へ戻る", "Back to the queue"),
    "bl_approved": ("承認しました。", "Approved."),
    "bl_rejected": ("却下しました。", "Rejected."),
    "bl_yen": ("円", "yen"),
    "bl_pay": ("使用料のお支払い", "Pay the fee"),
    "bl_deadline": ("お支払い期限", "Pay by"),
    "bl_deadline_note": ("期限までにお支払いがない場合、予約は自動的に取り消されます。",
                         "Unpaid by then, the booking is cancelled automatically."),
    "bl_balance": ("地域通貨の残高", "Your local currency"),
    "bl_method": ("お支払い方法", "How you pay"),
    "bl_with_currency": ("地域通貨で支払う", "With local currency"),
    "bl_with_coupon": ("クーポンで支払う", "With a coupon"),
    "bl_coupon_value": ("額面", "worth"),
    "bl_coupon_expires": ("有効期限", "expires"),
    "bl_no_coupon": ("この施設で使えるクーポンはありません。", "You have no coupon this facility accepts."),
    "bl_coupon_note": ("クーポンの額面が使用料を上回る場合、差額は返金されません。",
                       "A coupon worth more than the fee gives no change."),
    "bl_next": ("確認へ進む", "Continue"),
    "bl_confirm_pay": ("お支払い内容の確認", "Confirm the payment"),
    "bl_confirm_pay_text": ("以下の内容で支払います。よろしいですか？", "You are about to pay as below. Go ahead?"),
    "bl_do_pay": ("支払う", "Pay"),
    "bl_change": ("戻って変更する", "Go back and change"),
    "bl_paid": ("お支払いが完了しました。", "Paid. Thank you."),
    "bl_paid_on": ("支払日時", "Paid on"),
    "bl_paid_with": ("支払方法", "Paid with"),
    "bl_paid_with_currency": ("地域通貨", "local currency"),
    "bl_paid_with_coupon": ("クーポン", "coupon"),
    "bl_paid_with_counter": ("窓口（現金）", "cash at the counter"),
    "bl_state": ("状態", "State"),
    "bl_state_requested": ("承認待ち", "Waiting for approval"),
    "bl_state_offered": ("繰上げのご案内中", "Offered to you"),
    "bl_state_confirmed": ("確定", "Confirmed"),
    "bl_state_checked_in": ("利用中", "Checked in"),
    "bl_state_cancelled": ("取消", "Cancelled"),
    "bl_state_rejected": ("却下", "Rejected"),
    "bl_state_no_show": ("不参加", "No-show"),
    "bl_no_fee": ("この予約に使用料はかかりません。", "This booking has no fee."),
    "bl_not_payable": ("この予約は現在お支払いいただけません。", "This booking cannot be paid now."),
    "bl_refund": ("返金予定額", "To be refunded"),
    "bl_cancellation_fee": ("キャンセル料", "Cancellation fee"),
    "bl_my_bookings": ("予約一覧へ", "My bookings"),
    "bl_wallet": ("マイポイント（残高）", "My points (balances)"),
})
add_nav("bl_nav_approvals", "/staff/bookings/approvals", "staff")


def _jst(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(JST).strftime(fmt)


def _when(b: c.Booking) -> str:
    weekday = "月火水木金土日"[b.start.astimezone(JST).weekday()]
    return f"{_jst(b.start, '%Y-%m-%d')}（{weekday}） {_jst(b.start, '%H:%M')}–{_jst(b.end, '%H:%M')}"


def _page(request: Request, template: str, *, user: ic.User, status: int = 200, **ctx: Any) -> HTMLResponse:
    return render(request, f"bookings/{template}", status=status, user=user, jst=_jst, when=_when,
                  yen=lambda n: f"{n:,}", **ctx)


async def _bookings(request: Request, endpoint: str, payload: Any) -> Any:
    return await call(request, c.SERVICE, endpoint, payload)


def _refusal(request: Request, exc: Exception, user: ic.User, back: tuple[str, str]) -> HTMLResponse:
    lang = ps.lang(request)
    return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=bad_status(exc),
                   user=user, link=back)


# ---- staff: the approval queue ----------------------------------------------------------------------------------


async def _queue(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    lang = ps.lang(request)
    q = request.query_params
    try:
        day = date.fromisoformat(q["date"]) if q.get("date") else None
        query = lc.ApprovalsQuery(actor=actor_of(user), facility_id=q.get("facility_id") or None, date=day)
        waiting = c.BookingList.model_validate(await _bookings(request, lc.EP_APPROVALS, query)).bookings
        facilities = c.FacilityList.model_validate(await _bookings(request, c.EP_FACILITY_LIST,
                                                                   c.FacilityListQuery())).root
    except (ValueError, errors.ServiceError) as exc:
        return _refusal(request, exc, user, back=("/staff/bookings/approvals", t("bl_approvals", lang)))
    names = {f.id: (f.name_en if lang == "en" else f.name_ja) for f in facilities}
    return _page(request, "life_approvals.html", user=user, status=status, waiting=waiting, names=names,
                 facilities=facilities, chosen=q.get("facility_id", ""), day=q.get("date", ""), **ctx)


@router.get("/staff/bookings/approvals", response_class=HTMLResponse)
async def approvals_page(request: Request, user: StaffUser) -> Response:
    done = request.query_params.get("done")
    notice = t(f"bl_{done}", ps.lang(request)) if done in ("approved", "rejected") else None
    return await _queue(request, user, notice=notice)


async def _decide(request: Request, booking_id: str, form: dict[str, Any], user: ic.User, action: str) -> Response:
    """Without `confirm`: the confirmation page (the booking, a note or the reason); with it: the decision."""
    lang = ps.lang(request)
    back = ("/staff/bookings/approvals", t("bl_back_queue", lang))
    try:
        booking = c.Booking.model_validate(await _bookings(request, c.EP_BOOKING_GET, c.BookingAction(
            actor=actor_of(user), booking_id=booking_id)))
        facility = c.Facility.model_validate(await _bookings(request, c.EP_FACILITY_GET,
                                                             c.FacilityQuery(facility_id=booking.facility_id)))
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user, back)
    error = None
    if form.get("confirm") == "1":
        try:
            if action == "approve":
                payload: Any = lc.Decision(actor=actor_of(user), booking_id=booking_id, note=form.get("note", ""))
            else:
                payload = lc.Rejection(actor=actor_of(user), booking_id=booking_id, reason=form.get("reason", ""))
            await _bookings(request, lc.EP_APPROVE if action == "approve" else lc.EP_REJECT, payload)
            return RedirectResponse(f"/staff/bookings/approvals?done={action}d", status_code=303)
        except (ValidationError, errors.ServiceError) as exc:
            if isinstance(exc, errors.ServiceError) and exc.error_code == lc.NOT_REQUESTED.code:
                return _refusal(request, exc, user, back)
            error = why(exc, lang)
    return _page(request, "life_decide.html", user=user, status=400 if error else 200, b=booking, action=action,
                 facility=facility, error=error, form=form)


@router.post("/staff/bookings/{booking_id}/approve")
async def approve(booking_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _decide(request, booking_id, form, user, "approve")


@router.post("/staff/bookings/{booking_id}/reject")
async def reject(booking_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _decide(request, booking_id, form, user, "reject")


# ---- a resident: paying one booking -----------------------------------------------------------------------------


async def _pay_page(request: Request, booking_id: str, user: ic.User, *, status: int = 200, template: str =
                    "life_pay.html", **ctx: Any) -> Response:
    lang = ps.lang(request)
    try:
        booking = c.Booking.model_validate(await _bookings(request, c.EP_BOOKING_GET, c.BookingAction(
            actor=actor_of(user), booking_id=booking_id)))
        facility = c.Facility.model_validate(await _bookings(request, c.EP_FACILITY_GET,
                                                             c.FacilityQuery(facility_id=booking.facility_id)))
        wallet = cc.Wallet.model_validate(await call_points(request, cc.EP_WALLET, pc.PersonQuery(person=user.id)))
        coupons = cc.CouponList.model_validate(await call_points(request, cc.EP_COUPON_MINE,
                                                                 pc.PersonQuery(person=user.id))).coupons
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user, back=("/bookings", t("bl_my_bookings", lang)))
    balance = next((b.balance for b in wallet.balances if b.kind == "currency"), 0)
    usable = [cp for cp in coupons if cp.status == "active" and cp.type_code in facility.rules.coupon_types
              and cp.price >= booking.fee]
    name = facility.name_en if lang == "en" else facility.name_ja
    return _page(request, template, user=user, status=status, b=booking, facility_name=name, balance=balance,
                 coupons=usable, **ctx)


@router.get("/bookings/{booking_id}/pay", response_class=HTMLResponse)
async def pay_page(booking_id: str, request: Request, user: CurrentUser) -> Response:
    notice = t("bl_paid", ps.lang(request)) if request.query_params.get("paid") else None
    return await _pay_page(request, booking_id, user, notice=notice)


@router.post("/bookings/{booking_id}/pay")
async def pay(booking_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """Without `confirm`: the confirmation page of what was chosen; with it: the payment."""
    lang = ps.lang(request)
    method, _, coupon_id = str(form.get("choice", "")).partition(":")  # "currency" or "coupon:<id>"
    try:
        data = lc.PayIn(actor=actor_of(user), booking_id=booking_id, method=method,
                        coupon_id=coupon_id or None)
        if form.get("confirm") == "1":
            await _bookings(request, lc.EP_PAY, data)
            return RedirectResponse(f"/bookings/{booking_id}/pay?paid=1", status_code=303)
    except (ValidationError, errors.ServiceError) as exc:
        return await _pay_page(request, booking_id, user, status=bad_status(exc), error=why(exc, lang), form=form)
    return await _pay_page(request, booking_id, user, template="life_pay_confirm.html", method=method,
                           coupon_id=coupon_id)
