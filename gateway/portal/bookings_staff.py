"""The bookings staff's pages (issue 17, point 8): the landing /staff/bookings; facilities and their rules (a form
that creates or replaces one through facilities.put); 窓口予約 (booking at the counter for a resident by their global
ID, or for a walk-in by name and phone); the day sheet (当日の利用一覧), printable; and the usage figures (稼働率 per
facility and month, by user class) with an SVG chart and a CSV download."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, StaffUser
from gateway.portal import session as ps
from gateway.portal.bookings import bookings_page, day_label, now_jst, parse_day, refusal_page
from gateway.portal.common import actor_of, add_nav, bad_status, call, why
from gateway.portal.i18n import add_words, t
from gateway.portal.notebook import bar_chart
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_portal as p
from towntip.kernel.contracts import identity as ic

router = APIRouter(include_in_schema=False)

add_words({
    "nav_staff_bookings": ("施設予約（職員）", "Bookings (staff)"),
    "bs_title": ("施設予約の管理", "Facility bookings: staff"),
    "bs_day": ("当日の利用一覧", "Day sheet"), "bs_usage": ("利用状況（稼働率）", "Usage (occupancy)"),
    "bs_counter": ("窓口予約", "Book at the counter"), "bs_facilities": ("施設と利用のきまり", "Facilities and rules"),
    "bs_new_facility": ("施設を登録", "Add a facility"), "bs_edit": ("編集", "Edit"),
    "bs_facility_form": ("施設の登録・編集", "Add or edit a facility"),
    "bs_id": ("施設ID（半角英小文字・数字・-）", "Facility id (a-z, 0-9, -)"),
    "bs_name_ja": ("名称（日本語）", "Name (Japanese)"), "bs_name_en": ("名称（英語）", "Name (English)"),
    "bs_kind": ("種類（room, hall, kitchen など）", "Kind (room, hall, kitchen, …)"),
    "bs_lat": ("緯度", "Latitude"), "bs_lon": ("経度", "Longitude"), "bs_note": ("備考", "Note"),
    "bs_hours": ("曜日ごとの開館時間（空欄の曜日は閉館）", "Opening hours per weekday (blank: closed)"),
    "bs_closed_weekdays": ("定休日（曜日）", "Closed weekdays"),
    "bs_closed_dates": ("休館日（日付、1行に1日: 2026-12-01）", "Closed dates (one a line: 2026-12-01)"),
    "bs_closed_yearly": ("毎年の休館日（月-日をカンマ区切り: 12-29, 12-30）",
                         "Closed every year (month-day, commas: 12-29, 12-30)"),
    "bs_holidays": ("祝日は休館", "Closed on public holidays"),
    "bs_layout": ("予約枠", "Slot layout"), "bs_layout_blocks": ("区分（午前・午後・夜間など）", "Blocks"),
    "bs_layout_grid": ("時間単位", "Grid"),
    "bs_blocks": ("区分（1行に1つ: 名称,英語名,開始,終了,市内団体,市外,営利の料金）",
                  "Blocks (one a line: name,English name,start,end,fee city group,outside,commercial)"),
    "bs_step": ("時間単位（分）", "Step (minutes)"),
    "bs_step_fees": ("1単位あたりの料金（市内団体,市外,営利）", "Fee per step (city group,outside,commercial)"),
    "bs_buffer": ("利用後の準備時間（分）", "Buffer after each booking (minutes)"),
    "bs_max_days_ahead": ("何日先まで予約できるか", "Days ahead bookings open"),
    "bs_min_notice": ("何分前まで予約できるか", "Minimum notice (minutes)"),
    "bs_max_per_month": ("1人あたり月の上限件数（空欄: なし）", "Bookings per person a month (blank: no limit)"),
    "bs_max_minutes": ("1回の利用の上限（分、空欄: なし）", "Longest booking (minutes, blank: no limit)"),
    "bs_needs_approval": ("予約に職員の承認が必要", "Bookings need staff approval"),
    "bs_saved": ("施設を保存しました。", "The facility is saved."),
    "bs_date": ("日付", "Date"), "bs_start": ("開始時刻", "Start"), "bs_end": ("終了時刻", "End"),
    "bs_for": ("予約する人", "Booked for"), "bs_for_person": ("登録者（グローバルID）", "A resident (global ID)"),
    "bs_for_walkin": ("来庁者（氏名・電話番号）", "A walk-in (name and phone)"),
    "bs_handle": ("グローバルID（例: hanako@tsurugashima）", "Global ID (e.g. hanako@tsurugashima)"),
    "bs_walkin_name": ("氏名", "Name"), "bs_walkin_phone": ("電話番号", "Phone"),
    "bs_book": ("窓口予約する", "Book"), "bs_booked": ("窓口予約を受け付けました。", "Booked at the counter."),
    "bs_time": ("時間", "Time"), "bs_booker": ("予約者", "Booker"),
    "bs_print": ("印刷はブラウザの印刷機能で。", "Print with the browser."),
    "bs_prev_day": ("← 前日", "← Previous day"), "bs_next_day": ("翌日 →", "Next day →"),
    "bs_nothing": ("この日の予約はありません。", "No booking this day."),
    "bs_month": ("月", "Month"), "bs_show": ("表示", "Show"),
    "bs_open_hours": ("開館枠（時間）", "Open (hours)"), "bs_booked_hours": ("予約（時間）", "Booked (hours)"),
    "bs_rate": ("稼働率", "Occupancy"), "bs_count": ("件数", "Bookings"),
    "bs_csv": ("CSVをダウンロード", "Download CSV"),
    "bs_usage_note": ("稼働率 = 予約された枠の時間 ÷ 予約できた枠の時間（休館日・祝日を除く）。"
                      "確定・利用済み・無断不使用を数えます。",
                      "Occupancy = booked slot time ÷ open slot time (closed days left out); confirmed, checked-in "
                      "and no-show bookings count."),
})
add_nav("nav_staff_bookings", "/staff/bookings", "staff")

WEEK = c.WEEKDAYS


def _blank(v: Any) -> Any:
    v = str(v if v is not None else "").strip()
    return v or None


def _fees(text: str) -> dict[str, int]:
    values = [x.strip() for x in text.split(",")] if text.strip() else []
    return {k: int(v) for k, v in zip(c.USER_CLASSES, values, strict=False) if v}


def facility_data(form: dict[str, Any], raw_weekdays: list[str], actor: Any) -> c.FacilityPut:
    """The facility form as facilities.put takes it (ValueError or ValidationError: the page says why)."""
    hours = {d: {"open": form[f"open_{d}"], "close": form[f"close_{d}"]} for d in WEEK
             if _blank(form.get(f"open_{d}")) and _blank(form.get(f"close_{d}"))}
    if form.get("layout_kind") == "grid":
        layout: dict[str, Any] = {"kind": "grid", "step_minutes": int(form.get("step_minutes") or 30),
                                  "fees_per_step": _fees(str(form.get("step_fees", "")))}
    else:
        blocks = []
        for line in str(form.get("blocks", "")).splitlines():
            if not line.strip():
                continue
            parts = [x.strip() for x in line.replace("，", ",").split(",")]
            if len(parts) < 4:
                raise ValueError("a block needs a name, an English name, a start and an end")
            blocks.append({"name_ja": parts[0], "name_en": parts[1], "start": parts[2], "end": parts[3],
                           "fees": _fees(",".join(parts[4:]))})
        layout = {"kind": "blocks", "blocks": blocks}
    rules = {"max_days_ahead": int(form.get("max_days_ahead") or 90),
             "min_notice_minutes": int(form.get("min_notice_minutes") or 0),
             "max_per_month": _blank(form.get("max_per_month")), "max_minutes": _blank(form.get("max_minutes")),
             "needs_approval": bool(form.get("needs_approval"))}
    return c.FacilityPut.model_validate({
        "actor": actor, "id": str(form.get("id", "")).strip().lower(), "name_ja": form.get("name_ja", ""),
        "name_en": form.get("name_en", ""), "kind": str(form.get("kind") or "room").strip(),
        "address": form.get("address", ""), "lat": _blank(form.get("lat")), "lon": _blank(form.get("lon")),
        "capacity": _blank(form.get("capacity")), "accessibility": form.get("accessibility", ""),
        "note": form.get("note", ""), "hours": hours, "closed_weekdays": raw_weekdays,
        "closed_dates": [x.strip() for x in str(form.get("closed_dates", "")).replace(",", "\n").splitlines()
                         if x.strip()],
        "closed_yearly": [x.strip() for x in str(form.get("closed_yearly", "")).split(",") if x.strip()],
        "closed_on_holidays": bool(form.get("closed_on_holidays")), "layout": layout,
        "buffer_minutes": int(form.get("buffer_minutes") or 0), "rules": rules})


def facility_form(f: c.Facility) -> dict[str, Any]:
    """An existing facility as the form's fields."""
    form: dict[str, Any] = {
        "id": f.id, "name_ja": f.name_ja, "name_en": f.name_en, "kind": f.kind, "address": f.address,
        "lat": "" if f.lat is None else f.lat, "lon": "" if f.lon is None else f.lon,
        "capacity": f.capacity or "", "accessibility": f.accessibility, "note": f.note,
        "closed_weekdays": list(f.closed_weekdays), "closed_dates": "\n".join(str(d) for d in f.closed_dates),
        "closed_yearly": ", ".join(f.closed_yearly), "closed_on_holidays": f.closed_on_holidays,
        "buffer_minutes": f.buffer_minutes, "max_days_ahead": f.rules.max_days_ahead,
        "min_notice_minutes": f.rules.min_notice_minutes, "max_per_month": f.rules.max_per_month or "",
        "max_minutes": f.rules.max_minutes or "", "needs_approval": f.rules.needs_approval,
    }
    for d, h in f.hours.items():
        form[f"open_{d}"], form[f"close_{d}"] = f"{h.open:%H:%M}", f"{h.close:%H:%M}"
    if isinstance(f.layout, c.Blocks):
        form["layout_kind"] = "blocks"
        form["blocks"] = "\n".join(",".join([b.name_ja, b.name_en, f"{b.start:%H:%M}", f"{b.end:%H:%M}",
                                             *(str(b.fees.get(k, 0)) for k in c.USER_CLASSES)])  # type: ignore[call-overload]
                                   for b in f.layout.blocks)
    else:
        form["layout_kind"] = "grid"
        form["step_minutes"] = f.layout.step_minutes
        form["step_fees"] = ",".join(str(f.layout.fees_per_step.get(k, 0)) for k in c.USER_CLASSES)  # type: ignore[call-overload]
    return form


async def _facilities(request: Request) -> list[c.Facility]:
    return c.FacilityList.model_validate(await call(request, c.SERVICE, c.EP_FACILITY_LIST, {})).root


# ---- landing and facilities ---------------------------------------------------------------------------------------


@router.get("/staff/bookings", response_class=HTMLResponse)
async def landing(request: Request, user: StaffUser) -> Response:
    try:
        found = await _facilities(request)
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user)
    today = now_jst().date()
    return bookings_page(request, "staff.html", user=user, facilities=found, today=today, month=f"{today:%Y-%m}")


async def _facility_form_page(request: Request, user: ic.User, form: dict[str, Any], *, status: int = 200,
                              error: str | None = None) -> Response:
    return bookings_page(request, "staff_facility.html", user=user, status=status, error=error, form=form)


@router.get("/staff/bookings/facility", response_class=HTMLResponse)
async def facility_edit(request: Request, user: StaffUser) -> Response:
    fid = request.query_params.get("id")
    form: dict[str, Any] = {"layout_kind": "blocks", "closed_on_holidays": True, "max_days_ahead": 90,
                            "blocks": "午前,morning,09:00,12:00,0,0,0\n午後,afternoon,13:00,17:00,0,0,0\n"
                                      "夜間,evening,18:00,21:30,0,0,0",
                            **{f"open_{d}": "09:00" for d in WEEK}, **{f"close_{d}": "21:30" for d in WEEK}}
    if fid:
        try:
            f = c.Facility.model_validate(await call(request, c.SERVICE, c.EP_FACILITY_GET,
                                                     c.FacilityQuery(facility_id=fid)))
        except (errors.ServiceError, ValidationError) as exc:
            return refusal_page(request, exc, user, link=("/staff/bookings", t("bs_title", ps.lang(request))))
        form = facility_form(f)
    return await _facility_form_page(request, user, form)


@router.post("/staff/bookings/facility")
async def facility_save(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    raw = await request.form()
    weekdays = [str(x) for x in raw.getlist("closed_weekdays")]
    keep = {**form, "closed_weekdays": weekdays}
    try:
        data = facility_data(form, weekdays, actor_of(user).model_dump(mode="json"))
        saved = c.Facility.model_validate(await call(request, c.SERVICE, c.EP_FACILITY_PUT, data))
    except (ValidationError, ValueError) as exc:
        return await _facility_form_page(request, user, keep, status=400, error=why(exc, lang))
    except errors.ServiceError as exc:
        return await _facility_form_page(request, user, keep, status=bad_status(exc), error=why(exc, lang))
    return bookings_page(request, "staff_facility.html", user=user, form=facility_form(saved),
                         notice=t("bs_saved", lang))


# ---- 窓口予約 -----------------------------------------------------------------------------------------------------


async def _counter_page(request: Request, user: ic.User, form: dict[str, Any], *, status: int = 200,
                        error: str | None = None, notice: str | None = None) -> Response:
    try:
        found = await _facilities(request)
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user)
    return bookings_page(request, "staff_counter.html", user=user, status=status, error=error, notice=notice,
                 facilities=found, form=form)


@router.get("/staff/bookings/counter", response_class=HTMLResponse)
async def counter(request: Request, user: StaffUser) -> Response:
    q = request.query_params
    form: dict[str, Any] = {"facility": q.get("facility", ""), "who": "person", "user_class": "city_group",
                            "date": str(now_jst().date())}
    try:
        start, end = datetime.fromisoformat(q["start"]), datetime.fromisoformat(q["end"])
        form.update(date=str(start.astimezone(JST).date()), start=f"{start.astimezone(JST):%H:%M}",
                    end=f"{end.astimezone(JST):%H:%M}")
    except (KeyError, ValueError):
        pass
    return await _counter_page(request, user, form)


def counter_data(form: dict[str, Any], actor: Any) -> c.BookingCreate:
    day = date.fromisoformat(str(form.get("date", "")))
    start = datetime.combine(day, time.fromisoformat(str(form.get("start", ""))), tzinfo=JST)
    end = datetime.combine(day, time.fromisoformat(str(form.get("end", ""))), tzinfo=JST)
    behalf: Any = ({"name": form.get("walkin_name", ""), "phone": form.get("walkin_phone", "")}
                   if form.get("who") == "walkin" else str(form.get("handle", "")).strip())
    return c.BookingCreate.model_validate({
        "actor": actor, "facility_id": form.get("facility", ""), "start": start, "end": end,
        "purpose": form.get("purpose", ""), "user_class": form.get("user_class", "city_group"),
        "on_behalf_of": behalf})


@router.post("/staff/bookings/counter")
async def counter_book(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        data = counter_data(form, actor_of(user).model_dump(mode="json"))
        made = c.Booking.model_validate(await call(request, c.SERVICE, c.EP_BOOKING_CREATE, data))
    except (ValidationError, ValueError) as exc:
        return await _counter_page(request, user, dict(form), status=400, error=why(exc, lang))
    except errors.ServiceError as exc:
        return await _counter_page(request, user, dict(form), status=bad_status(exc), error=why(exc, lang))
    return RedirectResponse(f"/staff/bookings/day?date={made.start.date()}&made={made.id}", status_code=303)


# ---- the day sheet (当日の利用一覧) -------------------------------------------------------------------------------


@router.get("/staff/bookings/day", response_class=HTMLResponse)
async def day_sheet(request: Request, user: StaffUser) -> Response:
    lang = ps.lang(request)
    day = parse_day(request.query_params.get("date"), now_jst().date())
    try:
        sheet = p.DaySheet.model_validate(await call(request, c.SERVICE, p.EP_DAY_SHEET, p.DaySheetQuery(
            actor=actor_of(user), date=day)))
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user, link=("/staff/bookings", t("bs_title", lang)))
    made = request.query_params.get("made")
    return bookings_page(request, "staff_day.html", user=user, sheet=sheet, day=day, title_day=day_label(day, lang),
                 prev_day=day - timedelta(days=1), next_day=day + timedelta(days=1), made=made,
                 notice=t("bs_booked", lang) if made else None)


# ---- usage figures (稼働率) ---------------------------------------------------------------------------------------


def _month(request: Request) -> str:
    month = request.query_params.get("month") or f"{now_jst():%Y-%m}"
    return month


async def _usage(request: Request, user: ic.User) -> p.Usage:
    return p.Usage.model_validate(await call(request, c.SERVICE, p.EP_USAGE, p.UsageQuery(
        actor=actor_of(user), month=_month(request))))


@router.get("/staff/bookings/usage", response_class=HTMLResponse)
async def usage_page(request: Request, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        usage = await _usage(request, user)
    except (errors.ServiceError, ValidationError) as exc:
        return refusal_page(request, exc, user, link=("/staff/bookings/usage", t("bs_usage", lang)))
    name = (lambda u: u.name_en) if lang == "en" else (lambda u: u.name_ja)
    chart = bar_chart([(name(u), round(u.rate * 100, 1)) for u in usage.facilities],
                      label=f"{t('bs_rate', lang)} {usage.month}", unit="%", scale=100)
    by_class = {k: bar_chart([(name(u), round(u.by_class.get(k, 0) / 60, 1)) for u in usage.facilities],
                             label=f"{t('bk_class_' + k, lang)} {t('bs_booked_hours', lang)}", unit="h")
                for k in c.USER_CLASSES}
    return bookings_page(request, "staff_usage.html", user=user, usage=usage, chart=chart, by_class=by_class)


@router.get("/staff/bookings/usage.csv")
async def usage_csv(request: Request, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        usage = await _usage(request, user)
    except (errors.ServiceError, ValidationError) as exc:
        return refusal_page(request, exc, user, link=("/staff/bookings/usage", t("bs_usage", lang)))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["month", "facility_id", "name_ja", "open_minutes", "booked_minutes", "rate", "bookings",
                *(f"booked_minutes_{k}" for k in c.USER_CLASSES)])
    for u in usage.facilities:
        w.writerow([usage.month, u.facility_id, u.name_ja, u.open_minutes, u.booked_minutes, f"{u.rate:.4f}",
                    u.bookings, *(u.by_class.get(k, 0) for k in c.USER_CLASSES)])
    # A byte order mark, so that Excel (what a municipal office opens a CSV with) reads the Japanese names right.
    return Response(("\ufeff" + out.getvalue()).encode(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="usage-{usage.month}.csv"', "Cache-Control": "no-store"})


