"""The portal's event pages (イベント, issue 17 point 7; Japanese first): the events list with date, venue, capacity,
seats left and a sign-up button; an event's page with sign-up and cancellation (a full event puts the person on
its waitlist); the node's upcoming events as an iCalendar feed (/events.ics, with the icalendar library); and the
staff's event form with date, venue and capacity (events.put).

Each page asks the points service over NATS (events.*; sign-up with the person as an Actor inside the request).
Every form is CSRF-protected (gateway.deps.CsrfForm)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import icalendar
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, call_points, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import event_signups as sc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import points as pc

router = APIRouter(include_in_schema=False)

add_words({
    "nav_events": ("イベント", "Events"),
    "nav_staff_events": ("イベント管理", "Manage events"),
    "ev_events": ("イベント", "Events"),
    "ev_intro": ("参加申込ができるイベントの一覧です。"
                 "会場の端末にカードをタッチすると、1イベントにつき1回ポイントが付きます。",
                 "Events you can sign up for. Touch your card at the venue's terminal: an event's points are "
                 "earned once."),
    "ev_none": ("予定されているイベントはありません。", "No upcoming event."),
    "ev_when": ("日時", "When"),
    "ev_venue": ("会場", "Venue"),
    "ev_capacity": ("定員", "Capacity"),
    "ev_seats_left": ("残り", "Seats left"),
    "ev_people": ("人", " people"),
    "ev_no_limit": ("定員なし", "No limit"),
    "ev_full": ("満員（キャンセル待ちで申込）", "Full (sign up for the waitlist)"),
    "ev_waiting": ("キャンセル待ち", "On the waitlist"),
    "ev_points": ("ポイント", "Points"),
    "ev_participant": ("参加", "participant"),
    "ev_volunteer": ("ボランティア", "volunteer"),
    "ev_signup": ("参加を申し込む", "Sign up"),
    "ev_signup_wait": ("キャンセル待ちに申し込む", "Join the waitlist"),
    "ev_cancel": ("申込を取り消す", "Cancel my sign-up"),
    "ev_login": ("ログインして申し込む", "Log in to sign up"),
    "ev_signed_up": ("申込済み", "Signed up"),
    "ev_waitlisted": ("キャンセル待ち（{n}番目）", "On the waitlist (number {n})"),
    "ev_done_signed_up": ("参加を申し込みました。当日は会場の端末にカードをタッチしてください。",
                          "You are signed up. On the day, touch your card at the venue's terminal."),
    "ev_done_waitlisted": ("満員のためキャンセル待ちに登録しました。空きが出ると順に繰り上がり、お知らせします。",
                           "The event is full: you are on the waitlist and will be told when a seat frees."),
    "ev_done_cancelled": ("申込を取り消しました。", "Your sign-up is cancelled."),
    "ev_calendar": ("カレンダーに追加（iCalendar）", "Add to a calendar (iCalendar)"),
    "ev_details": ("詳細", "Details"),
    "ev_closed": ("申込受付は終了しました。", "Sign-up is closed."),
    "ev_undated": ("日時未定", "Date to be decided"),
    "ev_staff": ("イベント管理", "Manage events"),
    "ev_form": ("イベントの登録・編集（日時・会場・定員）", "Add or edit an event (date, venue, capacity)"),
    "ev_code": ("コード（半角英小文字・数字・-_）", "Code (a-z, 0-9, - and _)"),
    "ev_name": ("名称", "Name"),
    "ev_starts": ("開始日時", "Starts"),
    "ev_ends": ("終了日時", "Ends"),
    "ev_venue_name": ("会場名", "Venue name"),
    "ev_venue_facility": ("施設ID（施設予約）", "Facility id (bookings)"),
    "ev_venue_booking": ("予約番号（会場を押さえた予約）", "Booking id (the booking that holds the room)"),
    "ev_participant_points": ("参加ポイント", "Participant points"),
    "ev_volunteer_points": ("ボランティアポイント", "Volunteer points"),
    "ev_save": ("保存", "Save"),
    "ev_saved": ("保存しました。", "Saved."),
    "ev_signups": ("申込者", "Sign-ups"),
    "ev_edit": ("編集", "Edit"),
})
add_nav("nav_events", "/events", "all", "join")
add_nav("nav_staff_events", "/staff/events", "staff")


def jst(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(JST).strftime(fmt)


def when(ev: pc.EventOut, lang: str) -> str:
    """The event's date and times in JST: 2031-06-14（土）10:00–12:00."""
    if ev.starts_at is None:
        return t("ev_undated", lang)
    start = ev.starts_at.astimezone(JST)
    day = "月火水木金土日"[start.weekday()] if lang != "en" else start.strftime("%a")
    out = f"{start:%Y-%m-%d}（{day}）{start:%H:%M}" if lang != "en" else f"{start:%Y-%m-%d} ({day}) {start:%H:%M}"
    if ev.ends_at is not None:
        end = ev.ends_at.astimezone(JST)
        out += f"–{end:%H:%M}" if end.date() == start.date() else f" – {end:%Y-%m-%d %H:%M}"
    return out


async def _events(request: Request) -> list[pc.EventOut]:
    return pc.EventList.model_validate(await call_points(request, pc.EP_EVENT_LIST, None)).events


def upcoming(events: list[pc.EventOut], now: datetime) -> list[pc.EventOut]:
    """Events with a date that have not ended (an event without an end: until a day after its start), soonest
    first."""
    def ends(e: pc.EventOut) -> datetime:
        assert e.starts_at is not None
        return e.ends_at or e.starts_at + timedelta(days=1)
    return sorted((e for e in events if e.starts_at is not None and ends(e) > now), key=lambda e: e.starts_at)  # type: ignore[arg-type,return-value]


async def _mine(request: Request, user: ic.User | None) -> dict[str, sc.Signup]:
    if user is None:
        return {}
    got = sc.SignupList.model_validate(await call_points(request, sc.EP_SIGNUPS_MINE,
                                                         sc.MineQuery(actor=actor_of(user))))
    return {s.code: s for s in got.signups}


def _page(request: Request, template: str, *, user: ic.User | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    return render(request, f"events/{template}", status=status, user=user, jst=jst,
                  when=lambda ev: when(ev, lang), now=datetime.now(JST), **ctx)


def _refusal(request: Request, exc: Exception, user: ic.User | None, back: str = "/events") -> HTMLResponse:
    lang = ps.lang(request)
    status = error_status(exc) if isinstance(exc, errors.ServiceError) else 400
    return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=status, user=user,
                   link=(back, t("ev_events", lang)))


# ---- public: the list, an event, the calendar feed ----------------------------------------------------------------


@router.get("/events", response_class=HTMLResponse)
async def event_list(request: Request, user: OptionalUser) -> Response:
    try:
        found = upcoming(await _events(request), datetime.now(JST))
        mine = await _mine(request, user)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user, back="/")
    return _page(request, "list.html", user=user, events=found, mine=mine)


@router.get("/events.ics")
async def event_feed(request: Request) -> Response:
    """The node's upcoming events as iCalendar (RFC 5545): one VEVENT each, times in UTC, the venue as LOCATION."""
    try:
        found = upcoming(await _events(request), datetime.now(JST))
    except errors.ServiceError as exc:
        return Response(str(exc), status_code=error_status(exc), media_type="text/plain")
    node = request.app.state.settings.node_id
    base = request.app.state.settings.public_url.rstrip("/")
    cal = icalendar.Calendar()
    cal.add("prodid", f"-//TownTip Commons//events {node}//JA")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"イベント Events — {node}")
    for ev in found:
        assert ev.starts_at is not None
        item = icalendar.Event()
        item.add("uid", f"event-{ev.code}@{node}")
        item.add("summary", ev.name)
        item.add("dtstart", ev.starts_at.astimezone(JST))
        item.add("dtend", (ev.ends_at or ev.starts_at + timedelta(hours=1)).astimezone(JST))
        item.add("dtstamp", datetime.now(JST))
        if ev.venue_name:
            item.add("location", ev.venue_name)
        item.add("url", f"{base}/events/{ev.code}")
        seats = "" if ev.seats_left is None else f" 残り{ev.seats_left}席 / {ev.seats_left} seats left."
        item.add("description", f"定員 capacity: {ev.capacity or '-'}.{seats}")
        cal.add_component(item)
    return Response(cal.to_ical(), media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'inline; filename="events-{node}.ics"'})


@router.get("/events/{code}", response_class=HTMLResponse)
async def event_page(request: Request, code: str, user: OptionalUser) -> Response:
    try:
        ev = pc.EventOut.model_validate(await call_points(request, pc.EP_EVENT_GET, pc.EventQuery(code=code)))
        mine = await _mine(request, user)
    except (errors.ServiceError, ValidationError) as exc:
        return _refusal(request, exc, user)
    done = request.query_params.get("done", "")
    notice = t(f"ev_done_{done}", ps.lang(request)) if done in ("signed_up", "waitlisted", "cancelled") else ""
    return _page(request, "event.html", user=user, ev=ev, mine=mine.get(code), notice=notice)


@router.post("/events/{code}/signup")
async def signup(request: Request, code: str, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        got = sc.Signup.model_validate(await call_points(request, sc.EP_SIGNUP,
                                                         sc.SignupIn(actor=actor_of(user), code=code)))
    except (errors.ServiceError, ValidationError) as exc:
        return _refusal(request, exc, user, back=f"/events/{code}")
    return RedirectResponse(f"/events/{code}?done={got.state}", status_code=303)


@router.post("/events/{code}/cancel")
async def cancel(request: Request, code: str, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await call_points(request, sc.EP_SIGNUP_CANCEL, sc.SignupIn(actor=actor_of(user), code=code))
    except (errors.ServiceError, ValidationError) as exc:
        return _refusal(request, exc, user, back=f"/events/{code}")
    return RedirectResponse(f"/events/{code}?done=cancelled", status_code=303)


# ---- staff: date, venue, capacity --------------------------------------------------------------------------------


async def _staff(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    try:
        found = sorted(await _events(request), key=lambda e: (e.starts_at is None, jst(e.starts_at), e.code))
        code = request.query_params.get("code")
        if code and "form" not in ctx:
            ev = next((e for e in found if e.code == code), None)
            if ev is not None:
                ctx["form"] = {**{k: "" if v is None else str(v) for k, v in ev.model_dump().items()},
                               "starts_at": jst(ev.starts_at, "%Y-%m-%dT%H:%M"),
                               "ends_at": jst(ev.ends_at, "%Y-%m-%dT%H:%M")}
                ctx["signups"] = sc.SignupList.model_validate(await call_points(
                    request, sc.EP_SIGNUPS, sc.SignupsQuery(code=code))).signups
    except (errors.ServiceError, ValidationError) as exc:
        return _refusal(request, exc, user)
    return _page(request, "staff.html", user=user, status=status, events=found,
                 saved=bool(request.query_params.get("saved")), **ctx)


@router.get("/staff/events", response_class=HTMLResponse)
async def staff_events(request: Request, user: StaffUser) -> Response:
    return await _staff(request, user)


def _local(v: Any) -> datetime | None:
    """A datetime-local field (no zone: JST is meant)."""
    text = str(v or "").strip()
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=JST)


async def _venue_checked(request: Request, user: ic.User, data: pc.EventIn) -> pc.EventIn:
    """The booking named as the venue holds its room over the event's time (an event without a date: only that it
    holds a room); the venue's facility is the booking's (filled in when left blank). Else event.venue_booking, or
    the bookings service's own refusal (booking.not_found)."""
    booking = bc.Booking.model_validate(await call(request, bc.SERVICE, bc.EP_BOOKING_GET, bc.BookingAction(
        actor=actor_of(user), booking_id=data.venue_booking or "")))
    facility = data.venue_facility or booking.facility_id
    if (booking.state not in bc.HOLDING_STATES or facility != booking.facility_id
            or (data.starts_at is not None and data.starts_at < booking.start)
            or (data.ends_at is not None and data.ends_at > booking.end)
            or (data.starts_at is not None and data.ends_at is None and data.starts_at >= booking.end)):
        raise sc.EVENT_VENUE_BOOKING(f"booking {booking.id} is {booking.state}, at {booking.facility_id} "
                                     f"{booking.start.isoformat()}–{booking.end.isoformat()}")
    return data.model_copy(update={"venue_facility": facility})


@router.post("/staff/events")
async def staff_event_put(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    keep = {k: str(v) for k, v in form.items() if k != "csrf"}
    try:
        blank = {k: (str(form.get(k, "")).strip() or None) for k in
                 ("venue_name", "venue_facility", "venue_booking", "capacity")}
        data = pc.EventIn(code=str(form.get("code", "")).strip().lower(), name=str(form.get("name", "")),
                          participant_points=str(form.get("participant_points", "1")).strip() or 1,
                          volunteer_points=str(form.get("volunteer_points", "5")).strip() or 5,
                          starts_at=_local(form.get("starts_at")), ends_at=_local(form.get("ends_at")), **blank)
        if data.venue_booking:
            data = await _venue_checked(request, user, data)
        await call_points(request, pc.EP_EVENT_PUT, data)
    except ValueError as exc:  # pydantic's ValidationError too
        err = why(exc, lang) if isinstance(exc, ValidationError) else str(exc)
        return await _staff(request, user, status=400, error=err, form=keep)
    except errors.ServiceError as exc:
        return await _staff(request, user, status=error_status(exc), error=why(exc, lang), form=keep)
    return RedirectResponse(f"/staff/events?code={data.code}&saved=1", status_code=303)
