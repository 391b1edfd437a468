"""The data slides' adapter: asks the owning services for each slide's public data over the node's bus and keeps the
slides current (slides.py renders and stores them). The signage service's NATS user may ask only the endpoints in
CALLS (towntip/node/natsauth.py grants them from this list).

A round runs every SLIDE_REFRESH_SECONDS, and at once after a commit of this instance (a new slide shows its data
before it is approved). Each source is asked once per round, however many slides show it. A source that does not
answer (stopped, refusing, too slow) leaves the slide with its last good data and that data's time, or a short note
if it never answered: never an empty screen, never a crash of the round. With several instances each refreshes
the same slides; the data being the same, so are the bytes, and an unchanged slide writes nothing a screen sees."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from nats.aio.client import Client as NATS
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.signage import slides
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import bookings_portal as bp
from towntip.kernel.contracts import notebook as nb
from towntip.kernel.contracts import notices_feeds as nf
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import sns as sc

log = logging.getLogger(__name__)

# What the signage service may ask of the others: public reads (SERVICE_READS) and the districts' totals, which
# only services may ask (SERVICE_CALLS). Names are "<service>.<endpoint>".
READS = (
    f"points.{pc.EP_EVENT_LIST}",
    f"{sc.SERVICE}.{sc.EP_COMMUNITY_LIST}",
    f"{sc.SERVICE}.{sc.EP_POST_LIST}",
    f"notices.{nf.EP_PUBLIC}",
    f"{prc.SERVICE}.{prc.EP_THEME_LIST}",
    f"bookings.{bp.EP_FACILITY_BUSY}",
)
CALLS = (f"points.{nb.EP_FIGURES_DISTRICTS}",)
COMMUNITIES_ASKED = 8  # the newest open communities whose posts make the news
POSTS_EACH = 3


class SourceFailed(Exception):
    """A source did not answer usefully (unavailable, refused, or an answer that does not fit its contract)."""


class Sources:
    """The other services as the slides ask them; each answer parsed by its contract's model."""

    def __init__(self, nc: NATS, node: str, *, timeout: float = 5.0) -> None:
        self.nc, self.node, self.timeout = nc, node, timeout

    async def _ask(self, service: str, endpoint: str, q: BaseModel | None, model: type[Any]) -> Any:
        try:
            got = await rpc.call(self.nc, subjects.svc(self.node, service, endpoint), q, timeout=self.timeout)
            return model.model_validate(got)
        except (errors.ServiceError, ValidationError) as exc:
            raise SourceFailed(f"{service}.{endpoint}: {exc}") from exc

    async def events(self) -> pc.EventList:
        return await self._ask("points", pc.EP_EVENT_LIST, None, pc.EventList)

    async def news(self) -> list[tuple[sc.Community, sc.Post]]:
        listed = await self._ask(
            sc.SERVICE,
            sc.EP_COMMUNITY_LIST,
            sc.CommunityListQuery(include_closed=False, limit=COMMUNITIES_ASKED),
            sc.CommunityList,
        )
        out: list[tuple[sc.Community, sc.Post]] = []
        for com in listed.communities:
            page = await self._ask(
                sc.SERVICE, sc.EP_POST_LIST, sc.PostListQuery(community_id=com.id, limit=POSTS_EACH), sc.PostList
            )
            out += [(com, p) for p in page.posts]
        return out

    async def notices(self) -> nf.PublicNotices:
        return await self._ask("notices", nf.EP_PUBLIC, nf.PublicQuery(limit=slides.LINES_MAX), nf.PublicNotices)

    async def themes(self) -> prc.ThemeList:
        return await self._ask(prc.SERVICE, prc.EP_THEME_LIST, prc.ThemeListQuery(), prc.ThemeList)

    async def points(self) -> nb.DistrictFigures:
        return await self._ask("points", nb.EP_FIGURES_DISTRICTS, nb.DistrictFiguresQuery(), nb.DistrictFigures)

    async def bookings(self, facility_id: str, now: datetime) -> bp.Busy:
        q = bp.BusyQuery(facility_id=facility_id, start=slides.today(now), days=1)
        return await self._ask("bookings", bp.EP_FACILITY_BUSY, q, bp.Busy)


async def render(sources: Sources, slide: c.DataSlide, *, node: str, now: datetime, asked: dict[str, Any]
                 ) -> c.SlideBody:
    """The slide from its source's data now (`asked` keeps each answer of the round: asked once however many slides
    show it); raises SourceFailed."""
    title = slide.item.title
    key = f"{slide.source}:{slide.facility_id or ''}"
    if key not in asked:
        match slide.source:
            case "events":
                asked[key] = await sources.events()
            case "news":
                asked[key] = await sources.news()
            case "notices":
                asked[key] = await sources.notices()
            case "themes":
                asked[key] = await sources.themes()
            case "points":
                asked[key] = await sources.points()
            case "bookings":
                assert slide.facility_id is not None
                asked[key] = await sources.bookings(slide.facility_id, now)
    data = asked[key]
    match slide.source:
        case "events":
            return slides.events(data, title=title, now=now)
        case "news":
            return slides.news(data, title=title, now=now)
        case "notices":
            return slides.notices(data, title=title)
        case "themes":
            return slides.themes(data, title=title, node=node, now=now)
        case "points":
            return slides.points(data, title=title)
        case _:
            return slides.bookings(data, title=title)


class Refresher:
    """Keeps every data slide current: a round every SLIDE_REFRESH_SECONDS, or at once when woken."""

    def __init__(
        self,
        nc: NATS,
        *,
        node: str,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        changed: Callable[[], None],
        interval: float = c.SLIDE_REFRESH_SECONDS,
        timeout: float = 5.0,
    ) -> None:
        self.node, self.sessions, self.clock, self.changed, self.interval = node, sessions, clock, changed, interval
        self.sources = Sources(nc, node, timeout=timeout)
        self.event = asyncio.Event()
        self.rounds = 0  # rounds done (tests wait on it, never on time)

    def wake(self) -> None:
        self.event.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh_once()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("refreshing the data slides failed")
            waiter = asyncio.create_task(self.event.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            self.event.clear()

    async def refresh_once(self) -> int:
        """One round; returns how many slides changed (the pusher was told)."""
        now = self.clock()
        async with self.sessions() as session:
            due = await slides.due(session, now=now)
        asked: dict[str, Any] = {}
        failed: set[str] = set()
        changed = 0
        for slide in due:
            key = f"{slide.source}:{slide.facility_id or ''}"
            answered = key not in failed
            body = slide.body
            if answered:
                try:
                    body = await render(self.sources, slide, node=self.node, now=now, asked=asked)
                except SourceFailed as exc:
                    log.warning("data slide %s: %s; keeping its last data", slide.item.id, exc)
                    failed.add(key)
                    answered = False
            if not answered:
                body = slides.unavailable(slide)
            async with self.sessions() as session, session.begin():
                moved = await slides.store(session, item_id=slide.item.id, body=body, answered=answered, now=now)
            if moved:  # at once after the commit: a sync from now on serves the new bytes
                self.changed()
                changed += 1
        self.rounds += 1
        return changed

