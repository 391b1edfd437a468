"""A node's HTTP API in-process for tests of /api/v1: the services a test names, started on a real nats-server, the
gateway app with its lifespan, an OIDC client registered at the node's own provider, people added (some of them
staff) and an access token for each from a code flow with PKCE, as a third-party client would get it.

    async with api_node(nats_server.url, tmp_path, [ident, sns], people={"hanako": "山田 花子"},
                        staff=("taro",)) as node:
        async with node.client("hanako") as hanako: ...        # "admin": the node's admin token; None: no token
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import nats
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.identity.test_oidc_flow import PW, RP_CB, authorize, portal_login
from tests.support import bus
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.contracts import identity as ic
from towntip.kernel.service import ServiceProcess

BASE = "https://tsuru.example.jp"
ADMIN_TOKEN = "admin-token-for-the-api-tests"
PROBLEM = "application/problem+json"


@dataclass
class ApiNode:
    app: Any
    nc: nats.NATS
    tokens: dict[str, str]  # handle -> access token
    user_ids: dict[str, str] = field(default_factory=dict)  # handle -> the identity service's user id

    def client(self, who: str | None = None) -> httpx.AsyncClient:
        token = ADMIN_TOKEN if who == "admin" else self.tokens[who] if who else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE, headers=headers,
                                 follow_redirects=False)


async def access_token(app: Any, client_id: str, secret: str, handle: str) -> str:
    """The person's access token from the node's provider: portal login, authorization code with PKCE, exchange."""
    transport = httpx.ASGITransport(app=app)
    env = type("E", (), {"browser": lambda self: httpx.AsyncClient(transport=transport, base_url=BASE)})()
    async with httpx.AsyncClient(transport=transport, base_url=BASE, follow_redirects=False) as browser, \
            AsyncOAuth2Client(transport=transport, client_id=client_id, client_secret=secret, redirect_uri=RP_CB,
                              scope="openid profile", code_challenge_method="S256") as rp:
        r = await portal_login(browser, handle, PW)
        assert r.status_code == 303, r.text
        r, verifier, _ = await authorize(env, browser, rp)  # type: ignore[arg-type]
        assert r.status_code == 302 and "code=" in urlsplit(r.headers["location"]).query, r.text
        token = await rp.fetch_token(f"{BASE}/oauth/token", authorization_response=r.headers["location"],
                                     code_verifier=verifier)
        return str(token["access_token"])


@asynccontextmanager
async def api_node(nats_url: str, tmp_path: Path, services: Iterable[ServiceProcess], *, node: str,
                   people: Mapping[str, str], staff: Iterable[str] = ()) -> AsyncIterator[ApiNode]:
    """`services` (identity among them) started in order and stopped in reverse; `people`: handle -> name."""
    services = list(services)
    async with started(*services):
        nc = await nats.connect(nats_url)
        try:
            app = gateway_app(nats_url, tmp_path, node=node, services=",".join(svc.service for svc in services),
                              public_url=BASE, admin_token=ADMIN_TOKEN)
            async with app.router.lifespan_context(app):
                client = await bus.call(nc, ic.EP_CLIENT_ADD, ic.ClientAddIn(client_id="api-client",
                                                                              redirect_uris=[RP_CB]),
                                        service=ic.SERVICE, node=node)
                staff = set(staff)
                users = await add_people(nc, node, [(h, name, "staff" if h in staff else None)
                                                    for h, name in people.items()])
                tokens = {h: await access_token(app, client["client_id"], client["client_secret"], h) for h in people}
                yield ApiNode(app, nc, tokens, {h: u.id for h, u in users.items()})
        finally:
            await nc.close()


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is problem+json with this status and refusal code."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM, r.headers
    body = r.json()
    assert body["status"] == status and body["code"] == code, body
    return body
