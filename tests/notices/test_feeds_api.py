"""The collected feeds over the HTTP API (issue 18 point 7): `POST /api/v1/feeds` with a staff bearer token from the
node's own OpenID provider registers a feed and reads it at once; a resident's token and no token are refused with
their codes, and a private address is refused with nothing kept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from identity.app import IdentityService
from services.notices.app import NoticesService
from services.notices.feeds_fetch import FeedReader, parse_allow
from tests.notices.feeds_support import FeedSite
from tests.support.api_node import BASE, ApiNode, api_node, problem
from tests.support.http_server import served
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

NODE = "tsurugashima"


@pytest.fixture
async def node(nats_server, tmp_path) -> AsyncIterator[tuple[ApiNode, str]]:
    def settings(service: str) -> ServiceSettings:
        return ServiceSettings(
            service=service, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / service), public_url=BASE
        )

    reader = FeedReader(allow=parse_allow("127.0.0.0/8"), total=3.0)
    services = [
        IdentityService(settings("identity")),
        NoticesService(settings("notices"), reader=reader, poll_every=None),
    ]
    site, port = FeedSite(), free_port()
    async with (
        served(site.app(), "127.0.0.1", port),
        api_node(
            nats_server.url,
            tmp_path,
            services,
            node=NODE,
            people={"hanako": "山田 花子", "taro": "鈴木 太郎"},
            staff=("taro",),
        ) as api,
    ):
        yield api, f"http://127.0.0.1:{port}"


async def test_staff_register_a_feed_over_the_api(node: tuple[ApiNode, str]) -> None:
    api, site = node
    feed = {"url": site + "/rss", "title": "市の新着", "category": "town"}
    async with api.client() as anyone:
        problem(await anyone.post("/api/v1/feeds", json=feed), 401, "request.unauthenticated")
    async with api.client("hanako") as resident:
        r = await resident.post("/api/v1/feeds", json=feed)
        assert r.status_code == 403, r.text
    async with api.client("taro") as staff:
        r = await staff.post("/api/v1/feeds", json=feed)
        assert r.status_code == 201, r.text
        assert (r.json()["state"], r.json()["items"]) == ("ok", 2)
        problem(await staff.post("/api/v1/feeds", json=feed), 409, "feeds.duplicate")
        problem(
            await staff.post("/api/v1/feeds", json={**feed, "url": "http://10.0.0.8/cms/rss"}),
            400,
            "feeds.address_refused",
        )
        r = await staff.get("/api/v1/feeds")
        assert [x["url"] for x in r.json()["feeds"]] == [site + "/rss"], "a refusal keeps nothing"
