"""The HTTP API generated from the services' endpoint tables (gateway/api/generated.py), on a real node in-process:
a real nats-server, the real identity, sns (on SQLite and PostgreSQL) and projects services, and the gateway app;
residents hold access tokens from the node's own OpenID provider (a code flow with PKCE, as a third-party client
would get them).

One test per role decision: a public read needs no token; a resident's write needs a token and acts as that person
(an actor in the body is refused, never taken); a staff-only op refuses a resident with 403 and a code, and the
node's admin token too (it is no person); a service's refusal comes back as problem+json with its code.
"""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import func, select

from identity.app import IdentityService
from services.projects.app import ProjectsService
from services.sns.app import SnsService
from services.sns.models import communities
from tests.support.api_node import ADMIN_TOKEN, BASE, ApiNode, api_node, problem
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import projects as pc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

NODE = "tsuru"


@dataclass
class Node:
    api: ApiNode
    sns: SnsService

    @property
    def nc(self) -> nats.NATS:
        return self.api.nc

    def client(self, who: str | None = None) -> httpx.AsyncClient:
        return self.api.client(who)

    async def communities(self) -> int:
        async with self.sns.sessions() as s:
            return (await s.execute(select(func.count()).select_from(communities))).scalar_one()


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    url, schema = database  # the sns service's (the writes these tests make): SQLite and PostgreSQL

    def settings(service: str) -> ServiceSettings:
        db = {"database_url": url, "database_schema": schema or ""} if service == "sns" else {}
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE, **db)

    sns = SnsService(settings("sns"))
    async with api_node(nats_server.url, tmp_path,
                        [IdentityService(settings("identity")), sns, ProjectsService(settings("projects"))],
                        node=NODE, people={"hanako": "山田 花子", "taro": "鈴木 太郎"}, staff=("taro",)) as api:
        yield Node(api, sns)


async def test_public_reads_need_no_token(node: Node) -> None:
    async with node.client() as anyone:
        r = await anyone.get("/api/v1/communities")
        assert r.status_code == 200, r.text
        assert r.json()["communities"] == []
        r = await anyone.get("/api/v1/themes")
        assert r.status_code == 200 and r.json()["themes"] == [], r.text
        r = await anyone.get("/api/v1/cases", params={"field": "npo-3"})
        assert r.status_code == 200, r.text
        # a query field the request model does not have is refused, as the schema says
        problem(await anyone.get("/api/v1/communities", params={"nonsense": "1"}), 422, "request.unprocessable")


async def test_a_residents_write_needs_a_token_and_acts_as_that_person(node: Node) -> None:
    body = {"name": "菜園の会", "description": "畑仕事", "categories": ["npo-3"]}
    async with node.client() as anyone, node.client("hanako") as hanako:
        r = await anyone.post("/api/v1/communities", json=body)
        problem(r, 401, "request.unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")
        # a token that is not one of this provider's
        async with node.client() as forger:
            forger.headers["Authorization"] = "Bearer " + "x" * 40
            problem(await forger.post("/api/v1/communities", json=body), 401, ic.TOKEN_INVALID.code)
        # who asks is never taken from the body
        forged = {**body, "actor": {"user_id": "someone-else", "global_handle": "taro@tsuru",
                                    "display_name": "taro", "roles": ["staff"]}}
        problem(await hanako.post("/api/v1/communities", json=forged), 422, "request.unprocessable")
        assert await node.communities() == 0

        r = await hanako.post("/api/v1/communities", json=body)
        assert r.status_code == 200, r.text
        garden = r.json()
        assert garden["leader"]["global_handle"] == f"hanako@{NODE}" and garden["my_role"] == "leader"
        # a public read with a token says who asks (my_role), without one it does not
        cid = garden["id"]
        assert (await hanako.get(f"/api/v1/communities/{cid}")).json()["my_role"] == "leader"
        assert (await anyone.get(f"/api/v1/communities/{cid}")).json()["my_role"] is None

        async with node.client("taro") as taro:
            r = await taro.post(f"/api/v1/communities/{cid}/join")
            assert r.status_code == 200 and r.json()["my_role"] == "member", r.text
            r = await taro.post(f"/api/v1/communities/{cid}/posts", json={"title": "種まき", "body": "土曜に"})
            assert r.status_code == 200, r.text
            post = r.json()
            assert post["author"]["global_handle"] == f"taro@{NODE}", post
        r = await anyone.get(f"/api/v1/communities/{cid}/posts")
        assert r.status_code == 200 and [p["title"] for p in r.json()["posts"]] == ["種まき"], r.text


async def test_a_staff_only_op_refuses_a_resident_and_the_admin_token(node: Node) -> None:
    dept = await rpc.call(node.nc, subjects.svc(NODE, pc.SERVICE, pc.EP_ORG_CREATE), {
        "actor": {"user_id": "taro-user-id", "global_handle": f"taro@{NODE}", "display_name": "鈴木 太郎",
                  "roles": ["staff"]}, "kind": "department", "name": "市民協働課"}, timeout=15)
    theme = {"title": "空き家の活用", "owner_department_id": dept["id"], "fields": ["npo-3"]}
    async with node.client("hanako") as hanako:
        problem(await hanako.post("/api/v1/themes", json=theme), 403, "request.role_missing")
    async with node.client() as admin:
        admin.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        problem(await admin.post("/api/v1/themes", json=theme), 403, "request.person_required")
        # the admin token is fine where no person is needed
        assert (await admin.get("/api/v1/themes")).status_code == 200
    async with node.client() as anyone:
        problem(await anyone.post("/api/v1/themes", json=theme), 401, "request.unauthenticated")
    async with node.client("taro") as taro:
        r = await taro.post("/api/v1/themes", json=theme)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "draft"
        r = await taro.get(f"/api/v1/themes/{r.json()['id']}/history")
        assert r.status_code == 200, r.text
        assert r.json()["entries"][0]["actor"] == f"taro@{NODE}", r.json()


async def test_a_services_refusal_is_problem_json_with_its_code(node: Node) -> None:
    async with node.client() as anyone, node.client("hanako") as hanako:
        problem(await anyone.get(f"/api/v1/communities/{uuid.uuid4()}"), 404, "community.not_found")
        body = {"name": "読書会", "categories": ["npo-3"]}
        r = await hanako.post("/api/v1/communities", json=body)
        assert r.status_code == 200, r.text
        problem(await hanako.post("/api/v1/communities", json=body), 409, "community.name_taken")
        problem(await hanako.post(f"/api/v1/communities/{r.json()['id']}/join"), 409, "community.already_member")
        # what the request model itself refuses is refused at the gateway, with the field named
        r = await hanako.post("/api/v1/communities", json={**body, "name": "囲碁", "categories": ["nope"]})
        assert problem(r, 422, "request.unprocessable")["errors"][0]["loc"] == ["body", "categories"]
        assert await node.communities() == 1


async def test_the_routes_and_their_refusals_are_in_openapi(node: Node) -> None:
    async with node.client() as anyone:
        doc = (await anyone.get("/openapi.json")).json()
    opened = doc["paths"]["/api/v1/communities"]["post"]
    assert opened["operationId"] == f"sns.{sc.EP_COMMUNITY_OPEN}"
    assert "community.name_taken" in opened["responses"]["409"]["x-codes"]
    assert "request.unauthenticated" in opened["responses"]["401"]["x-codes"]
    assert "actor" not in str(opened["requestBody"])  # the actor is never sent
    listed = doc["paths"]["/api/v1/communities"]["get"]
    assert "request.unauthenticated" not in str(listed["responses"])  # public: no token needed
    created = doc["paths"]["/api/v1/themes"]["post"]
    assert "request.role_missing" in created["responses"]["403"]["x-codes"]
    assert created["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Theme"}
    # the same row gives the AsyncAPI entry, which names its route
    async with node.client() as anyone:
        channels = (await anyone.get("/asyncapi.json")).json()["channels"]
    assert channels[f"svc.sns.{sc.EP_COMMUNITY_OPEN}"]["x-http"] == "POST /api/v1/communities"
    assert channels[f"svc.sns.{sc.EP_COMMUNITY_OPEN}"]["x-role"] == "signed_in"
    assert "x-http" not in channels[f"svc.projects.{pc.EP_THEME_PUBLISH}"]  # bus only


def test_a_gateway_or_operator_op_is_never_a_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row for the gateway's own use (sessions, lookups) or the operator's CLI marked for HTTP is a mistake in the
    table, found when the gateway starts."""
    from gateway.api import generated
    from towntip.kernel.domain import GATEWAY, GET, OPERATOR, Domain, read

    async def handler() -> None:
        return None

    for role in (GATEWAY, OPERATOR):
        tables = types.ModuleType("tables_for_the_test")
        tables.DOMAINS = (Domain("d", ops=(read("x.get", None, None, handler, role=role, http=GET("/x")),)),)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "tables_for_the_test", tables)
        with pytest.raises(ValueError, match="never an HTTP route"):
            generated.router([("svc", "tables_for_the_test")])


def test_who_may_call_a_row_of_each_role() -> None:
    """The gateway's decision for each role a row may declare (the service still decides on the thing itself)."""
    from gateway.api.generated import ADMIN, allow
    from towntip.kernel import errors
    from towntip.kernel.domain import ANYONE, SECRETARIAT, SIGNED_IN, STAFF

    def person(*roles: str) -> Actor:
        return Actor(user_id="u" * 8, global_handle=f"hanako@{NODE}", display_name="花子", roles=roles)

    def code(role: str, who: Any) -> str:
        try:
            allow(role, who)
        except errors.ServiceError as exc:
            return exc.error_code
        return "ok"

    resident, staff, secretariat = person(), person("staff"), person("secretariat")
    assert [code(ANYONE, w) for w in (None, ADMIN, resident)] == ["ok", "ok", "ok"]
    assert allow(ANYONE, resident) == resident and allow(ANYONE, ADMIN) is None  # the admin token is no actor
    assert [code(SIGNED_IN, w) for w in (None, ADMIN, resident)] == [
        "request.unauthenticated", "request.person_required", "ok"]
    assert [code(STAFF, w) for w in (None, ADMIN, resident, staff, secretariat)] == [
        "request.unauthenticated", "request.person_required", "request.role_missing", "ok", "ok"]
    assert [code(SECRETARIAT, w) for w in (resident, staff, secretariat)] == [
        "request.role_missing", "request.role_missing", "ok"]
