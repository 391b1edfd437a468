"""The residents' booking pages (施設予約, issue 17 point 3), phone first and Japanese first: the facilities with their
place and a map link; a facility's rules, fees and availability as a week grid and a day list (free, taken, closed
in words, not only colours); the booking form with a confirmation step; a booking's page (state, fee, due date,
cancel with confirmation); my bookings (upcoming, past, cancelled); and the iCalendar feeds: a facility's busy
times (public) and a person's own bookings at a private URL whose token they can reset.

Everything is asked of the bookings service over NATS with the person as the actor; the service decides."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser
from gateway.portal import ical
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_photos as ph
from towntip.kernel.contracts import bookings_portal as p
from towntip.kernel.contracts import identity as ic

router = APIRouter(include_in_schema=False)

WEEKDAY_JA = ("月", "火", "水", "木", "金", "土", "日")
WEEKDAY_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
UPCOMING = frozenset(c.HOLDING_STATES)

add_words({
    "nav_bookings": ("施設予約", "Book a room"),
    "bk_facilities": ("施設・設備予約", "Facilities"),
    "bk_intro": ("公民館や市民活動推進センターなどの部屋を、空き状況を見て予約できます。",
                 "See when community halls and rooms are free, and book them."),
    "bk_no_facilities": ("予約できる施設はまだありません。", "No facility to book yet."),
    "bk_kind": ("種類", "Kind"), "bk_address": ("所在地", "Address"), "bk_capacity": ("定員", "Capacity"),
    "bk_people": ("人", "people"), "bk_accessibility": ("バリアフリー", "Accessibility"),
    "bk_map": ("地図を開く（OpenStreetMap）", "Open the map (OpenStreetMap)"),
    "bk_hours": ("開館時間", "Opening hours"), "bk_closed_days": ("休館日", "Closed"),
    "bk_holidays": ("祝日", "public holidays"), "bk_yearly": ("毎年", "every year"),
    "bk_fees": ("使用料（1枠あたり）", "Fees (per slot)"), "bk_fees_step": ("使用料（{n}分あたり）",
                                                                   "Fees (per {n} minutes)"),
    "bk_rules": ("利用のきまり", "Rules"),
    "bk_rule_ahead": ("{n}日先まで予約できます。", "Bookings open {n} days ahead."),
    "bk_rule_notice": ("利用開始の{n}分前までに予約してください。", "Book at least {n} minutes before the start."),
    "bk_rule_month": ("1人あたり月{n}件まで予約できます。", "At most {n} bookings per person a month."),
    "bk_rule_minutes": ("1回の利用は{n}分までです。", "At most {n} minutes in one booking."),
    "bk_rule_approval": ("予約は職員の承認後に確定します。", "Bookings are confirmed after staff approve them."),
    "bk_rule_buffer": ("利用後{n}分は準備・片付けのため予約できません。",
                       "{n} minutes after each booking are kept free for tidying up."),
    "bk_availability": ("空き状況", "Availability"), "bk_week": ("週の空き状況", "This week"),
    "bk_day": ("日ごとの空き状況", "One day"),
    "bk_prev_week": ("← 前の週", "← Previous week"), "bk_next_week": ("次の週 →", "Next week →"),
    "bk_free": ("空き", "Free"), "bk_taken": ("予約済", "Booked"), "bk_closed": ("休館", "Closed"),
    "bk_unavailable": ("受付外", "Not open"),
    "bk_legend": ("「空き」を選ぶと予約できます。「受付外」は受付期間の外です。",
                  "Choose a “Free” slot to book it. “Not open” is outside the booking period."),
    "bk_book_this": ("この枠を予約", "Book this slot"), "bk_closed_day": ("この日は休館日です。",
                                                                      "Closed on this day."),
    "bk_new": ("予約の申請", "Book"), "bk_when": ("日時", "When"), "bk_facility": ("施設", "Facility"),
    "bk_purpose": ("利用目的", "Purpose"), "bk_purpose_hint": ("例：自治会の会合、合唱の練習",
                                                          "e.g. residents' meeting, choir practice"),
    "bk_user_class": ("利用区分", "User class"), "bk_fee": ("使用料", "Fee"), "bk_yen": ("円", "yen"),
    "bk_next": ("確認へ進む", "Next: check"), "bk_confirm_heading": ("予約内容の確認", "Check your booking"),
    "bk_confirm_intro": ("この内容で予約します。よろしければ「予約する」を押してください。",
                         "This is what you are booking. Press “Book” if it is right."),
    "bk_submit": ("予約する", "Book"), "bk_back": ("戻って直す", "Go back and change"),
    "bk_other_slot": ("別の枠を選ぶ", "Choose another slot"),
    "bk_booking": ("予約の詳細", "Booking"), "bk_state": ("状態", "State"),
    "bk_made": ("予約を受け付けました。", "Your booking is made."),
    "bk_due": ("支払期限", "Pay by"), "bk_paid": ("支払い", "Paid"), "bk_paid_yes": ("支払済み", "Paid"),
    "bk_unpaid": ("未払い", "Not paid"), "bk_pay": ("使用料を支払う", "Pay the fee"),
    "bk_no_fee": ("使用料はかかりません。", "No fee."),
    "bk_cancel": ("予約を取り消す", "Cancel the booking"),
    "bk_cancel_confirm": ("この予約を取り消しますか？取り消した枠はほかの方が予約できるようになります。",
                          "Cancel this booking? The slot becomes free for others."),
    "bk_cancel_yes": ("取り消す", "Cancel it"), "bk_cancel_no": ("取り消さない", "Keep it"),
    "bk_cancelled_done": ("予約を取り消しました。", "The booking is cancelled."),
    "bk_mine": ("予約の一覧", "My bookings"), "bk_upcoming": ("これからの予約", "Upcoming"),
    "bk_past": ("過去の利用", "Past"), "bk_cancelled_list": ("取消・不承認", "Cancelled or declined"),
    "bk_none": ("ありません。", "None."), "bk_find": ("施設を探して予約する", "Find a room and book it"),
    "bk_counter": ("窓口で予約", "booked at the counter"),
    "bk_feed": ("予約をカレンダーに表示（iCal）", "My bookings in my calendar (iCal)"),
    "bk_feed_intro": ("スマートフォンのカレンダーアプリに、あなたの予約を表示できます。URLは本人専用です。"
                      "ほかの人に知られたら再発行してください（古いURLは使えなくなります）。",
                      "Show your bookings in your phone's calendar app. The address is yours alone: if someone "
                      "else learns it, make a new one (the old one stops working)."),
    "bk_feed_make": ("URLを発行する", "Make my calendar address"),
    "bk_feed_reset": ("URLを再発行する", "Make a new address"),
    "bk_feed_active": ("発行済み（{when}）。URLは発行時に一度だけ表示されます。",
                       "Made on {when}. The address is shown only when it is made."),
    "bk_feed_none": ("まだ発行していません。", "Not made yet."),
    "bk_feed_new": ("カレンダーのURLです。今すぐカレンダーアプリに登録するか、控えてください（再表示はできません）。",
                    "Your calendar address. Add it to your calendar app now or note it: it is not shown again."),
    "bk_facility_feed": ("この施設の予約状況（iCal）", "This facility's bookings (iCal)"),
    "bk_state_requested": ("承認待ち", "Waiting for approval"), "bk_state_offered": ("繰り上げの案内中", "Offered"),
    "bk_state_confirmed": ("確定", "Confirmed"), "bk_state_checked_in": ("利用中（チェックイン済み）",
                                                                       "Checked in"),
    "bk_state_cancelled": ("取消", "Cancelled"), "bk_state_rejected": ("不承認", "Declined"),
    "bk_state_no_show": ("無断不使用", "No-show"),
    "bk_class_city_group": ("市内団体", "Group in the city"), "bk_class_outside": ("市外", "From outside the city"),
    "bk_class_commercial": ("営利", "Commercial"),
    "bk_kind_room": ("会議室・集会室", "Room"), "bk_kind_hall": ("ホール", "Hall"),
    "bk_kind_kitchen": ("調理室", "Kitchen"), "bk_kind_japanese_room": ("和室", "Japanese-style room"),
    "bk_kind_workshop": ("加工室・工作室", "Workshop"),
    "bk_wd_mon": ("月曜", "Mon"), "bk_wd_tue": ("火曜", "Tue"), "bk_wd_wed": ("水曜", "Wed"),
    "bk_wd_thu": ("木曜", "Thu"), "bk_wd_fri": ("金曜", "Fri"), "bk_wd_sat": ("土曜", "Sat"),
    "bk_wd_sun": ("日曜", "Sun"),
})
add_nav("nav_bookings", "/facilities", "all", "join")


# ---- helpers ----------------------------------------------------------------------------------------------------


def now_jst() -> datetime:
    return datetime.now(JST)


def day_label(day: date, lang: str) -> str:
    names = WEEKDAY_EN if lang == "en" else WEEKDAY_JA
    return f"{day.month}/{day.day}({names[day.weekday()]})"


def when_label(start: datetime, end: datetime, lang: str) -> str:
    s, e = start.astimezone(JST), end.astimezone(JST)
    head = f"{s.year}/{day_label(s.date(), lang)}"
    return f"{head} {s:%H:%M}–{e:%H:%M}"


def kind_word(kind: str, lang: str) -> str:
    key = f"bk_kind_{kind}"
    word = t(key, lang)
    return kind if word == key else word


def parse_day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


def fee_of(f: c.Facility, start: datetime, end: datetime) -> dict[str, int] | None:
    """The fee per user class of [start, end) on the facility's layout (as the service will charge it), or None
    when the times are not on the layout (the service then says why)."""
    if isinstance(f.layout, c.Blocks):
        chosen = [b.fees for b in f.layout.blocks if start.time() <= b.start and b.end <= end.time()]
        if not chosen:
            return None
    else:
        steps = int((end - start).total_seconds() // 60) // f.layout.step_minutes
        if steps <= 0:
            return None
        chosen = [f.layout.fees_per_step] * steps
    return {k: sum(fees.get(k, 0) for fees in chosen) for k in c.USER_CLASSES}  # type: ignore[call-overload]


def map_link(f: c.Facility) -> str | None:
    if f.lat is None or f.lon is None:
        return None
    return f"https://www.openstreetmap.org/?mlat={f.lat:.6f}&mlon={f.lon:.6f}#map=17/{f.lat:.6f}/{f.lon:.6f}"


def bookings_page(request: Request, template: str, *, user: ic.User | None, status: int = 200,
                  **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    return render(request, f"bookings/{template}", status=status, user=user, kind_word=lambda k: kind_word(k, lang),
                  when=lambda s, e: when_label(s, e, lang), day_label=lambda d: day_label(d, lang),
                  map_link=map_link, classes=list(c.USER_CLASSES), weekdays=list(c.WEEKDAYS), **ctx)


def refusal_page(request: Request, exc: Exception, user: ic.User | None, *, link: tuple[str, str] | None = None
             ) -> HTMLResponse:
    lang = ps.lang(request)
    status = error_status(exc) if isinstance(exc, errors.ServiceError) else 400
    return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=status, user=user,
                   link=link or ("/facilities", t("bk_facilities", lang)))


async def facility(request: Request, facility_id: str) -> c.Facility:
    try:
        q = c.FacilityQuery(facility_id=facility_id)
    except ValidationError:
        raise errors.NotFound("no such facility", error_code=c.FACILITY_NOT_FOUND.code) from None
    return c.Facility.model_validate(await call(request, c.SERVICE, c.EP_FACILITY_GET, q))


async def photos_of(request: Request, facility_id: str) -> list[ph.FacilityPhoto]:
    """The facility's photos, or none when the service cannot say (the page shows the rest)."""
    try:
        return list(ph.PhotoList.model_validate(await call(request, "bookings", ph.EP_PHOTO_LIST,
                                                           ph.PhotoListQuery(facility_id=facility_id))).root)
    except (errors.ServiceError, ValidationError):
        return []


# ---- the week grid ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    state: str  # free, taken, closed, unavailable, none (no such slot that day)
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Week:
    days: list[date]
    closed: list[bool]
    rows: list[tuple[str, list[Cell]]]  # (row label: a block's name or a time, a cell per day)


def cell_of(slot: c.Slot, closed: bool, busy: list[p.BusyTime]) -> Cell:
    if closed:
        return Cell("closed", slot.start, slot.end)
    if slot.free:
        return Cell("free", slot.start, slot.end)
    if any(b.start < slot.end and slot.start < b.end for b in busy):
        return Cell("taken", slot.start, slot.end)
    return Cell("unavailable", slot.start, slot.end)  # before the notice, past, too far ahead, or a buffer


def week_grid(f: c.Facility, days: list[c.Availability], busy: list[p.BusyTime]) -> Week:
    """Rows are the layout's blocks (午前/午後/夜間) or the grid's start times; columns are the days."""
    labels: list[str] = []
    keyed: list[dict[str, c.Slot]] = []
    for d in days:
        by = {}
        for s in d.slots:
            key = s.name_ja if isinstance(f.layout, c.Blocks) and s.name_ja else f"{s.start.astimezone(JST):%H:%M}"
            by[key] = s
        keyed.append(by)
    if isinstance(f.layout, c.Blocks):
        labels = [b.name_ja for b in f.layout.blocks]
    else:
        labels = sorted({k for by in keyed for k in by})
    rows = [(label, [cell_of(by[label], d.closed, busy) if label in by else Cell("closed" if d.closed else "none")
                     for by, d in zip(keyed, days, strict=True)]) for label in labels]
    return Week(days=[d.date for d in days], closed=[d.closed for d in days], rows=rows)


async def availability(request: Request, facility_id: str, days: list[date]) -> tuple[list[c.Availability],
                                                                                     list[p.BusyTime]]:
    answers = await asyncio.gather(*(call(request, c.SERVICE, c.EP_AVAILABILITY,
                                          c.AvailabilityQuery(facility_id=facility_id, date=d)) for d in days))
    busy = p.Busy.model_validate(await call(request, c.SERVICE, p.EP_FACILITY_BUSY, p.BusyQuery(
        facility_id=facility_id, start=days[0], days=len(days))))
    return [c.Availability.model_validate(a) for a in answers], busy.times


# ---- public pages -----------------------------------------------------------------------------------------------


@router.get("/facilities", response_class=HTMLResponse)
async def facility_list(request: Request, user: OptionalUser) -> Response:
    try:
        found = c.FacilityList.model_validate(await call(request, c.SERVICE, c.EP_FACILITY_LIST, {})).root
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user, link=("/", t("home", ps.lang(request))))
    return bookings_page(request, "facilities.html", user=user, facilities=found)


@router.get("/facilities/{facility_id}.ics")
async def facility_feed(facility_id: str, request: Request) -> Response:
    """A facility's held times as busy blocks (no names, no purposes), from a week back to 62 days on."""
    try:
        busy = p.Busy.model_validate(await call(request, c.SERVICE, p.EP_FACILITY_BUSY, p.BusyQuery(
            facility_id=facility_id, days=p.BUSY_MAX_DAYS)))
    except ValidationError:
        return Response("no such facility", status_code=404, media_type="text/plain")
    except errors.ServiceError as exc:
        return Response(why(exc, "en"), status_code=error_status(exc), media_type="text/plain")
    node = request.app.state.settings.node_id
    body = ical.facility_calendar(busy, node=node, now=now_jst())
    return Response(body, media_type="text/calendar; charset=utf-8", headers={
        "Content-Disposition": f'inline; filename="{busy.facility_id}.ics"', "Cache-Control": "public, max-age=300"})


def closed_note(reason: str | None, lang: str) -> str | None:
    """The service's reason for a closed day, on a Japanese page only where it is Japanese (a holiday's name)."""
    if not reason or lang == "en":
        return reason
    name = reason.removeprefix("public holiday: ")
    return f"{t('bk_holidays', lang)}：{name}" if name != reason else None


def chosen_day(asked: str | None, days: list[c.Availability], today: date) -> date:
    """The day listed under the grid: the one asked for, else today, else the week's first open day."""
    dates = [d.date for d in days]
    picked = parse_day(asked, today)
    if picked in dates:
        return picked
    return next((d.date for d in days if not d.closed), dates[0])


@router.get("/facilities/{facility_id}", response_class=HTMLResponse)
async def facility_page(facility_id: str, request: Request, user: OptionalUser) -> Response:
    lang = ps.lang(request)
    today = now_jst().date()
    asked = request.query_params.get("day")
    monday = parse_day(request.query_params.get("week"), parse_day(asked, today))
    monday -= timedelta(days=monday.weekday())
    days = [monday + timedelta(days=i) for i in range(7)]
    try:
        f = await facility(request, facility_id)
        (week, busy), photos = await asyncio.gather(availability(request, f.id, days), photos_of(request, f.id))
    except errors.ServiceError as exc:
        if exc.error_code == c.AVAILABILITY_RANGE.code:
            return refusal_page(request, exc, user, link=(f"/facilities/{facility_id}", t("bk_availability", lang)))
        return refusal_page(request, exc, user)
    grid = week_grid(f, week, busy)
    day = chosen_day(asked, week, today)
    the_day = next(d for d in week if d.date == day)
    day_cells = [(s, cell_of(s, the_day.closed, busy)) for s in the_day.slots]
    names = WEEKDAY_EN if lang == "en" else WEEKDAY_JA
    return bookings_page(request, "facility.html", user=user, f=f, grid=grid, day=day, the_day=the_day,
                         day_cells=day_cells, monday=monday, prev_week=monday - timedelta(days=7),
                         next_week=monday + timedelta(days=7), today=today, wd=lambda d: names[d.weekday()],
                         closed_note=closed_note(the_day.closed_reason, lang), photos=photos)


# ---- booking ----------------------------------------------------------------------------------------------------


def _times(params: Any) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(str(params.get("start", "")))
    end = datetime.fromisoformat(str(params.get("end", "")))
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("times need an offset")
    return start.astimezone(JST), end.astimezone(JST)


async def _new_page(request: Request, user: ic.User, values: Any, *, status: int = 200, error: str | None = None,
                    review: bool = False) -> Response:
    try:
        f = await facility(request, str(values.get("facility", "")))
        start, end = _times(values)
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user)
    except ValueError as exc:
        return refusal_page(request, exc, user)
    form = {"purpose": values.get("purpose", ""), "user_class": values.get("user_class", "city_group")}
    return bookings_page(request, "new.html", user=user, status=status, error=error, f=f, start=start, end=end,
                 fees=fee_of(f, start, end), form=form, review=review)


@router.get("/bookings/new", response_class=HTMLResponse)
async def new_booking(request: Request, user: CurrentUser) -> Response:
    return await _new_page(request, user, request.query_params)


@router.post("/bookings/new")
async def create_booking(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """Two steps: the form posts here to be reviewed; the review page posts again with `confirm` to book."""
    lang = ps.lang(request)
    if form.get("edit"):  # back from the review to change the purpose or the class
        return await _new_page(request, user, form)
    try:
        start, end = _times(form)
        data = c.BookingCreate(actor=actor_of(user), facility_id=str(form.get("facility", "")), start=start, end=end,
                               purpose=form.get("purpose", ""), user_class=form.get("user_class", "city_group"))
    except (ValidationError, ValueError) as exc:
        return await _new_page(request, user, form, status=400, error=why(exc, lang))
    if form.get("confirm") != "1":
        return await _new_page(request, user, form, review=True)
    try:
        made = c.Booking.model_validate(await call(request, c.SERVICE, c.EP_BOOKING_CREATE, data))
    except errors.ServiceError as exc:
        if isinstance(exc, errors.Unavailable):
            return refusal_page(request, exc, user)
        return await _new_page(request, user, form, status=bad_status(exc), error=why(exc, lang))
    return RedirectResponse(f"/bookings/{made.id}?made=1", status_code=303)


# ---- my bookings ------------------------------------------------------------------------------------------------


@router.get("/bookings", response_class=HTMLResponse)
async def my_bookings(request: Request, user: CurrentUser) -> Response:
    try:
        mine = p.Overview.model_validate(await call(request, c.SERVICE, p.EP_OVERVIEW, p.OverviewQuery(
            actor=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user)
    return bookings_page(request, "mine.html", user=user, upcoming=mine.upcoming, past=mine.past, ended=mine.ended,
                         names=mine.facility_names)


@router.get("/bookings/feed", response_class=HTMLResponse)
async def feed_page(request: Request, user: CurrentUser) -> Response:
    return await _feed_page(request, user)


async def _feed_page(request: Request, user: ic.User, *, token: str | None = None) -> Response:
    try:
        state = p.FeedStatus.model_validate(await call(request, c.SERVICE, p.EP_FEED_STATUS, p.FeedStatusQuery(
            actor=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user)
    base = request.app.state.settings.public_url.rstrip("/")
    url = f"{base}/bookings/feed/{token}.ics" if token else None
    return bookings_page(request, "feed.html", user=user, state=state, url=url,
                 created=state.created_at.astimezone(JST).strftime("%Y-%m-%d %H:%M") if state.created_at else "")


@router.post("/bookings/feed")
async def feed_reset(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        made = p.FeedToken.model_validate(await call(request, c.SERVICE, p.EP_FEED_TOKEN, p.FeedTokenIn(
            actor=actor_of(user))))
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user)
    return await _feed_page(request, user, token=made.token)


@router.get("/bookings/feed/{token}.ics")
async def person_feed(token: str, request: Request) -> Response:
    """A person's bookings for their calendar app: the token in the URL is the only key (no session)."""
    try:
        feed = p.PersonFeed.model_validate(await call(request, c.SERVICE, p.EP_FEED_PERSON, p.FeedQuery(token=token)))
    except ValidationError:
        return Response("no such feed", status_code=404, media_type="text/plain")
    except errors.ServiceError as exc:
        return Response(why(exc, "en"), status_code=error_status(exc), media_type="text/plain")
    base = request.app.state.settings.public_url.rstrip("/")
    body = ical.person_calendar(feed, node=request.app.state.settings.node_id, base=base, now=now_jst())
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"})


async def _booking(request: Request, user: ic.User, booking_id: str) -> tuple[c.Booking, c.Facility]:
    try:
        q = c.BookingAction(actor=actor_of(user), booking_id=booking_id)
    except ValidationError:
        raise errors.NotFound("no such booking", error_code=c.BOOKING_NOT_FOUND.code) from None
    b = c.Booking.model_validate(await call(request, c.SERVICE, c.EP_BOOKING_GET, q))
    return b, await facility(request, b.facility_id)


@router.get("/bookings/{booking_id}", response_class=HTMLResponse)
async def booking_page(booking_id: str, request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        b, f = await _booking(request, user, booking_id)
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user, link=("/bookings", t("bk_mine", lang)))
    notice = t("bk_made", lang) if request.query_params.get("made") else (
        t("bk_cancelled_done", lang) if request.query_params.get("cancelled") else None)
    # Whether it has started is the service's to say (its clock): a late cancel is refused with its words.
    return bookings_page(request, "booking.html", user=user, b=b, f=f, notice=notice, can_cancel=b.state in UPCOMING)


@router.get("/bookings/{booking_id}/cancel", response_class=HTMLResponse)
async def cancel_page(booking_id: str, request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        b, f = await _booking(request, user, booking_id)
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user, link=("/bookings", t("bk_mine", lang)))
    return bookings_page(request, "cancel.html", user=user, b=b, f=f)


@router.post("/bookings/{booking_id}/cancel")
async def cancel_booking(booking_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        await call(request, c.SERVICE, c.EP_BOOKING_CANCEL, c.BookingAction(actor=actor_of(user),
                                                                            booking_id=booking_id))
    except ValidationError:
        return refusal_page(request, errors.NotFound("no such booking", error_code=c.BOOKING_NOT_FOUND.code), user)
    except errors.ServiceError as exc:
        return refusal_page(request, exc, user, link=(f"/bookings/{booking_id}", t("bk_booking", lang)))
    return RedirectResponse(f"/bookings/{booking_id}?cancelled=1", status_code=303)
