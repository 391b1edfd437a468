"""The portal's waitlist (キャンセル待ち) and recurring bookings (定期予約) pages for a logged-in person: their place
in line and the slots offered to them (accept or decline before the deadline), a form to book a weekly or monthly
series with the report of the dates not had, and a series' page to cancel or change one date, the following ones, or
all, after a confirmation. Each page asks the bookings service (svc.<node>.bookings.waitlist.*, .series.*) with the
person as an Actor; the service decides what they may do."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from gateway import words
from gateway.deps import CsrfForm, CurrentUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_waitlist as w
from towntip.kernel.contracts import identity as ic

router = APIRouter(include_in_schema=False)

WEEKDAY_WORDS = {"mon": ("月", "Mon"), "tue": ("火", "Tue"), "wed": ("水", "Wed"), "thu": ("木", "Thu"),
                 "fri": ("金", "Fri"), "sat": ("土", "Sat"), "sun": ("日", "Sun")}
NTH_WORDS = {"1": ("第1", "1st"), "2": ("第2", "2nd"), "3": ("第3", "3rd"), "4": ("第4", "4th"), "5": ("第5", "5th"),
             "-1": ("最終", "last")}
# series.conflicts' reason: "YYYY-MM-DD code; …" (contracts.bookings_waitlist)
CONFLICT = re.compile(r"(\d{4}-\d{2}-\d{2}) ([a-z_]+\.[a-z_]+)")

add_words({
    "wl_nav": ("キャンセル待ち・定期予約", "Waitlist & series"),
    "wl_title": ("キャンセル待ちと定期予約", "Waitlist and recurring bookings"),
    "wl_offers": ("空きが出ました（ご案内中）", "Slots offered to you"),
    "wl_offer_hint": ("期限までに「予約する」を押してください。期限を過ぎると次の方にご案内します。",
                      "Accept before the deadline, or the slot goes to the next in line."),
    "wl_deadline": ("承諾期限", "Accept by"),
    "wl_accept": ("予約する", "Book it"),
    "wl_decline": ("辞退する", "Decline"),
    "wl_waiting": ("キャンセル待ち中", "Waiting"),
    "wl_position": ("待ち順", "Place in line"),
    "wl_nth": ("番目", ""),
    "wl_leave": ("キャンセル待ちをやめる", "Leave the waitlist"),
    "wl_none": ("キャンセル待ちはありません。", "You are not waiting for any slot."),
    "wl_join": ("キャンセル待ちに登録", "Join the waitlist"),
    "wl_join_hint": ("予約済みの枠を選ぶと、キャンセルが出たときに順番にご案内します。",
                     "Choose a taken slot: when it is cancelled, it is offered in order of joining."),
    "wl_joined": ("キャンセル待ちに登録しました。", "You are on the waitlist."),
    "wl_left": ("キャンセル待ちをやめました。", "You left the waitlist."),
    "wl_accepted": ("予約しました。", "Booked."),
    "wl_declined": ("辞退しました。次の方にご案内します。", "Declined: the next in line gets the offer."),
    "wl_facility": ("施設", "Facility"),
    "wl_date": ("日付", "Date"),
    "wl_start": ("開始時刻", "Start"),
    "wl_end": ("終了時刻", "End"),
    "wl_purpose": ("利用目的", "Purpose"),
    "wl_series_list": ("定期予約", "Recurring bookings"),
    "wl_series_none": ("定期予約はありません。", "No recurring booking."),
    "wl_series_new": ("定期予約を申し込む", "Book a recurring series"),
    "wl_series_hint": ("毎週・隔週の曜日、または毎月第○曜日で、まとめて予約します。"
                       "予約できなかった日は理由とともに表示します（最大52回）。",
                       "Book every week (or every few weeks) on given weekdays, or monthly on the nth weekday. "
                       "Dates that cannot be had are listed with the reason (52 dates at most)."),
    "wl_kind_weekly": ("毎週（曜日）", "Weekly (weekdays)"),
    "wl_kind_monthly": ("毎月（第○曜日）", "Monthly (nth weekday)"),
    "wl_every_weeks": ("何週ごと", "Every how many weeks"),
    "wl_weekdays": ("曜日", "Weekdays"),
    "wl_nth_label": ("第○", "Which"),
    "wl_weekday": ("曜日", "Weekday"),
    "wl_first_day": ("開始日", "First day"),
    "wl_last_day": ("終了日（または回数）", "Last day (or a count)"),
    "wl_count": ("回数", "Count"),
    "wl_book_series": ("まとめて予約する", "Book the series"),
    "wl_booked_dates": ("予約できた日", "Dates booked"),
    "wl_missed_dates": ("予約できなかった日", "Dates not had"),
    "wl_series_created": ("定期予約を受け付けました。", "The series is booked."),
    "wl_series": ("定期予約の詳細", "Recurring booking"),
    "wl_pattern": ("くり返し", "Repeats"),
    "wl_every": ("毎週", "Every week"),
    "wl_every_n": ("週ごと", "weeks apart"),
    "wl_monthly": ("毎月", "Every month"),
    "wl_state_requested": ("承認待ち", "Awaiting approval"),
    "wl_state_offered": ("ご案内中", "Offered"),
    "wl_state_confirmed": ("予約済み", "Booked"),
    "wl_state_checked_in": ("利用中", "Checked in"),
    "wl_state_cancelled": ("取消", "Cancelled"),
    "wl_state_rejected": ("不承認", "Rejected"),
    "wl_state_no_show": ("不参加", "No-show"),
    "wl_change": ("変更・取消", "Change or cancel"),
    "wl_which": ("対象の回", "Which date"),
    "wl_scope": ("範囲", "Scope"),
    "wl_scope_one": ("この回のみ", "This one"),
    "wl_scope_following": ("この回以降", "This and the following"),
    "wl_scope_all": ("すべて（今後の回）", "All (still to come)"),
    "wl_action": ("内容", "What"),
    "wl_action_cancel": ("取り消す", "Cancel"),
    "wl_action_change": ("時間・目的を変更する", "Change the time or purpose"),
    "wl_new_time_hint": ("時間を変える場合は開始・終了の両方を、目的だけなら目的のみ入力してください。",
                         "For a new time give both start and end; for the purpose only, just the purpose."),
    "wl_next": ("確認へ進む", "Continue"),
    "wl_confirm": ("次の内容で実行します。よろしいですか。", "This will be done. Are you sure?"),
    "wl_do_it": ("実行する", "Do it"),
    "wl_back": ("戻る", "Back"),
    "wl_changed": ("変更しました。", "Changed."),
    "wl_conflicts": ("次の日は新しい時間で予約できません", "These dates cannot have the new time"),
    "wl_my_waitlist": ("キャンセル待ち・定期予約の一覧", "Waitlist and series"),
})
add_nav("wl_nav", "/bookings/waitlist", "user", "mine")


async def _ask(request: Request, endpoint: str, payload: BaseModel) -> Any:
    return await call(request, c.SERVICE, endpoint, payload)


def _jst(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(JST).strftime(fmt)


def _day(value: Any, lang: str) -> str:
    """2026-11-10（火）"""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    wd = c.WEEKDAYS[when.weekday()]
    ja, en = WEEKDAY_WORDS[wd]
    return f"{when:%Y-%m-%d}（{ja}）" if lang != "en" else f"{when:%Y-%m-%d} ({en})"


def _page(request: Request, template: str, *, user: ic.User, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    return render(request, f"bookings/{template}", status=status, user=user, jst=_jst,
                  day=lambda v: _day(v, lang), code_words=lambda code: words.words(code, lang, default=code),
                  wd=lambda k: WEEKDAY_WORDS[k][1 if lang == "en" else 0],
                  nth=lambda k: NTH_WORDS[str(k)][1 if lang == "en" else 0], weekdays=c.WEEKDAYS, **ctx)


def _refusal(request: Request, exc: Exception, user: ic.User) -> HTMLResponse:
    lang = ps.lang(request)
    return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=bad_status(exc),
                   user=user, link=("/bookings/waitlist", t("wl_my_waitlist", lang)))


async def _facilities(request: Request) -> list[c.Facility]:
    return c.FacilityList.model_validate(await _ask(request, c.EP_FACILITY_LIST, c.FacilityListQuery())).root


def _at(day: Any, hm: Any) -> str:
    """A date and a time typed in a form, as an ISO time in Japan (the contract refuses what does not parse)."""
    return f"{str(day or '').strip()}T{str(hm or '').strip()}:00+09:00"


# ---- the waitlist and offers ------------------------------------------------------------------------------------


async def _waitlist_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    actor = actor_of(user)
    try:
        entries = w.WaitlistList.model_validate(await _ask(request, w.EP_WAITLIST_MINE,
                                                           w.WaitlistMineQuery(actor=actor))).entries
        mine = w.SeriesList.model_validate(await _ask(request, w.EP_SERIES_MINE, w.SeriesMineQuery(actor=actor)))
        places = await _facilities(request)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    names = {f.id: f.name_ja if ps.lang(request) != "en" else f.name_en for f in places}
    return _page(request, "waitlist_mine.html", user=user, status=status,
                 offers=[e for e in entries if e.state == "offered"],
                 waiting=[e for e in entries if e.state == "waiting"], series=mine.series, facilities=places,
                 names=names, **ctx)


NOTICES = {"joined": "wl_joined", "left": "wl_left", "accepted": "wl_accepted", "declined": "wl_declined"}


@router.get("/bookings/waitlist", response_class=HTMLResponse)
async def waitlist_page(request: Request, user: CurrentUser) -> Response:
    done = request.query_params.get("done", "")
    notice = t(NOTICES[done], ps.lang(request)) if done in NOTICES else None
    return await _waitlist_page(request, user, notice=notice)


async def _act(request: Request, user: ic.User, form: dict[str, Any], endpoint: str, make: Any, done: str
               ) -> Response:
    try:
        await _ask(request, endpoint, make())
    except (ValidationError, errors.ServiceError) as exc:
        return await _waitlist_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)),
                                    form=form)
    return RedirectResponse(f"/bookings/waitlist?done={done}", status_code=303)


@router.post("/bookings/waitlist/join")
async def join(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, user, form, w.EP_WAITLIST_JOIN, lambda: w.WaitlistJoin(
        actor=actor_of(user), facility_id=str(form.get("facility_id", "")),
        start=_at(form.get("date"), form.get("start")), end=_at(form.get("date"), form.get("end")),
        purpose=str(form.get("purpose", ""))), "joined")


@router.post("/bookings/waitlist/{entry_id}/leave")
async def leave(entry_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, user, form, w.EP_WAITLIST_LEAVE, lambda: w.WaitlistAction(
        actor=actor_of(user), entry_id=entry_id), "left")


@router.post("/bookings/waitlist/offers/{booking_id}/accept")
async def accept(booking_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, user, form, w.EP_OFFER_ACCEPT, lambda: w.OfferAction(
        actor=actor_of(user), booking_id=booking_id), "accepted")


@router.post("/bookings/waitlist/offers/{booking_id}/decline")
async def decline(booking_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _act(request, user, form, w.EP_OFFER_DECLINE, lambda: w.OfferAction(
        actor=actor_of(user), booking_id=booking_id), "declined")


# ---- series -----------------------------------------------------------------------------------------------------


async def _new_series_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        places = await _facilities(request)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    ctx.setdefault("form", {"kind": "weekly", "every_weeks": "1"})
    return _page(request, "waitlist_series_new.html", user=user, status=status, facilities=places, **ctx)


@router.get("/bookings/series/new", response_class=HTMLResponse)
async def new_series(request: Request, user: CurrentUser) -> Response:
    return await _new_series_page(request, user)


def _pattern(form: Any) -> dict[str, Any]:
    if form.get("kind") == "monthly":
        nth = str(form.get("nth", ""))
        return {"kind": "monthly", "nth": int(nth) if nth.lstrip("-").isdigit() else nth,
                "weekday": form.get("weekday", "")}
    return {"kind": "weekly", "every_weeks": form.get("every_weeks") or 1, "weekdays": form.getlist("weekdays")}


@router.post("/bookings/series/new")
async def book_series(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    raw = await request.form()  # the weekdays are a list (CsrfForm keeps one value per name)
    try:
        data = w.SeriesCreate.model_validate({
            "actor": actor_of(user), "facility_id": form.get("facility_id", ""),
            "start_time": form.get("start_time", ""), "end_time": form.get("end_time", ""),
            "pattern": _pattern(raw), "first_day": form.get("first_day", ""),
            "last_day": form.get("last_day") or None, "count": form.get("count") or None,
            "purpose": form.get("purpose", "")})
        report = w.SeriesReport.model_validate(await _ask(request, w.EP_SERIES_CREATE, data))
    except (ValidationError, errors.ServiceError) as exc:
        return await _new_series_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)),
                                      form={**form, "weekdays": raw.getlist("weekdays")})
    return RedirectResponse(f"/bookings/series/{report.series.id}?created=1", status_code=303)


async def _series_page(request: Request, series_id: str, user: ic.User, *, status: int = 200, **ctx: Any
                       ) -> Response:
    try:
        detail = w.SeriesDetail.model_validate(await _ask(request, w.EP_SERIES_GET, w.SeriesQuery(
            actor=actor_of(user), series_id=series_id)))
        places = {f.id: f for f in await _facilities(request)}
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    f = places.get(detail.series.facility_id)
    name = (f.name_en if ps.lang(request) == "en" else f.name_ja) if f else detail.series.facility_id
    return _page(request, "waitlist_series.html", user=user, status=status, detail=detail, s=detail.series,
                 facility_name=name, **ctx)


@router.get("/bookings/series/{series_id}", response_class=HTMLResponse)
async def series_page(series_id: str, request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    q = request.query_params
    notice = t("wl_series_created", lang) if q.get("created") else t("wl_changed", lang) if q.get("changed") else None
    return await _series_page(request, series_id, user, notice=notice)


def _change_of(series_id: str, user: ic.User, form: dict[str, Any]) -> w.SeriesChange:
    change = form.get("action") == "change"
    return w.SeriesChange(
        actor=actor_of(user), series_id=series_id, scope=form.get("scope", ""),
        booking_id=form.get("booking_id") or None, action=form.get("action", ""),
        start_time=(form.get("start_time") or None) if change else None,
        end_time=(form.get("end_time") or None) if change else None,
        purpose=(form.get("purpose") or None) if change else None)


@router.post("/bookings/series/{series_id}/change")
async def change_series(series_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """First a confirmation page (what will be done, to which dates); the confirmed form does it."""
    lang = ps.lang(request)
    try:
        change = _change_of(series_id, user, form)
        if form.get("confirm") != "1":
            detail = w.SeriesDetail.model_validate(await _ask(request, w.EP_SERIES_GET, w.SeriesQuery(
                actor=actor_of(user), series_id=series_id)))
            chosen = next((b for b in detail.bookings if b.id == change.booking_id), None)
            return _page(request, "waitlist_series_confirm.html", user=user, s=detail.series, change=change,
                         chosen=chosen, form=form)
        await _ask(request, w.EP_SERIES_CHANGE, change)
    except (ValidationError, errors.ServiceError) as exc:
        conflicts = []
        if getattr(exc, "error_code", None) == w.SERIES_CONFLICTS.code:
            conflicts = [(d, words.words(code, lang, default=code)) for d, code in CONFLICT.findall(str(
                getattr(exc, "reason", "")))]
        return await _series_page(request, series_id, user, status=bad_status(exc), error=why(exc, lang),
                                  conflicts=conflicts, form=form)
    return RedirectResponse(f"/bookings/series/{series_id}?changed=1", status_code=303)
