"""An event's venue booking on the staff's event page in headless Chromium on a phone (issue 17, point 7): the city
books a room at the counter; staff name that booking as an event's venue with times outside it and are told why in
Japanese (nothing saved), then with times inside it and it is saved with the booking's facility. Identity, points
and bookings services beside the gateway on a real nats-server (tests/bookings/test_life_browser.py's portal)."""

from __future__ import annotations

import nats as nats_client
import pytest

from tests.bookings.test_life_browser import HALL, NODE, a_weekday_ahead, portal  # noqa: F401 - fixture
from tests.points.test_courses_browser import submit
from tests.support.browser import log_in, open_page, phone_browser  # noqa: F401 - fixture
from tests.support.bus import call
from tests.support.nodes import add_people
from towntip.kernel import errors
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import points as pc

pytestmark = pytest.mark.browser


async def test_staff_name_a_booking_as_an_events_venue_on_a_phone(portal, phone_browser, nats_server) -> None:  # noqa: F811
    base, d = portal, phone_browser
    day = a_weekday_ahead()
    nc = await nats_client.connect(nats_server.url)
    try:
        people = await add_people(nc, NODE, [("suzuki", "鈴木 職員", "staff")])
        staff = {"user_id": people["suzuki"].id, "global_handle": f"suzuki@{NODE}", "display_name": "鈴木 職員",
                 "roles": ["staff"]}
        room = {**HALL, "id": "josei-center-event", "rules": {}}
        await call(nc, c.EP_FACILITY_PUT, room, service=c.SERVICE, node=NODE)
        held = await call(nc, c.EP_BOOKING_CREATE, {
            "actor": staff, "facility_id": room["id"], "start": f"{day}T13:00:00+09:00",
            "end": f"{day}T17:00:00+09:00", "purpose": "おもちゃ病院",
            "on_behalf_of": {"name": "まちづくり推進課", "phone": "049-000-0000"}}, service=c.SERVICE, node=NODE)
        fields = {"code": "toy-repair", "name": "おもちゃ病院", "venue_name": "女性センター 研修室",
                  "venue_booking": held["id"], "capacity": "20"}

        # 16:00-18:00 runs past the booking's 17:00: refused in Japanese, nothing saved.
        page = await log_in(d, base, "suzuki", "/staff/events")
        assert page["url"] == "/staff/events", page["text"]
        page = await submit(d, "/staff/events", fields,
                            js_values={"starts_at": f"{day}T16:00", "ends_at": f"{day}T18:00"})
        refused = "会場の予約番号が、この施設をイベントの日時に押さえている予約ではありません"
        assert refused in page["text"], page["text"]
        assert page["overflow"] <= 0
        with pytest.raises(errors.ServiceError):
            await call(nc, pc.EP_EVENT_GET, {"code": "toy-repair"}, node=NODE)

        # 14:00-16:00 lies inside it: saved, with the booking's facility as the venue's.
        await open_page(d, base + "/staff/events")
        page = await submit(d, "/staff/events", fields,
                            js_values={"starts_at": f"{day}T14:00", "ends_at": f"{day}T16:00"})
        assert "保存しました" in page["text"], page["text"]
        event = await call(nc, pc.EP_EVENT_GET, {"code": "toy-repair"}, node=NODE)
        assert (event["venue_booking"], event["venue_facility"]) == (held["id"], room["id"]), event
    finally:
        await nc.close()
