"""The portal's home page, living: what the town offers now (events, communities, themes, cases, donation projects)
and, for a signed-in person, their points, next booking and unread notices; and the town's emblem.

Every section is one bus call, all made at once with a short timeout; a service that is down or slow leaves its
section out and the rest of the page stands. The public sections are the same for everyone, so they are kept per
node for a few seconds: a crowd opening the home page costs the services one round of calls every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from gateway.portal import leaders, pictures
from gateway.portal import session as ps
from gateway.portal.common import actor_of, call, render
from gateway.portal.i18n import add_words, t
from towntip.kernel import categories, errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import bookings_portal as bp
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import pilots as plc
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.town import emblem_of

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

SECTION_TIMEOUT = 0.8  # seconds a section waits for its service before the page goes without it
PUBLIC_TTL = 5.0  # seconds the public sections are reused; a section that failed is asked again after 1 s
FAILED_TTL = 1.0
SHOWN = 3  # cards per section on a phone's first screens
# The notices service (電子私書箱) is being built on another branch: asked by name, its page of unread items
# (one item: only the count is read), shown only when the node runs it and it answers.
NOTICES_SERVICE = "notices"
EP_NOTICES_INBOX = "inbox.list"  # InboxQuery -> InboxPage, whose `unread` counts the whole inbox

# A colour per family of categories (text on them is white: each at least 4.5:1), so cards read at a glance.
FAMILY_COLOURS = pictures.FAMILY_COLOURS  # the cards' illustrations' colours (gateway/portal/pictures.py)

add_words(
    {
        "hm_events": ("近日のイベント", "Upcoming events"),
        "hm_communities": ("活動中のコミュニティ", "Active communities"),
        "hm_themes": ("パートナー募集中のテーマ", "Themes looking for partners"),
        "hm_cases": ("最近の事例", "Recent cases"),
        "hm_projects": ("寄附を受け付けているプロジェクト", "Projects taking donations"),
        "hm_more": ("もっと見る", "See more"),
        "hm_members": ("{n}人が参加", "{n} members"),
        "hm_raised": ("{raised}円 / 目標 {goal}円", "¥{raised} of ¥{goal}"),
        "hm_points": ("わたしのポイント", "My points"),
        "hm_next_booking": ("次の予約", "Next booking"),
        "hm_no_booking": ("予約はありません", "No bookings"),
        "hm_unread": ("未読のお知らせ {n}件", "{n} unread notices"),
        "hm_for_you": ("あなたへ", "For you"),
        "hm_mypage_hint": ("参加の記録・プロフィール", "Your activity and profile"),
        "hm_welcome_back": ("{name}さん、こんにちは", "Hello, {name}"),
        "hm_lead": (
            "{town}の市民活動・イベント・まちづくりに、楽しみながら参加しませんか。",
            "Join {town}'s community activities, events and town-making — and enjoy it.",
        ),
        "hm_phase": ("段階{n}", "Phase {n}"),
        "hm_quiet": (
            "いまは表示できる情報がありません。しばらくしてからご覧ください。",
            "Nothing to show just now. Please look again a little later.",
        ),
    }
)


def picture(codes: list[str] | str | None, lang: str) -> dict[str, str]:
    """The card's picture: its first category's family's illustration (a default without one), its colour and
    short word."""
    pic = pictures.card_picture(codes, lang)
    name = next(f[2] if lang == "en" else f[1] for f in categories.FAMILIES if f[0] == pic["family"])
    return {**pic, "word": name.split("・")[0]}


# ---- gathering --------------------------------------------------------------------------------------------------


async def guarded(what: str, ask: Awaitable[Any], read: Callable[[Any], Any]) -> Any | None:
    """One section's answer, or None (logged) when its service is down, slow, refuses or answers oddly."""
    try:
        return read(await asyncio.wait_for(ask, SECTION_TIMEOUT))
    except (errors.ServiceError, TimeoutError, ValidationError, KeyError, TypeError, ValueError) as exc:
        log.info("home page: %s left out (%s)", what, type(exc).__name__)
        return None


@dataclass
class Public:
    events: list[pc.EventOut] | None = None
    communities: list[sc.Community] | None = None
    themes: list[prc.Theme] | None = None
    cases: list[plc.CasePublished] | None = None
    projects: list[dc.Project] | None = None
    at: float = field(default=-1e9)

    @property
    def complete(self) -> bool:
        return None not in (self.events, self.communities, self.themes, self.cases, self.projects)


async def _ask(request: Request, service: str, endpoint: str, payload: BaseModel | dict[str, Any] | None) -> Any:
    # A service this node does not run (bookings left out, notices not yet deployed) is not asked: asking would
    # wait out the bus's patience for "no responders" on every view.
    if service not in request.app.state.settings.expected_services():
        raise errors.Unavailable(f"this node runs no {service} service")
    return await call(request, service, endpoint, payload, timeout=SECTION_TIMEOUT)


def _upcoming(raw: Any) -> list[pc.EventOut]:
    now = datetime.now(UTC)
    events = [e for e in pc.EventList.model_validate(raw).events if e.starts_at is not None and e.starts_at >= now]
    return sorted(events, key=lambda e: e.starts_at or now)[:SHOWN]


def _inviting(raw: Any) -> list[prc.Theme]:
    themes = [th for th in prc.ThemeList.model_validate(raw).themes if th.status == "published" and th.phase <= 2]
    return sorted(themes, key=lambda th: th.published_at or th.created_at, reverse=True)[:SHOWN]


async def load_public(request: Request) -> Public:
    events, communities, themes, cases, projects = await asyncio.gather(
        guarded("events", _ask(request, pc.SERVICE, pc.EP_EVENT_LIST, {}), _upcoming),
        guarded(
            "communities",
            _ask(request, sc.SERVICE, sc.EP_COMMUNITY_LIST, sc.CommunityListQuery(include_closed=False, limit=SHOWN)),
            lambda raw: sc.CommunityList.model_validate(raw).communities[:SHOWN],
        ),
        guarded("themes", _ask(request, prc.SERVICE, prc.EP_THEME_LIST, prc.ThemeListQuery()), _inviting),
        guarded(
            "cases",
            _ask(request, prc.SERVICE, plc.EP_CASE_LIST, plc.CaseListQuery()),
            lambda raw: plc.CaseList.model_validate(raw).cases[:SHOWN],
        ),
        guarded(
            "donation projects",
            _ask(request, dc.SERVICE, dc.EP_PROJECT_LIST, dc.ProjectListQuery()),
            lambda raw: [p for p in dc.ProjectList.model_validate(raw).projects if p.takes_donations][:SHOWN],
        ),
    )
    return Public(events, communities, themes, cases, projects, at=time.monotonic())


class PublicCache:
    """The public sections of this node's home page, asked again once they are a few seconds old; one request
    asks while the others wait for its answer (no stampede on the services)."""

    def __init__(self) -> None:
        self.value = Public()
        self.lock = asyncio.Lock()

    def fresh(self) -> bool:
        ttl = PUBLIC_TTL if self.value.complete else FAILED_TTL
        return time.monotonic() - self.value.at < ttl

    async def get(self, request: Request) -> Public:
        if self.fresh():
            return self.value
        async with self.lock:
            if not self.fresh():
                self.value = await load_public(request)
        return self.value


@dataclass
class Personal:
    points: pc.PersonPoints | None = None
    next_booking: Any | None = None  # contracts.bookings.Booking
    facility: str = ""
    bookings_known: bool = False
    unread: int | None = None
    leader: sc.LeaderTodo | None = None  # リーダーの用事 (gateway/portal/leaders.py)


def _first_upcoming(raw: Any) -> tuple[Any | None, str]:
    overview = bp.Overview.model_validate(raw)
    first = overview.upcoming[0] if overview.upcoming else None
    return first, (overview.facility_names.get(first.facility_id, first.facility_id) if first else "")


def _unread(raw: Any) -> int:
    count = raw.get("unread") if isinstance(raw, dict) else None
    if not isinstance(count, int) or count < 0:
        raise ValueError("no unread count in the notices service's answer")
    return count


async def load_personal(request: Request, user: ic.User) -> Personal:
    actor = actor_of(user)
    points, booking, unread, leader = await asyncio.gather(
        guarded(
            "points",
            _ask(request, pc.SERVICE, pc.EP_MY_POINTS, pc.MyPointsQuery(actor=actor)),
            pc.PersonPoints.model_validate,
        ),
        guarded(
            "next booking", _ask(request, bc.SERVICE, bp.EP_OVERVIEW, bp.OverviewQuery(actor=actor)), _first_upcoming
        ),
        guarded(
            "notices",
            _ask(
                request,
                NOTICES_SERVICE,
                EP_NOTICES_INBOX,
                {"actor": actor.model_dump(mode="json"), "folder": "unread", "limit": 1},
            ),
            _unread,
        ),
        leaders.leader_todo(request, user),
    )
    return Personal(
        points=points,
        next_booking=booking[0] if booking else None,
        facility=booking[1] if booking else "",
        bookings_known=booking is not None,
        unread=unread,
        leader=leader,
    )


# ---- the page ---------------------------------------------------------------------------------------------------


def _when(moment: datetime | None, lang: str) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(JST)
    days = "月火水木金土日" if lang != "en" else None
    if days:
        return f"{local.month}月{local.day}日（{days[local.weekday()]}）{local:%H:%M}"
    return local.strftime("%a %d %b %H:%M")


def _tile(moment: datetime, lang: str) -> tuple[str, int, str]:
    """A calendar leaf for an event card: month, day, day of the week."""
    local = moment.astimezone(JST)
    if lang == "en":
        return local.strftime("%b"), local.day, local.strftime("%a")
    return f"{local.month}月", local.day, "月火水木金土日"[local.weekday()]


async def home_page(request: Request, user: ic.User | None, notice: str | None) -> Response:
    cache: PublicCache = request.app.state.home_cache
    if user is None:
        public, personal = await cache.get(request), None
    else:
        public, personal = await asyncio.gather(cache.get(request), load_personal(request, user))
    lang = ps.lang(request)
    return render(
        request,
        "home.html",
        user=user,
        notice=notice,
        public=public,
        personal=personal,
        picture=lambda codes: picture(codes, lang),
        when=lambda m: _when(m, lang),
        tile=lambda m: _tile(m, lang),
        phases=prc.PHASES_EN if lang == "en" else prc.PHASES,
        words=lambda key, **kw: t(key, lang).format(**kw),
        leader=personal.leader if personal else None,
        leader_days=sc.LEADER_WINDOW_DAYS,
    )


@router.get("/town/emblem")
async def emblem(request: Request) -> Response:
    """The town's emblem; its URL carries its version, so browsers keep it. An SVG is served so that nothing in it
    can run even when opened on its own (CSP sandbox)."""
    found = emblem_of(request.app.state.town)
    return Response(
        found.data,
        media_type=found.media_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        },
    )


def install(app: Any) -> None:
    app.state.home_cache = PublicCache()
    app.include_router(router)
