"""The visiting node's federated login callback refuses what it must, through real HTTP at B's gateway.

A person of node A (tsurugashima) logs in at node B (suginami) through A. Between B's identity service and A's
token endpoint sits a hook on B's HTTP client: it hands B the ID token A issued, or one made from it (re-signed with
A's own key where the point is a claim, not the signature). Each refusal must open no session at B, set no cookie,
link no local profile and keep no tokens of A; and the login link it came with is used up. One federation (the
anchor, three nodes: tests/support/federation_nodes.py) for the whole module; every test has its own person of A.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import nats
import pytest
import pytest_asyncio
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select, update

from gateway.portal.session import LoginThrottle
from gateway.words import words
from identity import keys, models
from identity.accounts import digest
from tests.support.bus import wait_for
from tests.support.federation_nodes import PW, Browser, Node, federation_of
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow,
              pytest.mark.xdist_group("federation")]  # one federation at a time, one for the module

HOME, VISITED, OTHER = "tsurugashima", "suginami", "shibuya"
CALLBACK = "/login/federated/callback"


@dataclass
class Hook:
    """B's HTTP client's `post`, with A's token endpoint's answer rewritten by `id_token` (or the request by
    `request`) while a test sets them."""

    real: Callable[..., Awaitable[httpx.Response]]
    token_endpoint: str
    id_token: Callable[[str], Awaitable[str] | str] | None = None
    request: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    exchanged: int = 0

    async def post(self, url: Any, *args: Any, **kw: Any) -> httpx.Response:
        if str(url) != self.token_endpoint:
            return await self.real(url, *args, **kw)
        if self.request is not None:
            kw["data"] = self.request(dict(kw["data"]))
        r = await self.real(url, *args, **kw)
        self.exchanged += 1
        if self.id_token is None or r.status_code != 200:
            return r
        body = r.json()
        rewritten = self.id_token(body["id_token"])
        body["id_token"] = await rewritten if not isinstance(rewritten, str) else rewritten
        return httpx.Response(200, json=body, request=r.request)


@dataclass
class Fed:
    nodes: dict[str, Node]
    hook: Hook
    serial: itertools.count = field(default_factory=itertools.count)

    @property
    def home(self) -> Node:
        return self.nodes[HOME]

    @property
    def b(self) -> Node:
        return self.nodes[VISITED]

    async def person(self) -> str:
        """A new person of A (the federation's own `hanako` is left to other tests)."""
        handle = f"fc{next(self.serial)}"
        nc = await nats.connect(self.home.nats.url)
        try:
            await rpc.call(nc, subjects.svc(HOME, c.SERVICE, c.EP_USER_ADD), c.UserAddIn(
                handle=handle, display_name="越辺 川子", email=f"{handle}@example.jp", password=PW), timeout=15)
        finally:
            await nc.close()
        return handle

    async def signing_key(self) -> keys.SigningKey:
        async with self.home.identity.sessions() as s, s.begin():
            return await keys.active_key(s)

    async def federation_key(self) -> keys.FederationKey:
        async with self.home.identity.sessions() as s, s.begin():
            return await keys.federation_key(s)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fed]:
    async with federation_of(tmp_path_factory.mktemp("federated_callback")) as (_anchor, nodes, _hub):
        client = nodes[VISITED].identity.http  # the one FederatedLogins exchanges codes with
        hook = Hook(client.post, f"{nodes[HOME].base}/oauth/token")
        client.post = hook.post  # type: ignore[method-assign]
        # every person here logs in at A from 127.0.0.1: more than A's per-address throttle lets through
        nodes[HOME].app.state.login_throttle = LoginThrottle(limit=100_000)
        try:
            yield Fed(nodes, hook)
        finally:
            client.post = hook.real  # type: ignore[method-assign]


@pytest.fixture
def hook(fed: Fed) -> Any:
    yield fed.hook
    fed.hook.id_token = fed.hook.request = None


async def state_at_b(fed: Fed, handle: str) -> tuple[int, int, Any]:
    """(B's sessions, B's kept tokens of other nodes, B's profile linked to handle@A or None)."""
    async with fed.b.identity.sessions() as s:
        sessions = (await s.execute(select(func.count()).select_from(models.sessions))).scalar_one()
        tokens = (await s.execute(select(func.count()).select_from(models.home_tokens))).scalar_one()
        linked = (await s.execute(select(models.users).where(models.users.c.handle == f"{handle}@{HOME}"))).first()
    return sessions, tokens, linked


async def registered_at_b(fed: Fed, handle: str) -> bool:
    """Whether B has applied A's UserRegistered of handle@A (sourced into FED_B once B linked a person of A): the
    event arrives at its own pace, possibly after the login that linked her."""
    outbox, inbox = models.bus.outbox, models.bus.inbox
    async with fed.home.identity.sessions() as s:
        rows = (await s.execute(select(outbox.c.event_id, outbox.c.payload).where(
            outbox.c.subject == subjects.evt(HOME, c.SERVICE, "user_registered")))).all()
    ids = [r.event_id for r in rows if json.loads(r.payload)["data"]["global_handle"] == f"{handle}@{HOME}"]
    assert len(ids) == 1, ids
    async with fed.b.identity.sessions() as s:
        return (await s.execute(select(func.count()).select_from(inbox).where(
            inbox.c.consumer == "identity-peer-profiles", inbox.c.message_id == f"{HOME}:{ids[0]}"))).scalar_one() == 1


async def log_in_at_b(fed: Fed, handle: str, browser: Browser | None = None) -> tuple[Browser, httpx.Response]:
    """At B: "log in with my home region" → A's login page → A's password → back at B's callback, and on."""
    browser = browser or Browser()
    r = await browser.form(f"{fed.b.base}/login", "/login/federated",
                           {"target": f"{handle}@{HOME}", "next": "/settings/profile"})
    assert r.url.host == urlsplit(fed.home.base).hostname and r.url.path == "/login", browser.hops
    r = await browser.form(str(r.url), "/login", {"login": handle, "password": PW})
    return browser, r


def hop(browser: Browser, path: str) -> str:
    """The last URL with this path the browser went to."""
    urls = [h.split(" ", 1)[1] for h in browser.hops if urlsplit(h.split(" ", 1)[1]).path == path]
    assert urls, (path, browser.hops)
    return urls[-1]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def cookie_at_b(fed: Fed, browser: Browser) -> bool:
    host = urlsplit(fed.b.base).hostname
    return any(ck.name.endswith("tt_session") and ck.domain.lstrip(".") == host for ck in browser.http.cookies.jar)


@pytest.fixture(autouse=True)
def _refusals_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The gateway logs the reason of each refusal a page translated (INFO): the tests read which check refused."""
    caplog.set_level(logging.INFO, logger="gateway.portal.common")


LINK_INVALID = words(c.FEDERATED_LINK_INVALID.code, "ja")  # what B's page says of a used or unknown login link


def shown(r: httpx.Response, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """B's page shows the words of the refusal's code, never the identity service's English reason; which check
    refused is in the gateway's log (gateway.portal.common.why), with the code the page translated."""
    logged = [rec for rec in caplog.records if reason in getattr(rec, "refusal_reason", "")]
    assert logged, (reason, [getattr(rec, "refusal_reason", None) for rec in caplog.records])
    text = html.unescape(r.text)
    assert words(logged[-1].refusal_code, "ja") in text and reason not in text, (reason, r.text[-800:])


async def assert_refused(fed: Fed, handle: str, browser: Browser, r: httpx.Response, status: int, reason: str,
                         before: tuple[int, int, Any], caplog: pytest.LogCaptureFixture) -> None:
    assert urlsplit(str(r.url)).path == CALLBACK and str(r.url).startswith(fed.b.base), browser.hops
    assert r.status_code == status, (r.status_code, r.text[-800:])
    shown(r, caplog, reason)
    assert not cookie_at_b(fed, browser) and "tt_session" not in r.headers.get("set-cookie", "")
    assert await state_at_b(fed, handle) == before == (before[0], before[1], None)
    # the login link is used up: the same callback again is refused before anything is asked of A
    exchanged = fed.hook.exchanged
    again = await browser.http.get(hop(browser, CALLBACK))
    assert again.status_code == 400 and LINK_INVALID in again.text, again.text[-500:]
    assert fed.hook.exchanged == exchanged and await state_at_b(fed, handle) == before


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT, unverified: A's own token, made into another one below."""
    header, payload, _sig = token.split(".")

    def part(p: str) -> dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))

    return part(header), part(payload)


def signed_by_home(fed: Fed, **changes: Any) -> Callable[[str], Awaitable[str]]:
    """A's ID token with `changes` to its claims (None: the claim removed), signed again with A's own key."""
    async def rewrite(token: str) -> str:
        header, claims = claims_of(token)
        own = await fed.signing_key()
        assert header["kid"] == own.kid
        claims = {k: v for k, v in {**claims, **changes}.items() if v is not None}
        return jwt.encode(header, claims, own.key, ["RS256"])

    return rewrite


def signed_by_federation_key(fed: Fed, *, kid: str) -> Callable[[str], Awaitable[str]]:
    """A's own ID token, claims unchanged, signed with A's federation key (the one the anchor pinned: it signs A's
    entity configuration, never ID tokens) under its own kid or under the provider key's kid."""
    async def rewrite(token: str) -> str:
        header, claims = claims_of(token)
        federation, provider = await fed.federation_key(), await fed.signing_key()
        assert federation.kid != provider.kid  # a node of this version: two keys
        return jwt.encode({**header, "kid": federation.kid if kid == "federation" else provider.kid}, claims,
                          federation.key, ["RS256"])

    return rewrite


# ---- the state ---------------------------------------------------------------------------------------------------


async def test_a_used_or_unknown_login_link_is_refused(fed, hook) -> None:
    handle = await fed.person()
    browser, r = await log_in_at_b(fed, handle)
    assert r.status_code == 200 and str(r.url) == f"{fed.b.base}/settings/profile", browser.hops
    assert cookie_at_b(fed, browser)
    link = hop(browser, CALLBACK)
    before = await state_at_b(fed, handle)
    assert before[2] is not None and before[2].home_node == HOME  # the happy path linked her profile

    # The same callback URL again, in the same browser and in another one (someone who copied it): refused.
    exchanged = fed.hook.exchanged
    for who in (browser, Browser()):
        again = await who.http.get(link)
        assert again.status_code == 400 and LINK_INVALID in again.text, again.text[-500:]
        assert "tt_session" not in again.headers.get("set-cookie", "")
    # Her UserRegistered from A says what the ID token said: once B has applied it, her row is still the same
    # (an event that changes nothing must not rewrite it; B used to bump `updated_at`, at a moment of its own)
    assert await wait_for(lambda: registered_at_b(fed, handle)), "B never applied A's UserRegistered"
    assert await state_at_b(fed, handle) == before and fed.hook.exchanged == exchanged  # A was not asked again

    # A state B never issued, with A's real code shape; and a callback without state or code.
    stranger = Browser()
    q = query_of(link)
    for query in ({"state": secrets.token_urlsafe(32), "code": q["code"]}, {"code": q["code"]}, {"state": q["state"]},
                  {}):
        r = await stranger.http.get(f"{fed.b.base}{CALLBACK}", params=query)
        assert r.status_code == 400 and LINK_INVALID in r.text, (query, r.text[-500:])
    # A's refusal (the person said no): shown, nothing asked of A.
    r = await stranger.http.get(f"{fed.b.base}{CALLBACK}", params={"error": "access_denied",
                                                                     "error_description": "no", "state": q["state"]})
    assert r.status_code == 400 and "access_denied" in r.text
    assert await state_at_b(fed, handle) == before and fed.hook.exchanged == exchanged
    assert not cookie_at_b(fed, stranger)


async def test_an_expired_login_link_is_refused(fed, hook, caplog) -> None:
    handle = await fed.person()
    browser = Browser()
    r = await browser.form(f"{fed.b.base}/login", "/login/federated", {"target": f"{handle}@{HOME}"})
    state = query_of(hop(browser, "/oauth/authorize"))["state"]
    async with fed.b.identity.sessions() as s, s.begin():  # ten minutes later
        moved = await s.execute(update(models.federated_logins).where(
            models.federated_logins.c.state_hash == digest(state)).values(
            expires_at=models.federated_logins.c.created_at))
        assert moved.rowcount == 1
    before = await state_at_b(fed, handle)
    r = await browser.form(str(r.url), "/login", {"login": handle, "password": PW})
    exchanged = fed.hook.exchanged
    await assert_refused(fed, handle, browser, r, 400, "unknown, used or expired", before, caplog)
    assert fed.hook.exchanged == exchanged  # refused before the code went to A


# ---- the code and the ID token ------------------------------------------------------------------------------------


async def test_a_code_that_a_does_not_know_is_refused(fed, hook, caplog) -> None:
    handle = await fed.person()
    hook.request = lambda data: {**data, "code": data["code"][:-2] + ("AA" if data["code"][-2:] != "AA" else "BB")}
    before = await state_at_b(fed, handle)
    browser, r = await log_in_at_b(fed, handle)
    await assert_refused(fed, handle, browser, r, 401, "the home node refused the code", before, caplog)


def _tampered(token: str) -> str:
    """The claims changed (another subject), the signature kept."""
    header, payload, sig = token.split(".")
    _h, claims = claims_of(token)
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "someone-else"}).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{sig}"


def _foreign(token: str) -> str:
    """Signed by a key A never had, under A's kid."""
    header, claims = claims_of(token)
    return jwt.encode(header, claims, RSAKey.generate_key(2048), ["RS256"])


def _unsigned(token: str) -> str:
    header, claims = claims_of(token)
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({**header, 'alg': 'none'})}.{enc(claims)}."


NOW = int(time.time())
BAD_TOKENS: dict[str, tuple[Any, int, str]] = {
    # name: (how A's token is changed, B's status, B's reason)
    "signature": (lambda fed: _tampered, 401, "does not verify with the home node's vouched keys"),
    "foreign key": (lambda fed: _foreign, 401, "does not verify with the home node's vouched keys"),
    "alg none": (lambda fed: _unsigned, 401, "does not verify with the home node's vouched keys"),
    # A's federation key is vouched for by the anchor, but for A's configuration only: not a provider key
    "A's federation key": (lambda fed: signed_by_federation_key(fed, kid="federation"), 401,
                           "does not verify with the home node's vouched keys"),
    "A's federation key, provider kid": (lambda fed: signed_by_federation_key(fed, kid="provider"), 401,
                                         "does not verify with the home node's vouched keys"),
    "no token": (lambda fed: (lambda token: ""), 401, "does not verify with the home node's vouched keys"),
    "wrong nonce": (lambda fed: signed_by_home(fed, nonce="not-this-login"), 401, "nonce does not match"),
    "no nonce": (lambda fed: signed_by_home(fed, nonce=None), 401, "nonce does not match"),
    "aud of another node": (lambda fed: signed_by_home(fed, aud=[fed.nodes[OTHER].base]), 401,
                            "not issued by the home node for this node"),
    "no aud": (lambda fed: signed_by_home(fed, aud=None), 401, "not issued by the home node for this node"),
    "iss of another node": (lambda fed: signed_by_home(fed, iss=fed.nodes[OTHER].base), 401,
                            "not issued by the home node for this node"),
    "expired": (lambda fed: signed_by_home(fed, iat=NOW - 7200, exp=NOW - 3600), 401, "has expired"),
    "no exp": (lambda fed: signed_by_home(fed, exp=None), 401, "has expired"),
    "no sub": (lambda fed: signed_by_home(fed, sub=None), 401, "names no subject"),
    "a handle of another node": (lambda fed: signed_by_home(fed, preferred_username=f"mallory@{VISITED}"), 401,
                                 "did not give a global handle of its own"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_an_id_token_that_does_not_hold_is_refused(fed, hook, case, caplog) -> None:
    make, status, reason = BAD_TOKENS[case]
    handle = await fed.person()
    hook.id_token = make(fed)
    before = await state_at_b(fed, handle)
    browser, r = await log_in_at_b(fed, handle)
    await assert_refused(fed, handle, browser, r, status, reason, before, caplog)


async def test_the_same_token_signed_again_by_a_is_accepted(fed, hook) -> None:
    """The control for the cases above: the re-signing itself changes nothing B checks."""
    handle = await fed.person()
    hook.id_token = signed_by_home(fed)
    browser, r = await log_in_at_b(fed, handle)
    assert r.status_code == 200 and str(r.url) == f"{fed.b.base}/settings/profile", (browser.hops, r.text[-500:])
    assert cookie_at_b(fed, browser) and (await state_at_b(fed, handle))[2] is not None


# ---- the answer's issuer (RFC 9207) -------------------------------------------------------------------------------


def _callback_query_rewritten(browser: Browser, change: Callable[[dict[str, str]], dict[str, str]]) -> None:
    """The browser's next GET of B's callback carries the query `change` makes of A's (someone between the two)."""
    real = browser.http.get

    async def get(url: Any, *args: Any, **kw: Any) -> httpx.Response:
        parts = urlsplit(str(url))
        if parts.path == CALLBACK and browser.http.get is get:
            browser.http.get = real  # type: ignore[method-assign]
            url = parts._replace(query=urlencode(change(query_of(str(url))))).geturl()
        return await real(url, *args, **kw)

    browser.http.get = get  # type: ignore[method-assign]


async def test_the_answer_names_its_issuer_and_another_issuer_is_refused_before_the_code_goes_anywhere(
        fed, hook, caplog) -> None:
    handle = await fed.person()
    browser, r = await log_in_at_b(fed, handle)
    assert r.status_code == 200, browser.hops
    issuer = (await browser.http.get(f"{fed.home.base}/.well-known/openid-configuration")).json()
    assert issuer["authorization_response_iss_parameter_supported"] is True
    assert query_of(hop(browser, CALLBACK))["iss"] == issuer["issuer"]  # A named itself

    other = (await browser.http.get(f"{fed.nodes[OTHER].base}/.well-known/openid-configuration")).json()["issuer"]
    for change in (lambda q: {**q, "iss": other}, lambda q: {k: v for k, v in q.items() if k != "iss"}):
        handle = await fed.person()
        before = await state_at_b(fed, handle)
        browser = Browser()
        _callback_query_rewritten(browser, change)
        exchanged = fed.hook.exchanged
        browser, r = await log_in_at_b(fed, handle, browser)
        assert fed.hook.exchanged == exchanged  # the code went to no token endpoint
        await assert_refused(fed, handle, browser, r, 400, "another issuer than the home node", before, caplog)


# ---- logging out at B ---------------------------------------------------------------------------------------------


async def test_an_rp_initiated_logout_at_b_has_the_home_revoke_what_it_gave_b(fed, hook) -> None:
    """B's /oauth/logout (answered yes on its question) ends her session at B, forgets A's tokens, and has A revoke
    the refresh token A gave B for that session, as the portal's own logout does: a copy is worth nothing at A."""
    handle = await fed.person()
    browser, r = await log_in_at_b(fed, handle)
    assert r.status_code == 200 and cookie_at_b(fed, browser), browser.hops
    async with fed.b.identity.sessions() as s:
        (held,) = (await s.execute(select(models.home_tokens.c.refresh_token).join(
            models.sessions, models.sessions.c.token_hash == models.home_tokens.c.session_hash).join(
            models.users, models.users.c.id == models.sessions.c.user_id).where(
            models.users.c.handle == f"{handle}@{HOME}"))).scalars().all()

    q = await browser.http.get(f"{fed.b.base}/oauth/logout")
    assert q.status_code == 200 and "ログアウトしますか" in q.text
    csrf = q.text.split('name="csrf" value="')[1].split('"')[0]
    r = await browser.http.post(f"{fed.b.base}/oauth/logout", data={"csrf": csrf, "confirm": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/?logged_out=1", r.text[-500:]
    sessions, _tokens, linked = await state_at_b(fed, handle)
    async with fed.b.identity.sessions() as s:
        mine = (await s.execute(select(func.count()).select_from(models.sessions).where(
            models.sessions.c.user_id == linked.id))).scalar_one()
        kept = (await s.execute(select(func.count()).select_from(models.home_tokens).where(
            models.home_tokens.c.refresh_token == held))).scalar_one()
    assert mine == 0 and kept == 0

    async def revoked_at_a() -> bool:
        async with fed.home.identity.sessions() as s:
            row = (await s.execute(select(models.oauth_refresh_tokens.c.revoked_at).where(
                models.oauth_refresh_tokens.c.token_hash == digest(held)))).first()
        return row is not None and row.revoked_at is not None

    assert await wait_for(revoked_at_a), "A did not revoke the refresh token B held for the session"
    r = await fed.hook.real(f"{fed.home.base}/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": held, "client_id": fed.b.base})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
