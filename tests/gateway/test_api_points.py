"""The points service's HTTP routes generated from its tables (gateway/api/generated.py), on a real node in-process:
a real nats-server, the identity and points services (points on SQLite and PostgreSQL) and the gateway app. Residents
hold access tokens from the node's own OpenID provider, as in test_api_generated.py.

Public reads (events, donation projects) need no token; a person's own things (my points, my notebook) need a
person's token and answer for that person only; the staff's figures refuse a resident and the admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from identity.app import IdentityService
from services.points.app import PointsService
from tests.support.api_node import ADMIN_TOKEN, BASE, ApiNode, api_node, problem
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.contracts import points as pc
from towntip.kernel.settings import ServiceSettings

NODE = "tsuru"


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[ApiNode]:
    url, schema = database  # the points service's

    def settings(service: str) -> ServiceSettings:
        db = {"database_url": url, "database_schema": schema or ""} if service == "points" else {}
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE, **db)

    async with api_node(nats_server.url, tmp_path,
                        [IdentityService(settings("identity")), PointsService(settings("points"))],
                        node=NODE, people={"hanako": "山田 花子", "taro": "鈴木 太郎"}, staff=("taro",)) as api:
        yield api


async def test_events_and_donation_projects_are_public_reads(node: ApiNode) -> None:
    await rpc.call(node.nc, subjects.svc(NODE, pc.SERVICE, pc.EP_EVENT_PUT),
                   {"code": "summer", "name": "夏祭り", "participant_points": 2}, timeout=15)
    async with node.client() as anyone:
        r = await anyone.get("/api/v1/points/events")
        assert r.status_code == 200, r.text
        assert [(e["code"], e["participant_points"]) for e in r.json()["events"]] == [("summer", 2)]
        r = await anyone.get("/api/v1/points/events/summer")
        assert r.status_code == 200 and r.json()["name"] == "夏祭り", r.text
        problem(await anyone.get("/api/v1/points/events/winter"), 404, pc.EVENT_NOT_FOUND.code)
        problem(await anyone.get("/api/v1/points/events/Not%20A%20Code"), 422, "request.unprocessable")
        r = await anyone.get("/api/v1/donations/projects")
        assert r.status_code == 200 and r.json() == {"projects": []}, r.text
        problem(await anyone.get("/api/v1/donations/projects/no-such"), 404, "donation.project_not_found")


async def test_my_points_and_my_notebook_are_the_token_holders_own(node: ApiNode) -> None:
    async with node.client() as anyone:
        problem(await anyone.get("/api/v1/points/mine"), 401, "request.unauthenticated")
        problem(await anyone.get("/api/v1/notebook"), 401, "request.unauthenticated")
        anyone.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        problem(await anyone.get("/api/v1/points/mine"), 403, "request.person_required")
    # 3 points for hanako, none for taro (the operator's ledger endpoint)
    await rpc.call(node.nc, subjects.svc(NODE, pc.SERVICE, lc.EP_LEDGER_POST), {"entries": [{
        "key": "award-hanako-0001", "kind": "award", "legs": [
            {"account": "system:issuance", "asset": "machi-point", "amount": -3},
            {"account": f"person:{node.user_ids['hanako']}", "asset": "machi-point", "amount": 3}]}]}, timeout=15)
    async with node.client("hanako") as hanako, node.client("taro") as taro:
        r = await hanako.get("/api/v1/points/mine")
        assert r.status_code == 200, r.text
        assert r.json() == {"asset": "machi-point", "balance": 3, "cards": [], "pending": []}
        # a query naming someone else changes nothing: the answer is the token holder's
        r = await taro.get("/api/v1/points/mine", params={"person": node.user_ids["hanako"]})
        assert r.status_code == 200 and r.json()["balance"] == 0, r.text
        r = await hanako.get("/api/v1/notebook")
        assert r.status_code == 200, r.text
        assert (r.json()["global_handle"], r.json()["display_name"], r.json()["entries"]) == (
            f"hanako@{NODE}", "山田 花子", [])


async def test_the_figures_are_for_staff_only(node: ApiNode) -> None:
    async with node.client() as anyone:
        problem(await anyone.get("/api/v1/figures"), 401, "request.unauthenticated")
    async with node.client("hanako") as hanako:
        problem(await hanako.get("/api/v1/figures"), 403, "request.role_missing")
    async with node.client("taro") as taro:
        r = await taro.get("/api/v1/figures")
        assert r.status_code == 200, r.text
        assert (r.json()["points"], r.json()["people"]) == (0, 0)
