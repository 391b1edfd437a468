"""Fetching a peer town's offered media from its public URL (services/signage/federation.py adopts it): plain HTTP
GET, no redirects followed, no cookies, a size limit enforced while reading, a timeout for the whole."""

from __future__ import annotations

import asyncio

import httpx

from towntip.kernel.contracts import signage_federation as f


async def fetch(url: str, limit: int) -> bytes:
    """At most `limit` bytes of `url`; anything else (a status but 200, a redirect, more bytes, a timeout, a
    refused connection) is f.PEER_UNREACHABLE."""
    try:
        # httpx's own 5 s per read would cut a slow but steady town off long before the announced limit
        timeout = httpx.Timeout(f.FETCH_TIMEOUT, connect=10.0)
        async with (
            asyncio.timeout(f.FETCH_TIMEOUT),
            httpx.AsyncClient(follow_redirects=False, timeout=timeout) as client,
        ):
            async with client.stream("GET", url, headers={"Accept": "image/*, video/*"}) as r:
                if r.status_code != 200:
                    raise f.PEER_UNREACHABLE(f"the offering town answered {r.status_code}")
                out = bytearray()
                async for chunk in r.aiter_bytes():
                    out += chunk
                    if len(out) > limit:
                        raise f.PEER_UNREACHABLE(f"the offering town sent more than the {limit} bytes announced")
                return bytes(out)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise f.PEER_UNREACHABLE(f"the offering town's media could not be fetched: {type(exc).__name__}") from None
