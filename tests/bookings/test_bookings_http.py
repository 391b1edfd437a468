"""The bookings service's HTTP API (issue 17, point 9), generated from its tables: a real nats-server, the identity
and bookings services (the latter on SQLite and PostgreSQL, its clock at helpers.NOW) and the gateway app; residents
and a staff member hold access tokens of the node's own OpenID provider, and the node's admin token books at the
counter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from identity.app import IdentityService
from services.bookings.app import BookingsService
from tests.bookings.helpers import HALL, NODE, NOW, jst
from tests.support.api_node import BASE, ApiNode, api_node, problem
from towntip.kernel.contracts import bookings as c
from towntip.kernel.settings import ServiceSettings


@pytest.fixture
async def api(nats_server, database, tmp_path) -> AsyncIterator[ApiNode]:
    url, schema = database

    def settings(service: str, **db: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE, **db)

    bookings = BookingsService(settings("bookings", database_url=url, database_schema=schema or ""),
                               clock=lambda: NOW)
    async with api_node(nats_server.url, tmp_path, [IdentityService(settings("identity")), bookings], node=NODE,
                        people={"hanako": "山田 花子", "taro": "鈴木 太郎", "clerk": "窓口 職員"},
                        staff=("clerk",)) as api:
        yield api


async def test_facilities_availability_and_bookings_over_http(api: ApiNode) -> None:
    async with api.client() as anyone, api.client("hanako") as hanako, api.client("taro") as taro, \
            api.client("clerk") as clerk, api.client("admin") as admin:
        # Staff (and the admin token) put facilities; a resident may not; reading is public.
        problem(await hanako.post("/api/v1/facilities", json=HALL), 403, "request.role_missing")
        problem(await anyone.post("/api/v1/facilities", json=HALL), 401, "request.unauthenticated")
        r = await clerk.post("/api/v1/facilities", json=HALL)
        assert r.status_code == 200 and r.json()["id"] == "ohashi-hall", r.text
        r = await admin.post("/api/v1/facilities", json={**HALL, "id": "minami-hall", "name_ja": "南公民館 ホール"})
        assert r.status_code == 200, r.text
        r = await anyone.get("/api/v1/facilities")
        assert r.status_code == 200 and [f["id"] for f in r.json()] == ["minami-hall", "ohashi-hall"], r.text

        r = await anyone.get("/api/v1/facilities/ohashi-hall/availability", params={"date": "2026-10-29"})
        assert r.status_code == 200, r.text
        day = r.json()
        assert day["date"] == "2026-10-29" and len(day["slots"]) == 3
        assert day["slots"][0] == {"start": "2026-10-29T09:00:00+09:00", "end": "2026-10-29T12:00:00+09:00",
                                   "free": True, "name_ja": "午前"}
        holiday = (await anyone.get("/api/v1/facilities/ohashi-hall/availability",
                                    params={"date": "2026-11-03"})).json()
        assert holiday["closed"] is True and not any(s["free"] for s in holiday["slots"])
        problem(await anyone.get("/api/v1/facilities/nowhere/availability", params={"date": "2026-10-29"}),
                404, c.FACILITY_NOT_FOUND.code)

        # A resident books: 201 with the id; the same slot again is 409 with the code and a reason.
        body = {"facility_id": "ohashi-hall", "start": jst("2026-10-29", "13:00"), "end": jst("2026-10-29", "17:00"),
                "purpose": "合唱の練習"}
        problem(await anyone.post("/api/v1/bookings", json=body), 401, "request.unauthenticated")
        r = await hanako.post("/api/v1/bookings", json=body)
        assert r.status_code == 201, r.text
        booking = r.json()
        assert booking["id"] and booking["booker"] == f"hanako@{NODE}" and booking["state"] == "confirmed"
        taken = problem(await taro.post("/api/v1/bookings", json=body), 409, c.BOOKING_TAKEN.code)
        assert "booked already" in taken["detail"]
        r = await anyone.get("/api/v1/facilities/ohashi-hall/availability", params={"date": "2026-10-29"})
        assert [s["free"] for s in r.json()["slots"]] == [True, False, True]
        # Bad input: a code and a reason, nothing booked.
        problem(await taro.post("/api/v1/bookings", json={**body, "start": jst("2026-10-20", "13:00"),
                                                          "end": jst("2026-10-20", "17:00")}),
                400, c.BOOKING_PAST.code)
        problem(await taro.post("/api/v1/bookings", json={**body, "end": jst("2026-10-29", "16:00")}),
                400, c.BOOKING_OFF_LAYOUT.code)
        problem(await taro.post("/api/v1/bookings", json={**body, "on_behalf_of": f"hanako@{NODE}"}),
                403, c.BOOKING_STAFF_ONLY.code)

        # At the counter: staff for a person, the admin token for someone without an account.
        morning = {**body, "start": jst("2026-10-29", "09:00"), "end": jst("2026-10-29", "12:00")}
        r = await clerk.post("/api/v1/bookings", json={**morning, "on_behalf_of": f"taro@{NODE}"})
        assert r.status_code == 201 and r.json()["booked_by"] == f"clerk@{NODE}", r.text
        evening = {**body, "start": jst("2026-10-29", "18:00"), "end": jst("2026-10-29", "21:30")}
        problem(await admin.post("/api/v1/bookings", json=evening), 400, c.BOOKING_BEHALF_REQUIRED.code)
        r = await admin.post("/api/v1/bookings", json={**evening, "on_behalf_of": {"name": "田中 一郎",
                                                                                 "phone": "049-000-0000"}})
        assert r.status_code == 201, r.text
        walkin = r.json()
        assert walkin["booker"] is None and walkin["booked_by"] == "operator"
        problem(await admin.get("/api/v1/bookings"), 403, "request.person_required")  # "mine" needs a person

        # Only the booker (or staff) sees and cancels a booking.
        problem(await taro.get(f"/api/v1/bookings/{booking['id']}"), 404, c.BOOKING_NOT_FOUND.code)
        problem(await taro.post(f"/api/v1/bookings/{booking['id']}/cancel"), 403, c.BOOKING_NOT_YOURS.code)
        r = await hanako.post(f"/api/v1/bookings/{booking['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
        r = await admin.post(f"/api/v1/bookings/{walkin['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
        r = await taro.get("/api/v1/bookings")
        assert [b["start"] for b in r.json()["bookings"]] == ["2026-10-29T09:00:00+09:00"], r.text


async def test_the_openapi_document_lists_the_bookings_routes(api: ApiNode) -> None:
    async with api.client() as anyone:
        doc = (await anyone.get("/openapi.json")).json()
    create = doc["paths"]["/api/v1/bookings"]["post"]
    assert "201" in create["responses"] and c.BOOKING_TAKEN.code in create["responses"]["409"]["x-codes"]
    assert "/api/v1/facilities/{facility_id}/availability" in doc["paths"]
