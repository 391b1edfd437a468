"""Fetching a registered feed from another site without letting its URL reach into the node's own network (SSRF).

The host is resolved once; every address it resolves to must be public (or inside a CIDR the operator allowed,
`TOWNTIP_FEED_ALLOW`), and the connection goes to that checked address, with the name kept for the Host header and
TLS (SNI and the certificate check): a DNS answer that changes between the check and the connection (rebinding)
cannot redirect it. Redirects are followed by hand, each hop checked the same way. The body is read as a stream and
dropped past a size cap; one deadline covers the whole fetch, so a server that drips bytes cannot hold a poller.
Conditional requests (ETag, Last-Modified) let an unchanged feed answer 304 with no body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.errors import ServiceError

MAX_BYTES = 2 * 1024 * 1024  # a feed of a town's news is tens of kilobytes; two megabytes is already generous
TOTAL_SECONDS = 15.0  # the whole fetch, redirects included
CONNECT_SECONDS = 5.0
MAX_REDIRECTS = 5
USER_AGENT = "TownTip-Commons-feeds/1 (+https://towntip.example/feeds)"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_allow(text: str) -> tuple[Network, ...]:
    """The operator's allowed private networks, `10.1.0.0/16,192.168.5.0/24` (a bad entry stops the service's start:
    better than silently allowing nothing or everything)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Fetched:
    status: int  # 200 or 304
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None
    url: str  # the last hop's URL, after redirects


def _unmapped(addr: Address) -> Address:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return addr


def address_allowed(addr: Address, allow: Iterable[Network]) -> bool:
    addr = _unmapped(addr)
    if any(addr in net for net in allow):
        return True
    # is_global is False for loopback, private, link-local, shared (100.64/10), reserved and documentation ranges.
    return addr.is_global and not addr.is_multicast


async def resolve(host: str, port: int) -> list[Address]:
    try:
        async with asyncio.timeout(CONNECT_SECONDS):  # a resolver that does not answer holds nobody for long
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise f.FEED_UNREACHABLE(f"the name {host} does not resolve ({exc.strerror})") from None
    except (TimeoutError, UnicodeError):
        raise f.FEED_UNREACHABLE(f"the name {host} could not be resolved") from None
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


async def checked_address(url: str, allow: Iterable[Network]) -> tuple[Address, str, int]:
    """The address to connect to for `url`, after checking every address its host resolves to."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [ in the host
        raise f.FEED_BAD_URL("the URL cannot be read") from None
    if parts.scheme not in ("http", "https"):
        raise f.FEED_BAD_URL("only http and https feeds are read")
    if not parts.hostname:
        raise f.FEED_BAD_URL("the URL has no host")
    if parts.username or parts.password:
        raise f.FEED_BAD_URL("a feed URL may not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise f.FEED_BAD_URL("the URL's port is not a number from 1 to 65535") from None
    addrs = await resolve(parts.hostname, port)
    refused = [a for a in addrs if not address_allowed(a, allow)]
    if refused or not addrs:
        raise f.FEED_ADDRESS_REFUSED(
            f"{parts.hostname} resolves to {refused[0] if refused else 'nothing'}, "
            "a private or reserved address this node does not read"
        )
    return addrs[0], parts.hostname, port


def _pinned(url: str, addr: Address, port: int) -> str:
    parts = urlsplit(url)
    host = f"[{addr}]" if addr.version == 6 else str(addr)
    path = parts.path or "/"
    return f"{parts.scheme}://{host}:{port}{path}{'?' + parts.query if parts.query else ''}"


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise f.FEED_TOO_LARGE(f"the feed says it is {int(declared)} bytes; at most {limit} are read")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise f.FEED_TOO_LARGE(f"the feed is larger than {limit} bytes")
    return bytes(body)


async def _one_hop(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], allow: Iterable[Network], limit: int
) -> tuple[httpx.Response, bytes]:
    addr, host, port = await checked_address(url, allow)
    default = 443 if url.startswith("https:") else 80
    hop_headers = {**headers, "Host": host if port == default else f"{host}:{port}"}
    request = client.build_request(
        "GET", _pinned(url, addr, port), headers=hop_headers, extensions={"sni_hostname": host}
    )
    response = await client.send(request, stream=True)
    try:
        bodiless = response.has_redirect_location or response.status_code == 304
        body = b"" if bodiless else await _read_capped(response, limit)
    finally:
        await response.aclose()
    return response, body


async def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    allow: Iterable[Network] = (),
    limit: int = MAX_BYTES,
    total: float = TOTAL_SECONDS,
) -> Fetched:
    """Fetch `url` as described above; refusals are the contracts' FEED_* errors, each with a reason for staff."""
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "application/atom+xml, application/rss+xml, text/calendar, "
        "application/json, application/xml;q=0.9, */*;q=0.5",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = httpx.Timeout(total, connect=CONNECT_SECONDS)
    try:
        async with (
            asyncio.timeout(total),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        ):
            return await _follow(client, url, headers, tuple(allow), limit)
    except TimeoutError:
        raise f.FEED_TIMEOUT(f"the site did not answer within {total:.0f} s") from None
    except httpx.TimeoutException:
        raise f.FEED_TIMEOUT(f"the site did not answer within {total:.0f} s") from None
    except httpx.HTTPError as exc:
        raise f.FEED_UNREACHABLE(f"the site could not be read ({exc.__class__.__name__}: {exc})"[:300]) from None
    except (httpx.InvalidURL, ValueError) as exc:  # a redirect to an address httpx cannot even form
        raise f.FEED_BAD_URL(f"the address cannot be read ({exc})"[:300]) from None


async def _follow(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], allow: tuple[Network, ...], limit: int
) -> Fetched:
    for _ in range(MAX_REDIRECTS + 1):
        response, body = await _one_hop(client, url, headers, allow, limit)
        if response.has_redirect_location:
            url = urljoin(url, response.headers.get("location", ""))
            continue
        if response.status_code not in (200, 304):
            raise f.FEED_HTTP_STATUS(f"the site answered HTTP {response.status_code}")
        return Fetched(
            status=response.status_code,
            body=body,
            content_type=response.headers.get("content-type", "").split(";")[0].strip().lower(),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            url=url,
        )
    raise f.FEED_UNREACHABLE(f"more than {MAX_REDIRECTS} redirects")


@dataclass(frozen=True)
class FeedReader:
    """How this service reads feeds: the operator's allowed networks and the limits (tests shrink them)."""

    allow: tuple[Network, ...] = ()
    limit: int = MAX_BYTES
    total: float = TOTAL_SECONDS

    async def check(self, url: str) -> None:
        """Refuse a URL that could never be read (scheme, credentials, a private address, a name that does not
        resolve: the registrant's mistake, not the site's failure) before keeping it."""
        try:
            await checked_address(url, self.allow)
        except ServiceError as exc:
            if exc.error_code != f.FEED_UNREACHABLE.code:
                raise
            raise f.FEED_BAD_URL(exc.reason) from None

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        return await fetch(
            url, etag=etag, last_modified=last_modified, allow=self.allow, limit=self.limit, total=self.total
        )
