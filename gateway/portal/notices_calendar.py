"""The calendar (issue 18 point 5): a month view for a phone (/calendar) and iCalendar feeds: the node's public
calendar (/calendar.ics), a community's (/communities/<id>/calendar.ics) and a person's private one, reached by a
token only they hold (/calendar/private/<token>.ics).

Each entry comes from the service that owns it, asked over the bus when the page or feed is read: events with dates
(points), briefings of open calls (projects), items collected from other sites (notices), and, for the person, their
bookings (bookings) and event sign-ups (points). Nothing is copied into another service's tables. A source that
does not answer leaves its entries out; the others still show.
"""

from __future__ import annotations

import asyncio
import calendar as monthcal
import hashlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from icalendar import Calendar
from icalendar import Event as VEvent
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.ical import TOKYO
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import bookings_portal as bp
from towntip.kernel.contracts import event_signups as sc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.notices import SERVICE

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
FEED_DAYS_BACK = 31  # a feed shows this many days back ...
FEED_DAYS = 400  # ... and this many ahead in all
MAX_THEMES = 30  # themes whose briefings are asked for (one request each, at once)

add_words(
    {
        "cal_title": ("カレンダー", "Calendar"),
        "cal_intro": (
            "イベント・説明会・地域のお知らせの日程です。",
            "Events, briefings and local happenings by date.",
        ),
        "cal_prev": ("← 前の月", "← Previous month"),
        "cal_next": ("次の月 →", "Next month →"),
        "cal_none": ("この月の予定はありません。", "Nothing this month."),
        "cal_all_day": ("終日", "All day"),
        "cal_kind_event": ("イベント", "Event"),
        "cal_kind_briefing": ("説明会", "Briefing"),
        "cal_kind_collected": ("地域の情報", "Local"),
        "cal_kind_notice": ("お知らせ", "Notice"),
        "cal_kind_booking": ("施設予約", "Booking"),
        "cal_kind_signup": ("申込済み", "Signed up"),
        "cal_subscribe": ("カレンダーアプリに登録（公開）", "Subscribe in a calendar app (public)"),
        "cal_private": ("自分専用のカレンダーURL", "My private calendar URL"),
        "cal_private_intro": (
            "施設予約と申し込んだイベントも入った、あなた専用のURLです。"
            "知った人は誰でも見られるので、他の人に教えないでください。",
            "A URL of your own, with your bookings and sign-ups too. Anyone who has it can read it: "
            "keep it to yourself.",
        ),
        "cal_private_new": (
            "新しいURLです。この画面を離れると二度と表示されません。以前のURLがあれば、それは使えなくなりました。",
            "Your new URL. It is shown only now; any earlier one no longer works.",
        ),
        "cal_private_active": ("{when} に発行したURLが有効です。", "A URL issued {when} is active."),
        "cal_private_none": ("まだ発行していません。", "None issued yet."),
        "cal_private_make": ("URLを発行する", "Issue a URL"),
        "cal_private_reset": ("URLを再発行する（古いURLは無効）", "Issue a new URL (the old one stops working)"),
        "cal_week": ("日,月,火,水,木,金,土", "Sun,Mon,Tue,Wed,Thu,Fri,Sat"),
    }
)
add_nav("cal_title", "/calendar", "all")


@dataclass(frozen=True)
class Entry:
    uid: str  # stable across reads: a calendar app updates the entry rather than adding another
    kind: str  # event, briefing, collected, notice, booking, signup
    title: str
    start: datetime
    end: datetime | None
    all_day: bool = False
    location: str = ""
    url: str = ""
    note: str = ""
    private: bool = False  # the person's own (bookings, sign-ups): only in their feed and their page


# ---- gathering from the services that own the entries ----------------------------------------------------------


async def _collected(request: Request, start: date, days: int, community_id: str | None) -> list[Entry]:
    got = f.CalendarEntries.model_validate(
        await call(request, SERVICE, f.EP_CALENDAR, f.CalendarQuery(start=start, days=days, community_id=community_id))
    )
    base = request.app.state.settings.public_url.rstrip("/")
    dated = [  # the node's own notices to everyone with a date: the whole notice is in each resident's inbox
        Entry(uid=f"notice-{n.id}", kind="notice", title=n.title, start=n.starts_at, end=n.ends_at,
              url=f"{base}/inbox/{n.id}", note=n.sender)
        for n in got.notices
    ]
    return dated + [
        Entry(
            uid=f"collected-{i.id}",
            kind="collected",
            title=i.title,
            start=i.starts_at,
            end=i.ends_at,
            all_day=i.all_day,
            location=i.location or "",
            url=i.link or "",
            note=i.source,
        )
        for i in got.items
        if i.starts_at is not None
    ]


async def _events(request: Request, base: str) -> list[Entry]:
    got = pc.EventList.model_validate(await call(request, pc.SERVICE, pc.EP_EVENT_LIST, None))
    return [
        Entry(
            uid=f"event-{e.code}",
            kind="event",
            title=e.name,
            start=e.starts_at,
            end=e.ends_at,
            location=e.venue_name or "",
            url=f"{base}/events/{e.code}",
        )
        for e in got.events
        if e.starts_at is not None
    ]


async def _briefings(request: Request, base: str) -> list[Entry]:
    themes = prc.ThemeList.model_validate(await call(request, prc.SERVICE, prc.EP_THEME_LIST, prc.ThemeListQuery()))
    lists = await asyncio.gather(
        *(
            call(request, prc.SERVICE, prc.EP_BRIEFING_LIST, prc.ThemeQuery(theme_id=th.id))
            for th in themes.themes[:MAX_THEMES]
        ),
        return_exceptions=True,
    )
    out = []
    for got in lists:
        if isinstance(got, BaseException):
            continue
        bl = prc.BriefingList.model_validate(got)
        out += [
            Entry(
                uid=f"briefing-{b.id}",
                kind="briefing",
                title=f"説明会: {b.title}",
                start=b.starts_at,
                end=b.ends_at,
                location=b.venue or ("オンライン" if b.online else ""),
                url=f"{base}/themes/{bl.theme_id}",
            )
            for b in bl.briefings
        ]
    return out


async def _bookings(request: Request, actor: Actor, base: str) -> list[Entry]:
    got = bp.Overview.model_validate(await call(request, bc.SERVICE, bp.EP_OVERVIEW, bp.OverviewQuery(actor=actor)))
    return [
        Entry(
            uid=f"booking-{hashlib.sha256(b.id.encode()).hexdigest()[:32]}",
            kind="booking",
            title=f"{got.facility_names.get(b.facility_id, b.facility_id)}：{b.purpose}",
            start=b.start,
            end=b.end,
            location=got.facility_names.get(b.facility_id, ""),
            url=f"{base}/bookings/{b.id}",
            private=True,
        )
        for b in got.upcoming
    ]


async def _signups(request: Request, actor: Actor, base: str) -> list[Entry]:
    got = sc.SignupList.model_validate(await call(request, pc.SERVICE, sc.EP_SIGNUPS_MINE, sc.MineQuery(actor=actor)))
    return [
        Entry(
            uid=f"signup-{s.code}",
            kind="signup",
            title=f"申込済み: {s.event_name or s.code}",
            start=s.starts_at,
            end=None,
            url=f"{base}/events/{s.code}",
            private=True,
        )
        for s in got.signups
        if s.starts_at is not None and s.state != "cancelled"
    ]


async def gather(
    request: Request, *, start: date, days: int, actor: Actor | None = None, community_id: str | None = None
) -> list[Entry]:
    """The entries overlapping [start, start + days), soonest first. A community's calendar holds what its feeds
    collected; the node's holds everything public; with an actor, also the person's own."""
    base = request.app.state.settings.public_url.rstrip("/")
    asks: list[Awaitable[list[Entry]]] = [_collected(request, start, days, community_id)]
    if community_id is None:
        asks += [_events(request, base), _briefings(request, base)]
        if actor is not None:
            asks += [_bookings(request, actor, base), _signups(request, actor, base)]
    lo = datetime(start.year, start.month, start.day, tzinfo=JST)
    hi = lo + timedelta(days=days)
    out: list[Entry] = []
    for got in await asyncio.gather(*asks, return_exceptions=True):
        if isinstance(got, BaseException):  # a service down: its entries are missing, the others show
            log.info("calendar: a source did not answer: %r", got)
            continue
        out += [e for e in got if e.start < hi and (e.end or e.start + timedelta(hours=1)) > lo]
    return sorted(out, key=lambda e: (e.start, e.title))


# ---- iCalendar ---------------------------------------------------------------------------------------------------


def to_ical(entries: list[Entry], *, name: str, node: str, now: datetime) -> bytes:
    cal = Calendar()
    for key, value in (
        ("prodid", "-//TownTip Commons//Calendar//JA"),
        ("version", "2.0"),
        ("calscale", "GREGORIAN"),
        ("method", "PUBLISH"),
        ("x-wr-calname", name),
        ("x-wr-timezone", "Asia/Tokyo"),
    ):
        cal.add(key, value)
    for e in entries:
        ev = VEvent()
        ev.add("uid", f"{e.uid}@{node}")
        ev.add("dtstamp", now.astimezone(UTC))
        if e.all_day:
            first = e.start.astimezone(JST).date()
            ev.add("dtstart", first)
            ev.add(
                "dtend",
                (e.end.astimezone(JST) - timedelta(seconds=1)).date() + timedelta(days=1)
                if e.end
                else first + timedelta(days=1),
            )
        else:
            ev.add("dtstart", e.start.astimezone(TOKYO))
            ev.add("dtend", (e.end or e.start + timedelta(hours=1)).astimezone(TOKYO))
        ev.add("summary", e.title)
        ev.add("categories", [e.kind])
        ev.add("class", "PRIVATE" if e.private else "PUBLIC")
        for key, value in (("location", e.location), ("url", e.url), ("description", e.note)):
            if value:
                ev.add(key, value)
        cal.add_component(ev)
    cal.add_missing_timezones()
    return cal.to_ical()


def _ics(body: bytes, filename: str, *, private: bool = False) -> Response:
    headers = {"Content-Disposition": f'inline; filename="{filename}"'}
    headers.update(
        {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
        if private
        else {"Cache-Control": "public, max-age=300"}
    )
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


def _feed_span() -> tuple[date, int]:
    return datetime.now(JST).date() - timedelta(days=FEED_DAYS_BACK), FEED_DAYS


@router.get("/calendar.ics")
async def public_calendar(request: Request) -> Response:
    node = request.app.state.settings.node_id
    start, days = _feed_span()
    entries = await gather(request, start=start, days=days)
    return _ics(to_ical(entries, name=f"{node} カレンダー", node=node, now=datetime.now(JST)), f"{node}.ics")


@router.get("/communities/{community_id}/calendar.ics")
async def community_calendar(request: Request, community_id: str) -> Response:
    try:
        f.CalendarQuery(start=date.today(), community_id=community_id)
    except ValidationError:
        return Response("no such community", status_code=404, media_type="text/plain")
    node = request.app.state.settings.node_id
    start, days = _feed_span()
    entries = await gather(request, start=start, days=days, community_id=community_id)
    return _ics(
        to_ical(entries, name=f"{community_id} カレンダー", node=node, now=datetime.now(JST)), f"{community_id}.ics"
    )


@router.get("/calendar/private/{token}.ics")
async def private_calendar(request: Request, token: str) -> Response:
    """The person's calendar for their calendar app: the token in the URL is the only key (no session)."""
    try:
        holder = f.CalendarHolder.model_validate(
            await call(request, SERVICE, f.EP_CALENDAR_HOLDER, f.CalendarHolderQuery(token=token))
        )
    except ValidationError:
        return Response("no such calendar", status_code=404, media_type="text/plain")
    except errors.ServiceError as exc:
        return Response(why(exc, "en"), status_code=error_status(exc), media_type="text/plain")
    node = request.app.state.settings.node_id
    start, days = _feed_span()
    entries = await gather(request, start=start, days=days, actor=holder.actor)
    body = to_ical(entries, name=f"{node} カレンダー（{holder.actor.global_handle}）", node=node, now=datetime.now(JST))
    return _ics(body, "calendar.ics", private=True)


# ---- the month view ----------------------------------------------------------------------------------------------


def _month(value: str) -> date:
    try:
        first = datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        first = datetime.now(JST).date().replace(day=1)
    return first if 2000 <= first.year <= 2100 else datetime.now(JST).date().replace(day=1)


def _weeks(first: date) -> list[list[date | None]]:
    cal = monthcal.Calendar(firstweekday=6)  # Sunday first, as Japanese wall calendars
    return [
        [d if d.month == first.month else None for d in week]
        for week in cal.monthdatescalendar(first.year, first.month)
    ]


def _by_day(entries: list[Entry], first: date, days: int) -> dict[date, list[Entry]]:
    out: dict[date, list[Entry]] = {}
    for e in entries:
        d0 = e.start.astimezone(JST).date()
        last = (e.end - timedelta(seconds=1)).astimezone(JST).date() if e.end and e.end > e.start else d0
        d = max(d0, first)
        while d <= last and d < first + timedelta(days=days):
            out.setdefault(d, []).append(e)
            d += timedelta(days=1)
    return out


@router.get("/calendar", response_class=HTMLResponse)
async def month_page(request: Request, user: OptionalUser, month: str = "") -> Response:
    first = _month(month)
    days = monthcal.monthrange(first.year, first.month)[1]
    actor = actor_of(user) if user is not None else None
    entries = await gather(request, start=first, days=days, actor=actor)
    prev = (first - timedelta(days=1)).replace(day=1)
    nxt = first + timedelta(days=days)
    return render(
        request,
        "notices/calendar.html",
        user=user,
        first=first,
        weeks=_weeks(first),
        by_day=_by_day(entries, first, days),
        prev=f"{prev:%Y-%m}",
        next=f"{nxt:%Y-%m}",
        today=datetime.now(JST).date(),
        week=t("cal_week", ps.lang(request)).split(","),
        hm=lambda e: "" if e.all_day else e.start.astimezone(JST).strftime("%H:%M"),
    )


@router.get("/calendar/private", response_class=HTMLResponse)
async def private_page(request: Request, user: CurrentUser) -> Response:
    return await _private_page(request, user)


async def _private_page(request: Request, user: ic.User, *, token: str | None = None) -> Response:
    lang = ps.lang(request)
    try:
        state = f.CalendarStatus.model_validate(
            await call(request, SERVICE, f.EP_CALENDAR_STATUS, f.CalendarStatusQuery(actor=actor_of(user)))
        )
    except errors.ServiceError as exc:
        return message(
            request, heading=t("cal_private", lang), paragraphs=[why(exc, lang)], status=error_status(exc), user=user
        )
    base = request.app.state.settings.public_url.rstrip("/")
    created = state.created_at.astimezone(JST).strftime("%Y-%m-%d %H:%M") if state.created_at else ""
    return render(
        request,
        "notices/calendar_private.html",
        user=user,
        state=state,
        created=created,
        url=f"{base}/calendar/private/{token}.ics" if token else None,
    )


@router.post("/calendar/private", response_class=HTMLResponse)
async def private_reset(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        made = f.CalendarToken.model_validate(
            await call(request, SERVICE, f.EP_CALENDAR_TOKEN, f.CalendarTokenIn(actor=actor_of(user)))
        )
    except errors.ServiceError as exc:
        return message(
            request, heading=t("cal_private", lang), paragraphs=[why(exc, lang)], status=error_status(exc), user=user
        )
    return await _private_page(request, user, token=made.token)
