"""Four real nodes in two prefectures under a national hub (docs/federation.md, "Prefecture hubs and a national hub").

Each node (its own nats-server, identity, projects and gateway: tests/support/federation_nodes.py, `hierarchy_of`)
dials its prefecture's hub; each prefecture hub dials the national hub with one leafnode remote per member account.
A theme and a profile change reach the node of the same prefecture (one hub) and those of the other (three hubs);
with one prefecture's hub killed, what a town of the other prefecture publishes meanwhile reaches its neighbour at
once and the nodes behind the dead hub when it is back, each event once; a node removed at the anchor and at its
hubs is cut off at its prefecture's hub and refused by every other node.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import pytest

from services.projects.app import ProjectsService
from tests.support.bus import wait_for
from tests.support.federation_nodes import PW, Node, hierarchy_of
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.streams import ensure_peer_sources
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import projects as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.hub import prefecture_peers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation")]  # several nodes and hubs: one at a time

A, A2, K, K2 = "tsurugashima", "kawagoe", "kyoto", "fukuchiyama"
PREFECTURES = {"saitama": [A, A2], "kyoto": [K, K2]}
EVENTS = 200  # published at A while kyoto's hub is down
STAFF = {"user_id": "user-staff-a", "global_handle": f"kikaku@{A}", "display_name": "企画課", "roles": ["staff"]}
CONTENT = {"background": "路線バスが減便された", "target": "75歳以上の方", "desired_outcome": "週2回以上の外出",
           "fields": ["npo-1"], "company_points": "予約システム"}


async def call(node: Node, service: str, endpoint: str, payload: Any) -> Any:
    nc = await nats.connect(node.nats.url)
    try:
        return await rpc.call(nc, subjects.svc(node.name, service, endpoint), payload, timeout=15)
    finally:
        await nc.close()


async def from_a(node: Node) -> int:
    """How many of A's identity events node's FED stream holds."""
    nc = await nats.connect(node.nats.url)
    try:
        info = await nc.jetstream().stream_info(subjects.fed_stream(node.name),
                                                subjects_filter=subjects.evt_all(A, "identity"))
        return sum((info.state.subjects or {}).values())
    finally:
        await nc.close()


async def a_published(node: Node) -> int:
    nc = await nats.connect(node.nats.url)
    try:
        return (await nc.jetstream().stream_info(subjects.evt_stream(A, "identity"))).state.messages
    finally:
        await nc.close()


def query_from(asker: Node, to: Node) -> str:
    """A person query naming `asker` as its issuer that does not verify: a member's is refused as invalid (the
    chain resolves, the signature fails), a removed node's as untrusted."""
    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return ".".join([b64({"alg": "RS256", "typ": ic.PERSON_QUERY_TYP, "kid": "k"}),
                     b64({"iss": asker.base, "sub": f"hanako@{asker.name}", "aud": to.base, "iat": now,
                          "exp": now + 60, "jti": uuid.uuid4().hex}), "c2ln"])


async def refusal(node: Node, asker: Node) -> str:
    try:
        await call(node, ic.SERVICE, ic.EP_REGIONS_VERIFY, ic.PersonQueryIn(token=query_from(asker, node)))
    except errors.ServiceError as exc:
        return exc.error_code
    return "accepted"


def projects(settings: ServiceSettings) -> ProjectsService:
    return ProjectsService(settings, smtp=SmtpSettings(enabled=False))


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
async def test_two_prefectures_under_a_national_hub(tmp_path: Path, database: tuple[str, str | None]) -> None:
    async with hierarchy_of(tmp_path, PREFECTURES, services={"projects": projects},
                            database=database) as (anchor, nodes, national, hubs):
        a = nodes[A]
        for node in nodes.values():  # projects finds its peers at the anchor; identity once it knows people
            assert await node.services["projects"].refresh_members() == set(nodes) - {node.name}
            nc = await nats.connect(node.nats.url)
            await ensure_peer_sources(nc.jetstream(), node.name, set(nodes) - {node.name}, "identity")
            await nc.close()

        # a published theme, applied at every node: one hub to kawagoe, three to kyoto and fukuchiyama
        dept = await call(a, "projects", c.EP_ORG_CREATE, {"actor": STAFF, "kind": "department", "name": "企画課"})
        theme = await call(a, "projects", c.EP_THEME_CREATE, {"actor": STAFF, "owner_department_id": dept["id"],
                                                              "title": "移動の足を守る", **CONTENT})
        await call(a, "projects", c.EP_THEME_PUBLISH, {"actor": STAFF, "theme_id": theme["id"]})
        for peer in (A2, K, K2):
            got = await wait_for(lambda p=nodes[peer]: call(p, "projects", f.EP_THEMES_GET,
                                                            {"origin_node": A, "id": theme["id"]}),
                                 f"A's theme at {peer}", 40, tolerate=(errors.NotFound,))
            assert got["title"] == "移動の足を守る"

        # a profile change: A's identity stream, copied into every peer's FED stream
        login = await call(a, ic.SERVICE, ic.EP_LOGIN, {"login": "hanako", "password": PW})
        before = await a_published(a)
        await call(a, ic.SERVICE, ic.EP_PROFILE_UPDATE, {"session_token": login["session_token"],
                                                         "nickname": "はなちゃん"})
        published = await wait_for(lambda: _more(a_published(a), before), "A's profile change in its stream", 20)
        for peer in (A2, K, K2):
            await wait_for(lambda p=nodes[peer]: _eq(from_a(p), published), f"A's profile change at {peer}", 40)

        # kyoto's hub down while A publishes: kawagoe keeps up, kyoto's nodes catch up when it is back, each once
        kyoto_hub = hubs["kyoto"]
        assert kyoto_hub.proc is not None
        kyoto_hub.proc.kill()
        kyoto_hub.proc.wait()
        nc = await nats.connect(a.nats.url)
        js = nc.jetstream()
        for i in range(EVENTS):
            env = ic.ProfileChanged(user_id=f"user-{i}", handle=f"h{i}", global_handle=f"h{i}@{A}", home_node=A,
                                    display_name="花子").envelope(node=A)
            await js.publish_async(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: env.id})
        await js.publish_async_completed()
        await nc.close()
        assert await a_published(a) == published + EVENTS
        await wait_for(lambda: _eq(from_a(nodes[A2]), published + EVENTS), "kawagoe during the cut", 40)
        assert await from_a(nodes[K]) == published and await from_a(nodes[K2]) == published  # behind the dead hub
        kyoto_hub.start()
        for peer in (K, K2):
            await wait_for(lambda p=nodes[peer]: _eq(from_a(p), published + EVENTS), f"{peer} caught up", 60)

        # fukuchiyama removed at the anchor and at its hubs: cut off, and refused by every other node
        gone = nodes[K2]
        assert {await refusal(nodes[n], gone) for n in (A, A2, K)} == {ic.QUERY_INVALID.code}
        assert anchor.remove(gone.base)
        assert await kyoto_hub.set_members([K]) == [K2]
        left = {"saitama": [A, A2], "kyoto": [K]}
        national.peers = prefecture_peers(left, national=True)
        await national.set_members([A, A2, K])
        for n in (A, A2, K):
            assert await wait_for(lambda n=n: _eq(refusal(nodes[n], gone), ic.QUERY_UNTRUSTED.code),
                                  f"{n} refuses the removed node", 20)


async def _more(coro: Any, than: int) -> int:
    got = await coro
    return int(got) if got > than else 0


async def _eq(coro: Any, want: Any) -> bool:
    return bool(await coro == want)
