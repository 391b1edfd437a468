"""The operator's CAP 1.2 feeds (services/signage/cap_feed.py), on SQLite and PostgreSQL: an authority's Atom feed
and a single alert's URL, read on a schedule over real HTTP. What is severe enough and in the area goes to the
screens (pushed, once however often the feed is read), the rest is filtered out, a broken feed stops nothing, an
alert linked from another origin is never fetched, and a Cancel in the feed clears what it references."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.signage.app import SignageService
from services.signage.cap_feed import feed_urls, read_document
from tests.signage.helpers import CLERK, NODE, NOW, Node, cap
from tests.support.bus import wait_for
from tests.support.http_server import served
from towntip.kernel.contracts import signage as c
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port
from towntip.node.supervisor import base_env

EVAC = "jma@example.jp,JMA-evac,2026-12-07T10:20:00+09:00"  # the evacuation alert's key, as a Cancel references it


def atom(entries: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<id>urn:example:jma</id><title>気象警報・注意報</title><updated>2026-12-07T10:20:00+09:00</updated>"
        + "".join(f"<entry><id>urn:e:{k}</id><title>e</title>{e}</entry>" for k, e in enumerate(entries))
        + "</feed>"
    ).encode()


def linked(href: str) -> str:
    return f'<link rel="alternate" type="application/cap+xml" href="{href}"/>'


def inline(xml: str) -> str:
    return f'<content type="application/xml">{xml.split("?>", 1)[1]}</content>'


class Authority:
    """The alerting authority's site: its documents by path, and every request it got (port, path)."""

    def __init__(self) -> None:
        self.docs: dict[str, bytes] = {}
        self.hits: list[tuple[int, str]] = []

    async def handle(self, request: Request) -> Response:
        self.hits.append((request.url.port or 0, request.url.path))
        body = self.docs.get(request.url.path)
        if body is None:
            return Response("not here", status_code=404)
        return Response(body, media_type="application/xml")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle)])

    def count(self, port: int, path: str) -> int:
        return self.hits.count((port, path))


@pytest.fixture
async def fed(nats_server: Any, database: tuple[str, str | None], tmp_path: Any) -> AsyncIterator[tuple]:
    site, port, elsewhere = Authority(), free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    site.docs["/alerts/evac.xml"] = cap("evac").encode()
    site.docs["/alerts/osaka.xml"] = cap("osaka", severity="Extreme", area="27100").encode()
    site.docs["/alerts/elsewhere.xml"] = cap("elsewhere", severity="Extreme").encode()
    site.docs["/feed.atom"] = atom(
        [
            linked("/alerts/evac.xml"),
            inline(cap("minor", severity="Minor")),
            linked(f"{base}/alerts/osaka.xml"),
            linked(f"http://127.0.0.1:{elsewhere}/alerts/elsewhere.xml"),  # another origin: never read
        ]
    )
    site.docs["/landslide.xml"] = (
        cap("landslide", severity="Extreme", area="112410").replace("大雨警報", "土砂災害警戒情報").encode()
    )
    site.docs["/page.html"] = b"<html><body>not a feed</body></html>"
    url, schema = database
    settings = ServiceSettings(
        service="signage",
        node_id=NODE,
        nats_url=nats_server.url,
        data_dir=str(tmp_path),
        database_url=url,
        database_schema=schema or "",
        signage_cap_feeds=f"{base}/missing.atom {base}/page.html {base}/feed.atom {base}/landslide.xml",
        signage_cap_areas="11241, 13",
        signage_cap_every_seconds=0.2,
    )
    async with served(site.app(), "127.0.0.1", port), served(site.app(), "127.0.0.1", elsewhere):
        svc = SignageService(settings, clock=lambda: NOW)
        await svc.start()
        nc = await nats.connect(nats_server.url)
        try:
            yield Node(nc, svc, nats_server.url), site, port, elsewhere
        finally:
            await nc.close()
            await svc.stop()


async def test_alerts_from_the_feeds_reach_the_screens_once_and_a_cancel_clears_them(fed: tuple) -> None:
    node, site, port, elsewhere = fed
    tv = await node.screen("hall-1f")
    heard: list[c.Emergency] = []

    async def on_push(msg: Any) -> None:
        heard.append(c.Emergency.model_validate_json(msg.data))

    await tv.nc.subscribe(c.push_emergency(NODE), cb=on_push)
    try:

        async def active() -> list[str] | None:
            got = c.EmergencyList.model_validate(
                await node.call(c.EP_EMERGENCY_LIST, c.EmergencyListQuery(actor=CLERK))
            )
            titles = sorted(e.title for e in got.active)
            return titles if len(titles) >= 2 else None

        # The evacuation (linked, Severe, in 11241) and the landslide alert (its own URL, Extreme, 112410).
        assert await wait_for(active, "both alerts shown", 10) == ["土砂災害警戒情報", "大雨警報"]
        rounds = node.svc.cap_feeds.rounds
        await wait_for(lambda: _after(node, rounds + 3), "three more rounds of the feeds", 10)
        listed = c.EmergencyList.model_validate(await node.call(c.EP_EMERGENCY_LIST, c.EmergencyListQuery(actor=CLERK)))
        assert len(listed.active) == 2 and not listed.recent  # read again and again, taken once
        assert {e.source for e in listed.active} == {"cap"}
        assert await wait_for(lambda: _heard(heard, 2), "both pushed to the screen", 5)
        # A linked alert is read once while the feed lists it; the other origin's never.
        assert site.count(port, "/alerts/evac.xml") == 1 and site.count(port, "/alerts/osaka.xml") == 1
        assert site.count(elsewhere, "/alerts/elsewhere.xml") == 0
        assert site.count(port, "/missing.atom") > 1  # a broken feed is tried again, and stopped nothing

        # The authority cancels the evacuation in its feed: it leaves the screens.
        site.docs["/feed.atom"] = atom([inline(cap("evac-cancel", kind="Cancel", refs=EVAC))])

        async def cleared() -> list[str] | None:
            got = c.EmergencyList.model_validate(
                await node.call(c.EP_EMERGENCY_LIST, c.EmergencyListQuery(actor=CLERK))
            )
            return [e.title for e in got.active] if len(got.active) == 1 else None

        assert await wait_for(cleared, "the evacuation cleared", 10) == ["土砂災害警戒情報"]
        assert await wait_for(lambda: _heard_cleared(heard), "the clearing pushed", 5)
    finally:
        await tv.nc.close()


def test_feeds_are_http_urls_and_documents_are_alerts_or_atom() -> None:
    assert feed_urls(" https://a.example.jp/cap.atom  http://b.example.jp/x.xml ") == (
        "https://a.example.jp/cap.atom",
        "http://b.example.jp/x.xml",
    )
    for bad in ("file:///etc/passwd", "ftp://a.example.jp/x", "https://"):
        with pytest.raises(ValueError):
            feed_urls(bad)
    inline_, links = read_document(
        "https://a.example.jp/f.atom",
        atom([linked("x.xml"), linked("https://a.example.jp:8443/y.xml"), linked("http://a.example.jp/z.xml")]),
    )
    assert inline_ == [] and links == ["https://a.example.jp/x.xml"]  # another port, another scheme: not read


async def _after(node: Node, rounds: int) -> bool:
    return node.svc.cap_feeds.rounds >= rounds


async def _heard(heard: list[c.Emergency], n: int) -> bool:
    return len({e.id for e in heard if not e.cleared}) >= n


async def _heard_cleared(heard: list[c.Emergency]) -> bool:
    return any(e.cleared and e.title == "大雨警報" for e in heard)


def test_the_node_passes_the_cap_settings_to_its_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """`towntip node up` keeps no TOWNTIP_* of its own environment but these (and the mail relay's)."""
    monkeypatch.setenv("TOWNTIP_SIGNAGE_CAP_FEEDS", "https://alerts.example.jp/cap.atom")
    monkeypatch.setenv("TOWNTIP_SIGNAGE_CAP_AREAS", "11241")
    monkeypatch.setenv("TOWNTIP_NODE_ID", "elsewhere")
    env = base_env()
    assert env["TOWNTIP_SIGNAGE_CAP_FEEDS"] == "https://alerts.example.jp/cap.atom" and "TOWNTIP_NODE_ID" not in env
    settings = ServiceSettings(service="signage")
    assert settings.signage_cap_feeds == "https://alerts.example.jp/cap.atom" and settings.signage_cap_areas == "11241"
    monkeypatch.setenv("TOWNTIP_SIGNAGE_CAP_MIN_SEVERITY", "catastrophic")
    with pytest.raises(ValueError):
        ServiceSettings(service="signage")
