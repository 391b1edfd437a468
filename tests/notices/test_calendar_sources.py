"""The calendar's other sources (issue 18 point 5): a briefing of an open call (projects) on the node's public
calendar, and the person's own booking (bookings) on their private calendar only, read back with the icalendar
library. The projects, bookings and notices services run on a real nats-server with their real clocks, the gateway
gathers the entries over the bus; the notices service on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import icalendar
import nats
import pytest

from services.bookings.app import BookingsService
from services.notices.app import NoticesService
from services.projects.app import ProjectsService
from tests.bookings.helpers import CLERK, HALL, jst
from tests.projects.test_projects_calls import KIKAKU, open_theme
from tests.support.bus import NODE, call
from tests.support.http_server import served
from tests.support.nodes import gateway_app, started
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.contracts import projects as pc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

HANAKO = Actor(user_id="user-hanako-01", global_handle=f"hanako@{NODE}", display_name="山田 花子")


@dataclass
class Projects:
    """What tests/projects' open_theme needs of a node: its calls, and the service's clock (the real one here)."""

    nc: nats.NATS

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await call(self.nc, endpoint, payload, service=pc.SERVICE, node=NODE)

    def clock(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
async def portal(nats_server, database, tmp_path) -> AsyncIterator[tuple[nats.NATS, httpx.AsyncClient]]:
    def settings(service: str, **more: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), **more)

    url, schema = database
    notices = NoticesService(settings("notices", database_url=url, database_schema=schema or ""), poll_every=None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with started(ProjectsService(settings("projects")), BookingsService(settings("bookings")), notices):
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="projects,bookings,notices", public_url=base)
        async with served(app, "127.0.0.1", port), httpx.AsyncClient(base_url=base, timeout=20) as http:
            nc = await nats.connect(nats_server.url)
            try:
                yield nc, http
            finally:
                await nc.close()


def open_day(after: int) -> str:
    """A day at least `after` days ahead on which the hall is open (not a Monday, not a closed date)."""
    day = datetime.now(JST).date() + timedelta(days=after)
    while day.strftime("%a").lower() in HALL["closed_weekdays"] or day.isoformat() in HALL["closed_dates"] or \
            day.strftime("%m-%d") in HALL["closed_yearly"]:
        day += timedelta(days=1)
    return day.isoformat()


def summaries(body: bytes) -> set[str]:
    return {str(ev["summary"]) for ev in icalendar.Calendar.from_ical(body).walk("VEVENT")}


async def test_a_briefing_is_public_and_a_booking_is_the_persons_own(portal) -> None:
    nc, http = portal
    projects = Projects(nc)
    theme = await open_theme(projects)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    await projects.call(pc.EP_BRIEFING_CREATE, {
        "actor": KIKAKU.model_dump(mode="json"), "theme_id": theme["id"], "title": "第1回 説明会",
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "venue": "市役所 3階 会議室", "capacity": 20})
    await call(nc, bc.EP_FACILITY_PUT, {**HALL, "actor": CLERK.model_dump(mode="json")}, service=bc.SERVICE)
    day = open_day(5)
    await call(nc, bc.EP_BOOKING_CREATE, {"actor": HANAKO.model_dump(mode="json"), "facility_id": HALL["id"],
                                          "start": jst(day, "09:00"), "end": jst(day, "12:00"),
                                          "purpose": "自治会の会合"}, service=bc.SERVICE)

    r = await http.get("/calendar.ics")
    assert r.status_code == 200
    public = summaries(r.content)
    assert "説明会: 第1回 説明会" in public
    assert not any("自治会の会合" in s for s in public), "a booking is never on the public calendar"

    token = (await call(nc, f.EP_CALENDAR_TOKEN, {"actor": HANAKO.model_dump(mode="json")}, service="notices"))["token"]
    r = await http.get(f"/calendar/private/{token}.ics")
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-store"
    mine = summaries(r.content)
    assert "大橋公民館 ホール：自治会の会合" in mine and "説明会: 第1回 説明会" in mine
