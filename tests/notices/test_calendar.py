"""The calendar and the public notices through the gateway (issue 18 points 5 and 7): the node's, a community's and a
person's private iCalendar feeds, read back with the icalendar library; /notices.atom read back with feedparser.
The notices service runs on SQLite and PostgreSQL.
Entries come over the bus from the services that own them (a points event with a date, a collected iCalendar feed);
the bookings service is not running, and the calendar shows the rest without it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import feedparser
import httpx
import icalendar
import nats
import pytest

from services.notices.app import NoticesService
from services.notices.feeds_fetch import FeedReader, parse_allow
from services.points.app import PointsService
from tests.notices.feeds_support import FeedSite
from tests.support.bus import NODE, call, wait_for
from tests.support.http_server import served
from tests.support.nodes import CARD_KEY, gateway_app, started
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices as nt
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts.notices import SERVICE
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

STAFF = {"user_id": "staff-0001", "global_handle": "yamada@testnode", "display_name": "山田", "roles": ["staff"]}
HANAKO = {"user_id": "user-0001", "global_handle": "hanako@testnode", "display_name": "花子", "roles": ["staff"]}


@dataclass
class Portal:
    nc: nats.NATS
    http: httpx.AsyncClient
    site: FeedSite
    site_base: str

    async def call(self, endpoint: str, payload: dict, service: str = SERVICE) -> dict:
        return await call(self.nc, endpoint, payload, service=service, node=NODE)

    async def ics(self, path: str, status: int = 200) -> icalendar.Calendar | None:
        r = await self.http.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:200])
        if status != 200:
            return None
        assert r.headers["content-type"].startswith("text/calendar")
        return icalendar.Calendar.from_ical(r.content)


def summaries(cal: icalendar.Calendar | None) -> dict[str, icalendar.Event]:
    assert cal is not None
    return {str(ev["summary"]): ev for ev in cal.walk("VEVENT")}


@pytest.fixture
async def portal(nats_server, database, tmp_path) -> AsyncIterator[Portal]:
    def settings(service: str, **more: str) -> ServiceSettings:
        return ServiceSettings(
            service=service, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / service), **more
        )

    url, schema = database  # the notices service's queries (calendar entries, public notices) on both databases
    notices = NoticesService(
        settings(SERVICE, database_url=url, database_schema=schema or ""),
        reader=FeedReader(allow=parse_allow("127.0.0.0/8"), total=3.0),
        poll_every=None,
    )
    points = PointsService(settings("points", card_key=CARD_KEY))
    site, site_port, port = FeedSite(), free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    async with started(notices, points), served(site.app(), "127.0.0.1", site_port):
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="points,notices", public_url=base)
        async with served(app, "127.0.0.1", port), httpx.AsyncClient(base_url=base, timeout=20) as http:
            nc = await nats.connect(nats_server.url)
            try:
                yield Portal(nc, http, site, f"http://127.0.0.1:{site_port}")
            finally:
                site.release.set()
                await nc.close()


async def test_calendars_and_atom_gathered_over_the_bus(portal: Portal) -> None:
    await portal.call(
        f.EP_FEED_REGISTER,
        {
            "actor": STAFF,
            "url": portal.site_base + "/ics",
            "title": "社協の行事",
            "category": "health",
            "community_id": "fujimi-salon",
        },
    )
    await portal.call(f.EP_FEED_REGISTER, {"actor": STAFF, "url": portal.site_base + "/rss", "title": "市の新着"})
    starts = datetime.combine(portal.site.day, datetime.min.time(), JST) + timedelta(days=1, hours=14)
    await portal.call(
        pc.EP_EVENT_PUT,
        {
            "code": "clean-up",
            "name": "河川敷の清掃",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "venue_name": "坂戸市境の河川敷",
        },
        service="points",
    )

    node = summaries(await portal.ics("/calendar.ics"))
    assert set(node) == {"ふれあいサロン", "福祉バザー", "河川敷の清掃"}
    salon = node["ふれあいサロン"]
    assert salon.decoded("dtstart") == datetime.combine(portal.site.day, datetime.min.time(), JST) + timedelta(hours=10)
    assert str(salon["location"]) == "富士見公民館" and str(salon["class"]) == "PUBLIC"
    bazaar = node["福祉バザー"].decoded("dtstart")
    assert bazaar == portal.site.day + timedelta(days=6), "an all-day entry stays a date"
    assert node["河川敷の清掃"].decoded("dtstart") == starts
    again = summaries(await portal.ics("/calendar.ics"))
    assert {k: str(v["uid"]) for k, v in again.items()} == {k: str(v["uid"]) for k, v in node.items()}, "stable UIDs"

    # A community's calendar: what its feeds collected, nothing of the others.
    community = summaries(await portal.ics("/communities/fujimi-salon/calendar.ics"))
    assert set(community) == {"ふれあいサロン", "福祉バザー"}
    assert summaries(await portal.ics("/communities/someone-else/calendar.ics")) == {}

    # The private calendar: a token shown once, kept as its hash; a new one closes the old URL.
    first = (await portal.call(f.EP_CALENDAR_TOKEN, {"actor": HANAKO}))["token"]
    r = await portal.http.get(f"/calendar/private/{first}.ics")
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-store"
    assert "河川敷の清掃" in summaries(icalendar.Calendar.from_ical(r.content))
    second = (await portal.call(f.EP_CALENDAR_TOKEN, {"actor": HANAKO}))["token"]
    await portal.ics(f"/calendar/private/{first}.ics", status=404)
    await portal.ics(f"/calendar/private/{second}.ics")
    await portal.ics("/calendar/private/not-a-token.ics", status=404)
    holder = await portal.call(f.EP_CALENDAR_HOLDER, {"token": second})
    assert holder["actor"]["roles"] == [], "the token reads as the person, never with their staff role"

    # The public notices as Atom, valid for a feed reader: the collected ones, and what staff sent to everyone (the
    # notices service's fan-out marks it sent; a notice to one district is not public).
    await portal.call(
        nt.EP_NOTICE_CREATE,
        {"actor": STAFF, "title": "年末年始の窓口", "body": "12月29日から休みです。", "target": {"kind": "everyone"}},
    )

    async def atom() -> feedparser.FeedParserDict | None:
        r = await portal.http.get("/notices.atom")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
        got = feedparser.parse(r.content)
        return got if len(got.entries) == 3 else None

    feed = await wait_for(atom, "the notice to everyone in the Atom feed")
    assert feed.version == "atom10" and not feed.bozo
    titles = [e.title for e in feed.entries]
    assert titles[0] == "年末年始の窓口", "the newest first"
    assert titles[1:] == ["ごみ収集日の変更", "子育て支援センターのお知らせ"]
    assert feed.entries[1].link == "https://www.city.example/news/1"
    assert feed.entries[1].author == "市の新着"
    assert feed.entries[1].published_parsed[:4] == datetime(2026, 12, 7, 1, tzinfo=UTC).timetuple()[:4]
    # The node's own notice links to the public page, which anyone may open (the inbox is its recipients' only).
    own = (await portal.call(f.EP_PUBLIC, {}))["notices"][0]
    assert feed.entries[0].link.endswith(f"/notices#n-{own['id']}")
    r = await portal.http.get("/notices")
    assert r.status_code == 200 and f'id="n-{own["id"]}"' in r.text
    assert all(title in r.text for title in titles) and "12月29日から休みです。" in r.text

    # A notice to everyone with a date (its validity) is on the node's calendar, linking to the inbox; a targeted
    # one with the same date is not (issue 18 point 5).
    day = datetime.combine(portal.site.day, datetime.min.time(), JST) + timedelta(days=2, hours=9)
    period = {"valid_from": day.isoformat(), "valid_until": (day + timedelta(hours=3)).isoformat()}
    dated = await portal.call(nt.EP_NOTICE_CREATE, {"actor": STAFF, "title": "市民清掃デー", "body": "各地区で",
                                                    "target": {"kind": "everyone"}, **period})
    await portal.call(nt.EP_NOTICE_CREATE, {"actor": STAFF, "title": "敬老のつどい", "body": "公民館で",
                                            "target": {"kind": "stage", "value": "senior"}, **period})

    async def on_calendar() -> dict[str, icalendar.Event] | None:
        got = summaries(await portal.ics("/calendar.ics"))
        return got if "市民清掃デー" in got else None

    cal = await wait_for(on_calendar, "the dated notice to everyone on /calendar.ics")
    assert "敬老のつどい" not in cal
    assert cal["市民清掃デー"].decoded("dtstart") == day and str(cal["市民清掃デー"]["uid"]).startswith("notice-")
    assert str(cal["市民清掃デー"]["url"]).endswith(f"/inbox/{dated['id']}")

    # The HTTP API declares the staff's endpoint from the contracts table.
    spec = (await portal.http.get("/openapi.json")).json()
    assert "post" in spec["paths"]["/api/v1/feeds"]
