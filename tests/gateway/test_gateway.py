"""The gateway against a real nats-server and a fake "points" service made with nats.micro (no mocks of the bus)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
import pytest
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from gateway.app import create_app
from towntip.kernel.settings import GatewaySettings
from towntip.node.natsd import NatsServer

NODE = "testnode"
TOKEN = "staff-secret-token"
STAFF = {"Authorization": f"Bearer {TOKEN}"}
MISSING_CARD = "00000000000000FF"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@dataclass
class FakePoints:
    """A points service that answers like the real one, remembering what it was asked."""

    svc: Service | None = None
    seen: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def start(self, nc: nats.NATS) -> FakePoints:
        self.svc = await add_service(nc, name="points", version="0.1.0", metadata={"node": NODE})
        group = self.svc.add_group(name=f"svc.{NODE}.points", queue_group="points")
        await group.add_endpoint(name="balance", subject="balance", handler=self.balance)
        await group.add_endpoint(name="events-put", subject="events.put", handler=self.put)
        await group.add_endpoint(name="events-get", subject="events.get", handler=self.get)
        await group.add_endpoint(name="events-list", subject="events.list", handler=self.list)
        return self

    async def stop(self) -> None:
        if self.svc is not None:
            await self.svc.stop()
            self.svc = None

    def _note(self, name: str, req: Request) -> dict[str, Any]:
        body = json.loads(req.data or b"{}")
        self.seen.append((name, body, dict(req.headers or {})))
        return body

    async def balance(self, req: Request) -> None:
        body = self._note("balance", req)
        if body["card_idm"] == MISSING_CARD:
            await req.respond_error("404", "no such card")
            return
        await req.respond(json.dumps({"asset": "machi-point", "balance": 7, "taps": 3}).encode())

    async def put(self, req: Request) -> None:
        body = self._note("events.put", req)
        self.events[body["code"]] = {**body, "taps": 0, "points_issued": 0, "people": 0}
        await req.respond(json.dumps(self.events[body["code"]]).encode())

    async def get(self, req: Request) -> None:
        body = self._note("events.get", req)
        if body["code"] not in self.events:
            await req.respond_error("404", f"no event {body['code']}")
            return
        await req.respond(json.dumps(self.events[body["code"]]).encode())

    async def list(self, req: Request) -> None:
        self._note("events.list", req)
        await req.respond(json.dumps({"events": list(self.events.values())}).encode())


@pytest.fixture
async def points(nc: nats.NATS) -> AsyncIterator[FakePoints]:
    fake = await FakePoints().start(nc)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def client(nats_server: NatsServer, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(node_id=NODE, nats_url=nats_server.url, admin_token=TOKEN, services="points",
                               request_timeout=2.0, data_dir=str(tmp_path))
    app = create_app(settings)

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    return body


async def test_healthz_follows_the_points_service(client: httpx.AsyncClient, points: FakePoints) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["node"] == NODE and body["down"] == []
    assert body["services"]["points"]["up"] is True
    assert "processes" not in body  # no supervisor here

    await points.stop()
    r = await client.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "down" and body["down"] == ["points"]

    page = await client.get("/status")
    assert page.status_code == 503 and "points" in page.text and "停止" in page.text


async def test_healthz_ignores_a_points_service_of_another_node(client: httpx.AsyncClient, nc: nats.NATS) -> None:
    other = await add_service(nc, name="points", version="0.1.0", metadata={"node": "othernode"})
    try:
        r = await client.get("/healthz")
        assert r.status_code == 503 and r.json()["down"] == ["points"]
    finally:
        await other.stop()


async def test_healthz_includes_what_the_supervisor_says(
    client: httpx.AsyncClient, points: FakePoints, nc: nats.NATS
) -> None:
    async def status(msg: Any) -> None:
        await msg.respond(json.dumps({"node": NODE, "processes": [
            {"name": "points", "pid": 42, "state": "running", "restarts": 1, "since": "2025-01-01T00:00:00+00:00"},
        ]}).encode())

    sub = await nc.subscribe(f"svc.{NODE}.node.status", cb=status)
    await nc.flush()
    try:
        r = await client.get("/healthz")
        assert r.status_code == 200
        assert r.json()["processes"]["points"] == {
            "pid": 42, "state": "running", "restarts": 1, "since": "2025-01-01T00:00:00+00:00"}
    finally:
        await sub.unsubscribe()


async def test_problem_details(client: httpx.AsyncClient, points: FakePoints) -> None:
    body = assert_problem(await client.get("/no/such/route"), 404)
    assert body["instance"] == "/no/such/route"

    r = await client.get("/api/v1/points/cards/0123456789ABCDEF/balance")
    body = assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await client.get("/api/v1/points/cards/0123456789ABCDEF/balance", headers={"Authorization": "Bearer nope"})
    assert_problem(r, 401)
    assert points.seen == []  # refused at the gateway

    body = assert_problem(await client.get("/api/v1/points/cards/not-an-idm/balance", headers=STAFF), 422)
    assert body["errors"][0]["loc"] == ["path", "idm"]
    assert points.seen == []

    r = await client.put("/api/v1/points/events/summer", headers=STAFF, json={"name": "", "participant_points": -1})
    body = assert_problem(r, 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "name"), ("body", "participant_points")}

    body = assert_problem(await client.get("/boom"), 500)
    assert "secret" not in json.dumps(body) and "Traceback" not in json.dumps(body)


async def test_balance_relays_the_service(client: httpx.AsyncClient, points: FakePoints) -> None:
    r = await client.get("/api/v1/points/cards/0123456789abcdef/balance", headers={**STAFF, "traceparent": TRACEPARENT})
    assert r.status_code == 200, r.text
    assert r.json() == {"asset": "machi-point", "balance": 7, "taps": 3}
    name, body, headers = points.seen[-1]
    assert name == "balance" and body == {"card_idm": "0123456789ABCDEF"}
    # The trace continues from HTTP into NATS.
    assert headers["traceparent"].split("-")[1] == TRACE_ID

    body = assert_problem(await client.get(f"/api/v1/points/cards/{MISSING_CARD}/balance", headers=STAFF), 404)
    assert body["detail"] == "no such card" and body["title"] == "Not found"

    await points.stop()
    body = assert_problem(await client.get("/api/v1/points/cards/0123456789abcdef/balance", headers=STAFF), 503)
    assert "points" in body["detail"]


async def test_events_round_trip(client: httpx.AsyncClient, points: FakePoints) -> None:
    rule = {"name": "夏祭り", "participant_points": 2, "volunteer_points": 10}
    assert_problem(await client.put("/api/v1/points/events/summer", json=rule), 401)
    r = await client.put("/api/v1/points/events/summer", json=rule, headers=STAFF)
    assert r.status_code == 200, r.text
    assert r.json()["code"] == "summer" and r.json()["name"] == "夏祭り"

    r = await client.get("/api/v1/points/events/summer")
    assert r.status_code == 200 and r.json()["volunteer_points"] == 10
    r = await client.get("/api/v1/points/events")
    assert [e["code"] for e in r.json()["events"]] == ["summer"]
    assert_problem(await client.get("/api/v1/points/events/winter"), 404)
    assert_problem(await client.get("/api/v1/points/events/Not%20A%20Code"), 422)


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["info"]["title"] == "TownTip Commons node API"
    assert {"/api/v1/points/cards/{idm}/balance", "/api/v1/points/events", "/api/v1/points/events/{code}",
            "/healthz"} <= doc["paths"].keys()
    assert {"Balance", "EventOut", "EventList", "Problem"} <= doc["components"]["schemas"].keys()
    balance = doc["paths"]["/api/v1/points/cards/{idm}/balance"]["get"]
    assert balance["security"] == [{"HTTPBearer": []}]
    assert "application/problem+json" in balance["responses"]["401"]["content"]


async def test_api_docs_are_served_from_the_nodes_own_files(tmp_path) -> None:
    """/docs names no CDN: its script, style and icon come from /docs/assets (fastapi-swagger's files); FastAPI's
    CDN-loading /redoc is off; an unknown asset is a 404."""
    app = create_app(GatewaySettings(node_id="docsnode", nats_url="nats://127.0.0.1:1", data_dir=str(tmp_path)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://docs.test") as client:
        page = await client.get("/docs")
        assert page.status_code == 200 and "swagger-ui" in page.text
        assert "https://" not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text, page.text
        js = await client.get("/docs/assets/swagger-ui-bundle.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert b"SwaggerUIBundle" in js.content and len(js.content) > 500_000
        css = await client.get("/docs/assets/swagger-ui.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert (await client.get("/docs/assets/other.js")).status_code == 404
        assert (await client.get("/redoc")).status_code == 404
