"""Matching (マッチング) over the HTTP API: the openings' reads, the openings that fit the caller, apply and withdraw
under /api/v1, on a real node in-process (the fixture of test_api_generated.py: a real nats-server, identity, sns on
SQLite and PostgreSQL, projects). The opening is posted on the bus, as the portal does. Each refusal changes
nothing: applying without a token, twice, to one's own opening; withdrawing what is not there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.sns.models import applications, bus
from tests.gateway.test_api_generated import NODE, Node, node  # noqa: F401 - the fixture
from tests.support.api_node import problem
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import sns_openings as oc
from towntip.kernel.contracts.actor import Actor

HANAKO, TARO = f"hanako@{NODE}", f"taro@{NODE}"


async def stored(n: Node) -> list[str]:
    """The applications and the outbox: what a refusal must leave as it was."""
    async with n.sns.sessions() as s:
        rows = [repr(tuple(r)) for r in await s.execute(select(applications))]
        return sorted(rows) + sorted(r[0] for r in await s.execute(select(bus.outbox.c.event_id)))


async def test_openings_over_the_api(node: Node) -> None:  # noqa: F811
    async with node.client("hanako") as hanako, node.client("taro") as taro, node.client() as anyone:
        r = await hanako.post("/api/v1/communities", json={"name": "藤金の夏祭り", "categories": ["npo-3"]})
        assert r.status_code == 200, r.text
        cid = r.json()["id"]
        leader = Actor(user_id=node.api.user_ids["hanako"], global_handle=HANAKO, display_name="山田 花子")
        opening = await rpc.call(node.nc, subjects.svc(NODE, "sns", oc.EP_OPENING_CREATE), {
            "actor": leader.model_dump(mode="json"), "host_kind": "community", "host_id": cid,
            "title": "夏祭りの受付", "task": "受付と案内をお願いします", "skills": "受付", "categories": ["npo-3"],
            "district": "藤金", "starts_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(), "capacity": 2})
        oid = opening["id"]

        # public reads: the list (all, by community), one opening
        r = await anyone.get("/api/v1/openings")
        assert r.status_code == 200 and [o["id"] for o in r.json()["openings"]] == [oid], r.text
        r = await anyone.get("/api/v1/openings", params={"host_id": cid, "category": "npo-3"})
        assert r.status_code == 200 and [o["title"] for o in r.json()["openings"]] == ["夏祭りの受付"], r.text
        r = await anyone.get(f"/api/v1/openings/{oid}")
        assert r.status_code == 200 and r.json()["host_name"] == "藤金の夏祭り" and r.json()["mine"] is None, r.text
        problem(await anyone.get(f"/api/v1/openings/{'0' * 8}-0000-4000-8000-{'0' * 12}"), 404, "opening.not_found")

        # what fits me: the caller's own, with the reasons
        problem(await anyone.get("/api/v1/openings/for-me"), 401, "request.unauthenticated")
        r = await taro.get("/api/v1/openings/for-me", params={"interests": ["npo-3"], "district": "藤金"})
        assert r.status_code == 200, r.text
        [match] = r.json()["matches"]
        assert match["opening"]["id"] == oid
        assert {(w["kind"], w["value"]) for w in match["reasons"]} == {("interest", "npo-3"), ("district", "藤金")}
        r = await hanako.get("/api/v1/openings/for-me", params={"interests": ["npo-3"]})
        assert r.status_code == 200 and r.json()["matches"] == [], r.text  # not one's own opening

        # apply: the person is the token's; refusals change nothing
        before = await stored(node)
        problem(await anyone.post(f"/api/v1/openings/{oid}/apply", json={"message": "x"}), 401,
                "request.unauthenticated")
        problem(await hanako.post(f"/api/v1/openings/{oid}/apply", json={}), 400, "opening.own")
        assert await stored(node) == before
        r = await taro.post(f"/api/v1/openings/{oid}/apply", json={"message": "受付やります"})
        assert r.status_code == 200, r.text
        assert (r.json()["applicant"]["global_handle"], r.json()["status"]) == (TARO, "pending")
        before = await stored(node)
        problem(await taro.post(f"/api/v1/openings/{oid}/apply", json={"message": "もう一度"}), 409,
                "opening.already_applied")
        assert await stored(node) == before
        r = await taro.get(f"/api/v1/openings/{oid}")
        assert r.status_code == 200 and r.json()["mine"]["status"] == "pending", r.text

        # withdraw: one's own application only
        before = await stored(node)
        problem(await hanako.post(f"/api/v1/openings/{oid}/withdraw", json={}), 404, "opening.no_application")
        assert await stored(node) == before
        r = await taro.post(f"/api/v1/openings/{oid}/withdraw", json={})
        assert r.status_code == 200 and r.json()["status"] == "withdrawn", r.text
        before = await stored(node)
        problem(await taro.post(f"/api/v1/openings/{oid}/withdraw", json={}), 404, "opening.no_application")
        assert await stored(node) == before
