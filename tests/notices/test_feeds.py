"""Collected feeds (issue 18 point 7) against a real site served by uvicorn, the real service over NATS, on SQLite and
PostgreSQL: the happy path for each format, ETag and 304, an item seen twice kept once, the broken kinds marked with
their reason while the others still land, the SSRF refusals, the lease that keeps two pollers from one feed."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import nats
import pytest
from sqlalchemy import func, select

from services.notices import feeds, people
from services.notices.app import NoticesService
from services.notices.feeds_fetch import FeedReader, address_allowed, checked_address, parse_allow
from services.notices.feeds_models import calendar_tokens, feed_items
from services.notices.feeds_parse import parse
from services.notices.models import bus
from tests.notices.feeds_support import FeedSite
from tests.support.bus import NODE, call, wait_for
from tests.support.http_server import served
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.contracts.notices import SERVICE
from towntip.kernel.errors import ServiceError
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

STAFF = {"user_id": "staff-0001", "global_handle": "yamada@testnode", "display_name": "山田", "roles": ["staff"]}
RESIDENT = {"user_id": "user-0001", "global_handle": "hanako@testnode", "display_name": "花子", "roles": []}
LOOPBACK = parse_allow("127.0.0.0/8")


@dataclass
class Env:
    nc: nats.NATS
    svc: NoticesService
    site: FeedSite
    base: str
    clock: list[datetime]

    async def call(self, endpoint: str, payload: dict) -> dict:
        return await call(self.nc, endpoint, payload, service=SERVICE, node=NODE)

    async def register(self, path: str, **kw: object) -> dict:
        return await self.call(
            f.EP_FEED_REGISTER, {"actor": STAFF, "url": self.base + path, "title": path.strip("/"), **kw}
        )

    async def restart(self, reader: FeedReader) -> None:
        await self.svc.stop()
        self.svc = NoticesService(self.svc.settings, clock=lambda: self.clock[0], reader=reader, poll_every=None)
        await self.svc.start()

    async def later(self, minutes: int) -> None:
        """Time passes by the service's clock; the poller's round runs (the test's stand-in for the loop)."""
        self.clock[0] += timedelta(minutes=minutes)
        await feeds.poll_round(
            self.svc.sessions, reader=self.svc.reader, owner=self.svc.owner, now=self.clock[0], node=NODE
        )


@pytest.fixture
async def env(nats_server, database, tmp_path) -> AsyncIterator[Env]:
    url, schema = database
    settings = ServiceSettings(
        service=SERVICE,
        node_id=NODE,
        nats_url=nats_server.url,
        data_dir=str(tmp_path),
        database_url=url,
        database_schema=schema or "",
    )
    clock = [datetime(2026, 12, 7, 3, 0, tzinfo=UTC)]
    reader = FeedReader(allow=LOOPBACK, limit=64 * 1024, total=2.0)
    site = FeedSite()
    port = free_port()
    e = Env(
        await nats.connect(nats_server.url),
        NoticesService(settings, clock=lambda: clock[0], reader=reader, poll_every=None),
        site,
        f"http://127.0.0.1:{port}",
        clock,
    )
    await e.svc.start()
    try:
        async with served(site.app(), "127.0.0.1", port):
            try:
                yield e
            finally:
                site.release.set()
    finally:
        await e.nc.close()
        await e.svc.stop()


async def test_each_format_lands_once_and_unchanged_feeds_answer_304(env: Env) -> None:
    rss = await env.register("/rss", category="town", every_minutes=30)
    assert (rss["state"], rss["items"], rss["error_code"]) == ("ok", 2, None)
    ics = await env.register("/ics", category="health")
    js = await env.register("/json", category="work")
    assert (ics["items"], js["items"]) == (2, 1)

    notices = (await env.call(f.EP_FEED_ITEMS, {"kind": "notice"}))["items"]
    assert [i["title"] for i in notices] == ["ごみ収集日の変更", "子育て支援センターのお知らせ", "年末セール"]
    assert notices[0]["summary"] == "年末年始のごみ収集は変わります。", "markup and scripts stripped: text only"
    assert notices[0]["link"] == "https://www.city.example/news/1"

    # Read again on its schedule: the site is asked with its ETag, answers 304, and nothing is written twice.
    await env.later(31)
    assert env.site.conditional == ["", '"v1"'], env.site.hits
    # The site changes one item and adds one: the changed one is updated in place, the new one added.
    env.site.etag = '"v2"'
    env.site.rss = env.site.rss.replace("ごみ収集日の変更", "ごみ収集日の変更（訂正）").replace(
        "</channel>", "<item><title>図書館の休館</title><guid>news-3</guid></item></channel>"
    )
    await env.later(31)
    await env.later(31)  # and once more unchanged
    async with env.svc.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(feed_items)) == 6
        # Each new item announced once, in the transaction that kept it; the corrected one not again.
        subject = f.FeedItemCollected.subject(NODE)
        announced = select(func.count()).select_from(bus.outbox).where(bus.outbox.c.subject == subject)
        assert await s.scalar(announced) == 6
    titles = [i["title"] for i in (await env.call(f.EP_FEED_ITEMS, {"kind": "notice"}))["items"]]
    assert "ごみ収集日の変更（訂正）" in titles and "ごみ収集日の変更" not in titles and "図書館の休館" in titles

    events = (await env.call(f.EP_CALENDAR, {"start": env.site.day.isoformat(), "days": 7}))["items"]
    assert [(e["title"], e["all_day"], e["category"]) for e in events] == [
        ("ふれあいサロン", False, "health"),
        ("福祉バザー", True, "health"),
    ]
    assert events[0]["starts_at"].startswith(f"{env.site.day.isoformat()}T01:00:00")  # 10:00 in Tokyo
    assert events[0]["location"] == "富士見公民館"


async def test_broken_feeds_are_marked_with_their_reason_and_never_stop_the_others(env: Env) -> None:
    good = await env.register("/rss")
    huge = await env.register("/huge")
    slow = await env.register("/slow")
    bad = await env.register("/malformed")
    gone = await env.register("/gone")
    # A site that is down: nothing listens on its port (an allowed loopback address, so only the connection fails).
    down = await env.call(
        f.EP_FEED_REGISTER, {"actor": STAFF, "url": f"http://127.0.0.1:{free_port()}/down", "title": "down"}
    )
    states = {
        x["url"].rsplit("/", 1)[1]: (x["state"], x["error_code"]) for x in (good, huge, slow, bad, gone, down)
    }
    assert states == {
        "rss": ("ok", None),
        "huge": ("broken", "feeds.too_large"),
        "slow": ("broken", "feeds.timeout"),
        "malformed": ("broken", "feeds.malformed"),
        "gone": ("broken", "feeds.http_status"),
        "down": ("broken", "feeds.unreachable"),
    }
    assert "404" in gone["error"]

    # At the next round all are due at once: the slow one takes its whole timeout, the others land meanwhile.
    env.site.etag = '"v2"'
    env.site.rss = env.site.rss.replace("</channel>", "<item><title>新着</title><guid>n9</guid></item></channel>")
    await env.later(61)
    listed = {x["id"]: x for x in (await env.call(f.EP_FEED_LIST, {"actor": STAFF}))["feeds"]}
    assert listed[good["id"]]["state"] == "ok" and listed[good["id"]]["items"] == 3
    assert listed[slow["id"]]["error_code"] == "feeds.timeout"
    assert env.site.hits["/slow"] == 2 and env.site.hits["/huge"] == 2

    # Staff pause one: it is not read again, and its items leave the public lists.
    await env.call(f.EP_FEED_PAUSE, {"actor": STAFF, "feed_id": good["id"], "paused": True})
    await env.later(61)
    assert env.site.hits["/rss"] == 2
    assert (await env.call(f.EP_FEED_ITEMS, {}))["items"] == []


async def test_private_addresses_are_refused_unless_allowed(env: Env) -> None:
    with pytest.raises(ServiceError) as refused:
        await checked_address(env.base + "/rss", ())
    assert refused.value.error_code == "feeds.address_refused"
    # The service again without TOWNTIP_FEED_ALLOW: the node's own network is out of reach.
    await env.restart(FeedReader())
    for url, code in (
        (env.base + "/rss", "feeds.address_refused"),
        ("http://localhost:9/rss", "feeds.address_refused"),
        ("http://[::ffff:127.0.0.1]/", "feeds.address_refused"),
        ("http://169.254.169.254/latest/meta-data", "feeds.address_refused"),
        ("http://user:pw@example.com/rss", "feeds.bad_url"),
    ):
        with pytest.raises(ServiceError) as exc:
            await env.call(f.EP_FEED_REGISTER, {"actor": STAFF, "url": url, "title": "x"})
        assert exc.value.error_code == code, url
    assert (await env.call(f.EP_FEED_LIST, {"actor": STAFF}))["feeds"] == [], "a refusal keeps nothing"
    with pytest.raises(ServiceError) as exc:
        await env.call(f.EP_FEED_REGISTER, {"actor": STAFF, "url": "ftp://example.com/x", "title": "x"})
    assert exc.value.status == 400
    with pytest.raises(ServiceError) as exc:
        await env.call(f.EP_FEED_LIST, {"actor": RESIDENT})
    assert exc.value.error_code == "feeds.staff_only"


async def test_a_redirect_to_a_private_address_is_refused(env: Env) -> None:
    # Only 127.0.0.1 is allowed; the site redirects to 127.0.0.2, another loopback address: refused before any
    # connection, the feed marked broken.
    await env.restart(FeedReader(allow=parse_allow("127.0.0.1/32"), total=2.0))
    env.site.redirect_to = env.base.replace("127.0.0.1", "127.0.0.2") + "/rss"
    feed = await env.register("/redirect")
    assert (feed["state"], feed["error_code"]) == ("broken", "feeds.address_refused")
    assert "127.0.0.2" in feed["error"] and "/rss" not in env.site.hits


def test_address_checks() -> None:
    allowed = parse_allow("10.20.0.0/16")
    for text, ok in (
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("10.20.3.4", True),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.251", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.20.0.9", True),
    ):
        assert address_allowed(ipaddress.ip_address(text), allowed) is ok, text


async def test_one_poller_at_a_time_and_one_row_per_item(env: Env) -> None:
    feed = await env.register("/rss", every_minutes=5)
    env.clock[0] += timedelta(minutes=6)
    async with env.svc.sessions() as s1, s1.begin():
        first = await feeds.claim(s1, feed["id"], owner="a", now=env.clock[0])
    async with env.svc.sessions() as s2, s2.begin():
        second = await feeds.claim(s2, feed["id"], owner="b", now=env.clock[0])
    assert first is not None and second is None, "the lease keeps a second instance off the feed"
    # Two instances storing the same fetch (a lease that ran out mid-write) still keep each item once.
    env.site.etag = '"v3"'
    got = await env.svc.reader.fetch(env.base + "/rss")
    parsed = parse(got.body, got.content_type)

    async def store() -> None:
        async with env.svc.sessions() as s, s.begin():
            await feeds.store(s, first, parsed, now=env.clock[0], node=NODE)

    await asyncio.gather(store(), store())
    async with env.svc.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(feed_items)) == 2


async def test_rules_sort_items_into_categories(env: Env) -> None:
    rules = await env.call(
        f.EP_FEED_RULES_PUT,
        {
            "actor": STAFF,
            "rules": [{"keyword": "子育て", "category": "learning"}, {"keyword": "生活", "category": "work"}],
        },
    )
    assert len(rules["rules"]) == 2
    with pytest.raises(ServiceError) as exc:
        await env.call(f.EP_FEED_RULES_PUT, {"actor": STAFF, "rules": [{"keyword": "x", "category": "nope"}]})
    assert exc.value.status == 400
    assert (await env.call(f.EP_FEED_RULES, {"actor": STAFF}))["rules"] == rules["rules"], "a refusal changed nothing"
    await env.register("/rss", category="town")
    got = {i["title"]: i["category"] for i in (await env.call(f.EP_FEED_ITEMS, {}))["items"]}
    # ごみ: the site's own category 生活 matches the second rule; 子育て: the first.
    assert got == {"ごみ収集日の変更": "work", "子育て支援センターのお知らせ": "learning"}


async def test_the_services_pollers_read_a_due_feed_once_between_two_instances(env: Env) -> None:
    feed = await env.register("/rss", every_minutes=30)
    assert env.site.hits["/rss"] == 1, "read at once when registered"
    # Two instances on one database, each with its polling loop (every 50 ms by the service's clock).
    await env.svc.stop()
    settings, reader = env.svc.settings, env.svc.reader

    def make() -> NoticesService:
        return NoticesService(settings, clock=lambda: env.clock[0], reader=reader, poll_every=0.05)

    env.svc, other = make(), make()
    await env.svc.start()
    await other.start()
    try:
        env.clock[0] += timedelta(minutes=31)

        async def read_again() -> bool:
            listed = {x["id"]: x for x in (await env.call(f.EP_FEED_LIST, {"actor": STAFF}))["feeds"]}
            return listed[feed["id"]]["last_polled_at"].startswith(env.clock[0].isoformat()[:19])

        await wait_for(read_again, "the pollers to read the feed when it was due")
        # Its next turn is 30 minutes on: however often either loop looks now, the site was asked once more only.
        for owner in (env.svc.owner, other.owner):
            await feeds.poll_round(env.svc.sessions, reader=env.svc.reader, owner=owner, now=env.clock[0], node=NODE)
        assert env.site.hits["/rss"] == 2
    finally:
        await other.stop()


async def test_a_private_calendar_token_is_kept_as_its_hash_and_goes_with_the_account(env: Env) -> None:
    resident = {**RESIDENT, "roles": ["staff"]}
    token = (await env.call(f.EP_CALENDAR_TOKEN, {"actor": resident}))["token"]
    async with env.svc.sessions() as s:
        stored = (await s.execute(select(calendar_tokens))).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in stored
    holder = await env.call(f.EP_CALENDAR_HOLDER, {"token": token})
    assert holder["actor"]["global_handle"] == "hanako@testnode" and holder["actor"]["roles"] == []
    status = await env.call(f.EP_CALENDAR_STATUS, {"actor": resident})
    assert status["active"] is True
    async with env.svc.sessions() as s, s.begin():
        await people.forget(s, "hanako@testnode")
    with pytest.raises(ServiceError) as exc:
        await env.call(f.EP_CALENDAR_HOLDER, {"token": token})
    assert exc.value.error_code == "calendar.token_unknown"


def test_the_operators_allowed_networks_reach_the_notices_service_under_node_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`towntip node up` gives its children none of its own TOWNTIP_* settings but a few an operator sets in the
    environment: TOWNTIP_FEED_ALLOW (a CMS on the municipal LAN) is one of them."""
    from towntip.kernel.settings import ServiceSettings
    from towntip.node.supervisor import base_env

    monkeypatch.setenv("TOWNTIP_FEED_ALLOW", "10.20.0.0/16")
    monkeypatch.setenv("TOWNTIP_NODE_ID", "elsewhere")
    env = base_env()
    assert env["TOWNTIP_FEED_ALLOW"] == "10.20.0.0/16" and "TOWNTIP_NODE_ID" not in env
    assert ServiceSettings(service="notices").feed_allow == "10.20.0.0/16"
