"""The operator's CAP 1.2 feeds (緊急情報 with no person in the loop): each URL of TOWNTIP_SIGNAGE_CAP_FEEDS is read
every `signage_cap_every_seconds`, and what it holds goes through the same filters as an alert staff post
(emergency.take_cap: Actual only, severity, area; a Cancel or Update clears what it references; each alert taken
once by its sender, identifier and sent).

A URL may give one CAP <alert>, or an Atom feed of them (the usual shape of an alerting authority's feed): an entry's
alert inline in its <content>, or linked (type application/cap+xml first, else its alternate link). Linked alerts are
read only from the feed's own origin (scheme, host, port): the operator chose the feed, not whatever it links to.
No redirects are followed; a feed is read up to FEED_MAX_BYTES, an alert up to CAP_MAX_BYTES, each within
FETCH_SECONDS. A feed that fails is logged and tried at the next round; it never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import tostring

import httpx
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.signage import emergency
from towntip.kernel import errors
from towntip.kernel.contracts import signage as c
from towntip.kernel.loops import woken_rounds

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
FEED_MAX_BYTES = 1024 * 1024
FETCH_SECONDS = 10.0
MAX_ENTRIES = 20  # the newest entries of a feed: an authority's feed lists the alerts in force
USER_AGENT = "TownTip-Commons-signage-cap/1"


class FeedFailed(Exception):
    """The URL did not give a CAP alert or an Atom feed (status, size, time, not XML, another kind of document)."""


def feed_urls(text: str) -> tuple[str, ...]:
    """The operator's setting, URLs separated by spaces; anything but http(s) stops the service's start."""
    urls = tuple(text.split())
    for url in urls:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ValueError(f"TOWNTIP_SIGNAGE_CAP_FEEDS: {url!r} is not an http(s) URL")
    return urls


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


async def fetch(client: httpx.AsyncClient, url: str, limit: int) -> bytes:
    try:
        async with asyncio.timeout(FETCH_SECONDS), client.stream("GET", url) as r:
            if r.status_code != 200:
                raise FeedFailed(f"{url} answered {r.status_code}")
            out = bytearray()
            async for chunk in r.aiter_bytes():
                out += chunk
                if len(out) > limit:
                    raise FeedFailed(f"{url} is larger than {limit} bytes")
            return bytes(out)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise FeedFailed(f"{url}: {type(exc).__name__}") from None


def _link(entry: Any) -> str | None:
    links = entry.findall(ATOM + "link")
    for link in links:
        if link.get("type", "").split(";")[0].strip() == "application/cap+xml" and link.get("href"):
            return str(link.get("href"))
    for link in links:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link.get("href"))
    return None


def read_document(url: str, body: bytes) -> tuple[list[str], list[str]]:
    """(alerts given inline, URLs of linked alerts on the feed's origin) of a CAP alert or an Atom feed."""
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise FeedFailed(f"{url} is not readable XML: {type(exc).__name__}") from None
    if root.tag == emergency.CAP_NS + "alert":
        return [body.decode("utf-8", errors="replace")], []
    if root.tag != ATOM + "feed":
        raise FeedFailed(f"{url} is neither a CAP 1.2 alert nor an Atom feed")
    inline: list[str] = []
    linked: list[str] = []
    for entry in root.findall(ATOM + "entry")[:MAX_ENTRIES]:
        content = entry.find(ATOM + "content")
        alert = content.find(emergency.CAP_NS + "alert") if content is not None else None
        if alert is not None:
            inline.append(tostring(alert, encoding="unicode"))
            continue
        href = _link(entry)
        if href is None:
            continue
        target = urljoin(url, href)
        if _origin(target) != _origin(url):
            log.warning("CAP feed %s links an alert elsewhere (%s): not read", url, target)
            continue
        linked.append(target)
    return inline, linked


class CapFeeds:
    """The loop reading the operator's CAP feeds into emergencies (one per instance; the alert's unique key makes
    a second instance's copy of the same alert a no-op)."""

    def __init__(
        self,
        *,
        urls: tuple[str, ...],
        sessions: async_sessionmaker[AsyncSession],
        node: str,
        min_severity: c.Severity,
        areas: tuple[str, ...],
        every: float,
        clock: Callable[[], datetime],
        committed: Callable[[], None],
    ) -> None:
        self.urls, self.sessions, self.node = urls, sessions, node
        self.min_severity, self.areas, self.every = min_severity, areas, every
        self.clock, self.committed = clock, committed
        self.rounds = 0
        self._read: set[str] = set()  # linked alerts already taken or refused (as long as a feed still lists them)

    async def run(self, stop: asyncio.Event) -> None:
        await woken_rounds("signage CAP feeds", self.round, wake=asyncio.Event(), stop=stop, poll_interval=self.every)

    async def round(self) -> bool:
        listed: set[str] = set()
        async with httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT}) as client:
            for url in self.urls:
                try:
                    inline, linked = read_document(url, await fetch(client, url, FEED_MAX_BYTES))
                except FeedFailed as exc:
                    log.warning("CAP feed not read: %s", exc)
                    continue
                for xml in inline:
                    await self._take(url, xml)
                for target in linked:
                    listed.add(target)
                    if target in self._read:
                        continue
                    try:
                        body = await fetch(client, target, c.CAP_MAX_BYTES)
                    except FeedFailed as exc:
                        log.warning("CAP alert not read: %s", exc)
                        continue  # tried again next round
                    if await self._take(target, body.decode("utf-8", errors="replace")):
                        self._read.add(target)
        self._read &= listed
        self.rounds += 1
        return False

    async def _take(self, where: str, xml: str) -> bool:
        """True when the alert was dealt with (taken, filtered out, refused as malformed): no need to read it again."""
        try:
            async with self.sessions() as s, s.begin():
                outcome = await emergency.take_cap(
                    s, node=self.node, xml=xml, min_severity=self.min_severity, areas=self.areas, now=self.clock()
                )
        except errors.ServiceError as exc:
            log.warning("CAP alert from %s refused: %s", where, exc)
            return True
        except IntegrityError:
            return True  # another instance took the same alert first
        if outcome.taken:
            log.info("CAP alert from %s: %s", where, outcome.why)
            self.committed()
        return True
