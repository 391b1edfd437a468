"""Cross-node single sign-on with three real nodes and a trust anchor.

The nodes and the anchor are tests/support/federation_nodes.py's (identity service and gateway per node). The browser is
an httpx client with a cookie jar that follows redirects itself, so each hop is checked.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import nats
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import RSAKey

from gateway.words import words
from identity.federation import (
    WELL_KNOWN,
    TrustError,
    TrustResolver,
    sign_statement,
    unverified_claims,
)
from tests.support.bus import wait_for
from tests.support.federation_nodes import PW, Browser, Node, federation_of
from towntip.anchor import TrustAnchor, jwk_thumbprint
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c
from towntip.node.natsd import NatsServer

# three nodes: one federation at a time (tests/README.md)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation")]


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[tuple[TrustAnchor, dict[str, Node], NatsServer]]:
    async with federation_of(tmp_path) as fed:
        yield fed


async def test_log_in_at_home_then_at_two_other_nodes_without_a_password(federation) -> None:
    anchor, nodes, _hub = federation
    home, b, cnode = nodes["tsurugashima"], nodes["suginami"], nodes["shibuya"]
    browser = Browser()

    # At B: "log in with my home region" → A's login page (A is where the password goes) → back at B, logged in.
    r = await browser.form(f"{b.base}/login", "/login/federated", {"target": "hanako@tsurugashima"})
    assert r.url.host == urlsplit(home.base).hostname and r.url.path == "/login", browser.hops
    r = await browser.form(str(r.url), "/login", {"login": "hanako", "password": PW})
    assert r.status_code == 200 and str(r.url) == f"{b.base}/me", (browser.hops, r.text[-800:])
    assert "hanako@tsurugashima" in r.text and "山田 花子" in r.text
    assert not any(h.startswith("POST") and b.base in h and "/login " in h + " " for h in browser.hops)

    # At C: no password at all, the session at A answers.
    browser.hops.clear()
    r = await browser.form(f"{cnode.base}/login", "/login/federated", {"target": "hanako@tsurugashima"})
    assert r.status_code == 200 and str(r.url) == f"{cnode.base}/me", browser.hops
    assert "hanako@tsurugashima" in r.text
    assert not any("/login?" in h and home.base in h for h in browser.hops), browser.hops

    # B's profile of the person is linked to hanako@tsurugashima; B holds no password and no e-mail of hers.
    async with b.identity.sessions() as s:
        from sqlalchemy import select

        from identity.models import users
        row = (await s.execute(select(users).where(users.c.handle == "hanako@tsurugashima"))).one()
    assert row.home_node == "tsurugashima" and row.home_issuer == home.base and row.email is None
    assert row.password_hash == "!"

    # A token of A is no token at B: B's provider verifies only its own.
    nc = await nats.connect(home.nats.url)
    try:
        rp = await rpc.call(nc, subjects.svc("tsurugashima", c.SERVICE, c.EP_CLIENT_ADD), c.ClientAddIn(
            client_id="rp", redirect_uris=["https://rp.example.org/cb"]), timeout=15)
    finally:
        await nc.close()
    verifier = "v" * 50
    r = await browser.http.get(f"{home.base}/oauth/authorize", params={
        "response_type": "code", "client_id": "rp", "redirect_uri": "https://rp.example.org/cb", "scope": "openid",
        "state": "s", "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"})
    assert r.status_code == 302, r.text  # A's session from above: no password
    code = dict(x.split("=", 1) for x in urlsplit(r.headers["location"]).query.split("&"))["code"]
    token = (await browser.http.post(f"{home.base}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "https://rp.example.org/cb",
        "code_verifier": verifier}, auth=("rp", rp["client_secret"]))).json()["access_token"]
    assert (await browser.http.get(f"{home.base}/oauth/userinfo",
                                   headers={"Authorization": f"Bearer {token}"})).status_code == 200
    at_b = await browser.http.get(f"{b.base}/oauth/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert at_b.status_code == 401 and "invalid_token" in at_b.headers["www-authenticate"]

    # The anchor removes C: C's next login is refused at A (no redirect back to C), and B no longer trusts C.
    assert anchor.remove(cnode.base)
    fresh = Browser()
    r = await fresh.form(f"{cnode.base}/login", "/login/federated", {"target": "hanako@tsurugashima"})
    assert r.url.host == urlsplit(home.base).hostname and r.status_code in (400, 401), fresh.hops
    assert not any(h.startswith(f"GET {cnode.base}/login/federated/callback") for h in fresh.hops)
    r = await browser.form(f"{b.base}/login", "/login/federated", {"target": "someone@shibuya"})
    assert r.status_code == 403 and words(c.FEDERATED_UNTRUSTED.code, "ja") in r.text  # the code's words
    assert "not a trusted node" not in r.text  # never the identity service's English reason


async def test_a_chain_that_does_not_hold_is_refused(federation) -> None:
    anchor, nodes, _hub = federation
    home = nodes["tsurugashima"]
    resolver = TrustResolver.from_files(anchor.entity_id, str(anchor.jwks_path), cache_seconds=0)
    trusted = await resolver.resolve(home.base)
    assert trusted.node == "tsurugashima" and trusted.provider["issuer"] == home.base

    def tamper(request: httpx.Request, response_text: str) -> str:
        header, payload, sig = response_text.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["metadata"]["openid_provider"]["token_endpoint"] = "https://evil.example/token"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{forged}.{sig}"

    class MitM(httpx.AsyncBaseTransport):
        """Between the resolver and the network: rewrites the home node's entity configuration."""

        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            if request.url.path == "/.well-known/openid-federation" and request.url.host != "127.0.0.1":
                await response.aread()
                return httpx.Response(200, text=tamper(request, response.text))
            return response

    tampered = TrustResolver(anchor.entity_id, resolver.anchor_jwks, 0, httpx.AsyncClient(transport=MitM()))
    with pytest.raises(TrustError, match="signature"):
        await tampered.resolve(home.base)

    # A node the anchor never vouched for, and an anchor key that is not the real one.
    with pytest.raises(TrustError, match="does not vouch|no entity configuration|cannot reach"):
        await resolver.resolve("http://127.0.0.9:9")
    other = TrustAnchor(Path(str(anchor.data_dir) + "-other"), anchor.entity_id)
    wrong_keys = TrustResolver.from_files(anchor.entity_id, str(other.jwks_path), cache_seconds=0)
    with pytest.raises(TrustError, match="signature"):
        await wrong_keys.resolve(home.base)
    for r in (resolver, tampered, wrong_keys):
        await r.client.aclose()


async def test_the_anchor_vouches_for_the_key_it_pinned_not_for_whoever_answers(federation) -> None:
    anchor, nodes, _hub = federation
    home, b = nodes["tsurugashima"], nodes["suginami"]
    resolver = TrustResolver.from_files(anchor.entity_id, str(anchor.jwks_path), cache_seconds=0)
    pinned = anchor.thumbprints(home.base)
    genuine = (await resolver.client.get(home.base + WELL_KNOWN)).text
    header = genuine.split(".")[0]
    assert pinned == [json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]]  # the signer

    # The anchor answers from what it pinned, without asking the member: with home's site down, the statement comes.
    await home.stop_gateway()
    try:
        r = await resolver.client.get(anchor.entity_id + "/federation/fetch", params={"sub": home.base})
        assert r.status_code == 200
        assert [jwk_thumbprint(k) for k in unverified_claims(r.text)["jwks"]["keys"]] == pinned
    finally:
        await home.start_gateway()

    # An impostor at home's URL (a hijacked name, a proxy, plain http): home's ids and metadata, its own key and
    # token endpoint, self-signed. The anchor's statement still carries the pinned key: refused.
    evil = RSAKey.generate_key(2048)
    claims = unverified_claims(genuine)
    claims["jwks"] = {"keys": [{**evil.as_dict(private=False), "kid": evil.thumbprint(), "use": "sig",
                                "alg": "RS256"}]}
    claims["metadata"]["openid_provider"]["token_endpoint"] = "https://evil.example/token"
    forged = sign_statement(evil, evil.thumbprint(), claims)

    class Impostor(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if str(request.url) == home.base + WELL_KNOWN:
                return httpx.Response(200, text=forged)
            return await self.inner.handle_async_request(request)

    hijacked = TrustResolver(anchor.entity_id, resolver.anchor_jwks, 0, httpx.AsyncClient(transport=Impostor()))
    with pytest.raises(TrustError, match="signature"):
        await hijacked.resolve(home.base)
    with pytest.raises(TrustError, match="no trusted node"):
        await hijacked.by_node("tsurugashima")  # a login or query for name@tsurugashima: nobody to trust

    # Home changes its federation key (`towntip identity keys rotate-federation`): its configuration is now signed
    # with a key the anchor never pinned, so B refuses it (a login through it is refused) until the anchor's
    # operator pins the new key.
    nc = await nats.connect(home.nats.url)
    try:
        rotated = await rpc.call(nc, subjects.svc("tsurugashima", c.SERVICE, c.EP_FEDERATION_KEY_ROTATE), None,
                                 timeout=15)
    finally:
        await nc.close()
    assert rotated["retired"] == pinned and rotated["kid"] != pinned[0] and rotated["entity_id"] == home.base
    with pytest.raises(TrustError, match="signature"):
        await resolver.resolve(home.base)
    browser = Browser()
    r = await browser.form(f"{b.base}/login", "/login/federated", {"target": "hanako@tsurugashima"})
    assert r.status_code == 403 and "tsurugashima" in r.text, browser.hops
    assert not any(home.base in h for h in browser.hops)

    with pytest.raises(TrustError, match="thumbprint"):  # the old thumbprint is not the key home signs with now
        await anchor.enrol(home.base, "tsurugashima", expect=pinned)
    assert anchor.thumbprints(home.base) == pinned
    await anchor.enrol(home.base, "tsurugashima", expect=[rotated["kid"]])  # the thumbprint the rotation printed
    assert anchor.thumbprints(home.base) == [rotated["kid"]]
    r = await browser.form(f"{b.base}/login", "/login/federated", {"target": "hanako@tsurugashima"})
    assert r.url.host == urlsplit(home.base).hostname and r.url.path == "/login", browser.hops
    r = await browser.form(str(r.url), "/login", {"login": "hanako", "password": PW})
    assert r.status_code == 200 and str(r.url) == f"{b.base}/me", browser.hops
    for x in (resolver, hijacked):
        await x.client.aclose()
    await browser.aclose()


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _sig = token.split(".")
    return tuple(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in (header, payload))  # type: ignore[return-value]


async def test_a_provider_key_rotation_needs_no_re_pin(federation) -> None:
    """The entity configuration is signed by the federation key, which alone is its jwks; the provider's keys ride
    inside (metadata.openid_provider.jwks). `towntip identity keys rotate` changes those only: the anchor's pin
    holds, and an ID token signed by the new provider key verifies at B at once."""
    anchor, nodes, _hub = federation
    home, b = nodes["tsurugashima"], nodes["suginami"]
    resolver = TrustResolver.from_files(anchor.entity_id, str(anchor.jwks_path), cache_seconds=0)
    pinned = anchor.thumbprints(home.base)

    async def configuration() -> tuple[dict[str, Any], dict[str, Any]]:
        return jwt_parts((await resolver.client.get(home.base + WELL_KNOWN)).text)

    async def provider_kids() -> list[str]:
        return [k["kid"] for k in (await resolver.client.get(f"{home.base}/oauth/jwks")).json()["keys"]]

    header, claims = await configuration()
    assert header["kid"] == pinned[0] and [k["kid"] for k in claims["jwks"]["keys"]] == pinned  # only that key
    assert [jwk_thumbprint(k) for k in claims["jwks"]["keys"]] == pinned
    op = claims["metadata"]["openid_provider"]
    before = await provider_kids()
    assert [k["kid"] for k in op["jwks"]["keys"]] == before and "jwks_uri" not in op
    assert pinned[0] not in before  # the federation key is no provider key
    trusted = await resolver.resolve(home.base)
    assert trusted.federation_jwks == claims["jwks"] and trusted.provider_jwks == op["jwks"]

    # B's code exchanges with home, seen from B: the kid of each ID token home issued
    seen: list[str] = []
    client = b.identity.http
    real = client.post

    async def post(url: Any, *args: Any, **kw: Any) -> httpx.Response:
        r = await real(url, *args, **kw)
        if str(url) == f"{home.base}/oauth/token" and r.status_code == 200:
            seen.append(jwt_parts(r.json()["id_token"])[0]["kid"])
        return r

    client.post = post  # type: ignore[method-assign]
    try:
        nc = await nats.connect(home.nats.url)
        try:
            rotated = await rpc.call(nc, subjects.svc("tsurugashima", c.SERVICE, c.EP_KEY_ROTATE), None, timeout=15)
        finally:
            await nc.close()
        assert rotated["federation_kid"] == pinned[0] and rotated["kid"] not in before
        assert anchor.thumbprints(home.base) == pinned  # nobody re-pinned

        header, claims = await configuration()
        assert header["kid"] == pinned[0] and [k["kid"] for k in claims["jwks"]["keys"]] == pinned
        now = [k["kid"] for k in claims["metadata"]["openid_provider"]["jwks"]["keys"]]
        assert now == await provider_kids() and rotated["kid"] in now and set(before) <= set(now)  # old ones: a day
        assert rotated["kid"] in [k["kid"] for k in (await resolver.resolve(home.base)).provider_jwks["keys"]]

        browser = Browser()
        r = await browser.form(f"{b.base}/login", "/login/federated", {"target": "hanako@tsurugashima"})
        assert r.url.host == urlsplit(home.base).hostname and r.url.path == "/login", browser.hops
        r = await browser.form(str(r.url), "/login", {"login": "hanako", "password": PW})
        assert r.status_code == 200 and str(r.url) == f"{b.base}/me", (browser.hops, r.text[-800:])
        assert seen == [rotated["kid"]]  # signed by the new provider key, verified at B with no re-pin
        await browser.aclose()
    finally:
        client.post = real  # type: ignore[method-assign]
        await resolver.client.aclose()


async def linked_row(node: Node, handle: str) -> Any:
    from sqlalchemy import select

    from identity.models import users

    async with node.identity.sessions() as s:
        return (await s.execute(select(users).where(users.c.handle == handle))).first()


async def test_profile_changes_at_home_reach_linked_nodes_and_catch_up_after_a_partition(federation) -> None:
    _anchor, nodes, hub = federation
    home, b, cnode = nodes["tsurugashima"], nodes["suginami"], nodes["shibuya"]
    browser = Browser()
    r = await browser.form(f"{b.base}/login", "/login/federated", {"target": "hanako@tsurugashima"})
    await browser.form(str(r.url), "/login", {"login": "hanako", "password": PW})
    r = await browser.form(f"{cnode.base}/login", "/login/federated", {"target": "hanako@tsurugashima"})
    assert str(r.url) == f"{cnode.base}/me"

    nc = await nats.connect(home.nats.url)
    try:
        async def call(endpoint: str, payload: Any) -> Any:
            return await rpc.call(nc, subjects.svc("tsurugashima", c.SERVICE, endpoint), payload, timeout=15)

        token = (await call(c.EP_LOGIN, c.LoginIn(login="hanako", password=PW)))["session_token"]
        await call(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn(session_token=token, nickname="はなちゃん",
                                                          interests=["npo-3"]))

        async def everywhere(field: str, value: Any) -> bool:
            rows = [await linked_row(n, "hanako@tsurugashima") for n in (b, cnode)]
            return all(row is not None and getattr(row, field) == value for row in rows)

        assert await wait_for(lambda: everywhere("nickname", "はなちゃん")), "the change did not reach B and C"
        assert (await linked_row(b, "hanako@tsurugashima")).interests == ["npo-3"]

        # Partition: the hub goes away; a change at home waits; the hub returns; B and C catch up.
        hub.stop()
        await call(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn(session_token=token, district="杉下小学校区"))
        await asyncio.sleep(1.5)
        assert not await everywhere("district", "杉下小学校区")
        hub.start()
        assert await wait_for(lambda: everywhere("district", "杉下小学校区"), timeout=30), \
            "no catch-up after the partition"
    finally:
        await nc.close()
