"""An event's venue is a booking (issue 17, point 7): on the staff's event page, the booking named as the venue must
hold its facility over the event's time; the facility is taken from it when left blank, and a cancelled booking,
another facility or another time is refused in Japanese (`event.venue_booking`) and changes nothing. Real identity,
points and bookings services (bookings on SQLite and PostgreSQL, its clock at helpers.NOW) and the gateway app on a
real nats-server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.bookings.app import BookingsService
from tests.bookings.helpers import CLERK, HALL, NODE, NOW, ROOM, a, jst
from tests.bookings.test_portal_pages import BASE, Site, csrf_of, text_of
from tests.support import bus
from tests.support.nodes import add_people, gateway_app, points_running, started
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import event_signups as sc
from towntip.kernel.contracts import points as pc
from towntip.kernel.settings import ServiceSettings


@pytest.fixture
async def site(nats_server, database, tmp_path) -> AsyncIterator[Site]:
    url, schema = database

    def settings(service: str, **db: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE, **db)

    svc = BookingsService(settings("bookings", database_url=url, database_schema=schema or ""), clock=lambda: NOW)
    async with points_running(nats_server.url, tmp_path), started(IdentityService(settings("identity")), svc):
        nc = await nats.connect(nats_server.url)
        try:
            await add_people(nc, NODE, [("clerk", "窓口 職員", "staff")])
            for f in (HALL, ROOM):
                await bus.call(nc, c.EP_FACILITY_PUT, f, service=c.SERVICE, node=NODE)
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points,bookings",
                              public_url=BASE)
            async with app.router.lifespan_context(app):
                yield Site(app, nc)
        finally:
            await nc.close()


async def test_an_events_venue_booking_must_hold_the_room_over_its_time(site: Site) -> None:
    # The city books the hall's afternoon at the counter for its event.
    held = await bus.call(site.nc, c.EP_BOOKING_CREATE, {
        "actor": a(CLERK), "facility_id": "ohashi-hall", "start": jst("2026-10-29", "13:00"),
        "end": jst("2026-10-29", "17:00"), "purpose": "おもちゃ病院", "on_behalf_of": {"name": "まちづくり推進課",
                                                                                      "phone": "049-000-0000"}},
        service=c.SERVICE, node=NODE)
    event = {"code": "toy-repair", "name": "おもちゃ病院", "participant_points": "1", "volunteer_points": "5",
             "starts_at": "2026-10-29T14:00", "ends_at": "2026-10-29T16:00", "venue_name": "大橋公民館 ホール",
             "venue_facility": "", "venue_booking": held["id"], "capacity": "20"}

    async def stored() -> dict[str, Any]:
        return await bus.call(site.nc, pc.EP_EVENT_GET, {"code": "toy-repair"}, node=NODE)

    async with site.as_("clerk") as b:
        async def put(**change: str) -> Any:
            form = await b.get("/staff/events")
            assert form.status_code == 200, form.text
            return await b.post("/staff/events", data={**event, **change, "csrf": csrf_of(form)})

        r = await put()
        assert r.status_code == 303 and "saved=1" in r.headers["location"], r.text
        saved = await stored()
        assert (saved["venue_booking"], saved["venue_facility"]) == (held["id"], "ohashi-hall"), saved

        words = "会場の予約番号が、この施設をイベントの日時に押さえている予約ではありません"
        for change in ({"ends_at": "2026-10-29T18:00"},  # past the booking's end
                       {"starts_at": "2026-10-29T12:00"},  # before its start
                       {"starts_at": "2026-10-30T14:00", "ends_at": "2026-10-30T16:00"},  # another day
                       {"venue_facility": "city-hall-6f"}):  # another facility
            r = await put(name="変更後", **change)
            assert r.status_code == sc.EVENT_VENUE_BOOKING.status and words in text_of(r), (change, text_of(r))
            assert await stored() == saved, f"{change} was refused but changed the event"
        r = await put(venue_booking=str(uuid.uuid4()))  # no such booking: the bookings service's refusal
        assert r.status_code == 404 and "予約" in text_of(r) and await stored() == saved, text_of(r)

        # Once the booking is cancelled it holds nothing: the event cannot name it.
        await bus.call(site.nc, c.EP_BOOKING_CANCEL, {"actor": a(CLERK), "booking_id": held["id"]},
                       service=c.SERVICE, node=NODE)
        r = await put(name="変更後")
        assert r.status_code == sc.EVENT_VENUE_BOOKING.status and words in text_of(r), text_of(r)
        assert await stored() == saved
