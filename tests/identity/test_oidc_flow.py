"""The node's OpenID Connect provider, driven by a client library no one here wrote (authlib's httpx client),
through the real gateway app and the real identity service over a real nats-server, on SQLite and PostgreSQL.

A "browser" (an httpx client with a cookie jar) logs in on the portal; the relying party is authlib's
AsyncOAuth2Client. Every refusal the specifications prescribe is checked to change nothing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import nats
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.app import create_app
from identity.app import IdentityService
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import GatewaySettings, ServiceSettings

NODE = "tsuru"
BASE = "https://tsuru.example.jp"
RP_CB = "https://rp.example.org/callback"
RP_LOGOUT = "https://rp.example.org/bye"
PW = "correct horse battery"


@dataclass
class Env:
    app: Any
    nc: nats.NATS
    transport: httpx.ASGITransport
    client_id: str
    client_secret: str
    identity: Any = None

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url=BASE, follow_redirects=False)

    def rp(self, **kw: Any) -> AsyncOAuth2Client:
        options = {"client_id": self.client_id, "client_secret": self.client_secret, "redirect_uri": RP_CB,
                   "scope": "openid profile email", "code_challenge_method": "S256", **kw}
        return AsyncOAuth2Client(transport=self.transport, **options)

    async def admin(self, endpoint: str, payload: Any = None) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=15)


@pytest.fixture
async def env(nats_server, database, tmp_path, smtp) -> AsyncIterator[Env]:
    url, schema = database
    smtp.start()
    svc = IdentityService(ServiceSettings(
        service="identity", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path), database_url=url,
        database_schema=schema or "", public_url=BASE,
    ), smtp=SmtpSettings(host="127.0.0.1", port=smtp.port))
    await svc.start()
    app = create_app(GatewaySettings(node_id=NODE, nats_url=nats_server.url, services="identity",
                                     data_dir=str(tmp_path), public_url=BASE, request_timeout=15))
    nc = await nats.connect(nats_server.url)
    try:
        async with app.router.lifespan_context(app):
            e = Env(app, nc, httpx.ASGITransport(app=app), "", "", svc)
            client = await e.admin(c.EP_CLIENT_ADD, c.ClientAddIn(
                client_id="rp-portal", redirect_uris=[RP_CB], post_logout_redirect_uris=[RP_LOGOUT]))
            e.client_id, e.client_secret = client["client_id"], client["client_secret"]
            await e.admin(c.EP_USER_ADD, c.UserAddIn(handle="hanako", display_name="山田 花子",
                                                     email="hanako@example.jp", password=PW))
            yield e
    finally:
        await nc.close()
        await svc.stop()


async def portal_login(browser: httpx.AsyncClient, login: str = "hanako", password: str = PW,
                       nxt: str = "/me") -> httpx.Response:
    page = await browser.get("/login", params={"next": nxt})
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
    return await browser.post("/login", data={"csrf": csrf, "login": login, "password": password, "next": nxt})


async def metadata(e: Env) -> dict[str, Any]:
    async with e.browser() as b:
        r = await b.get("/.well-known/openid-configuration")
        assert r.status_code == 200
        return r.json()


async def authorize(e: Env, browser: httpx.AsyncClient, rp: AsyncOAuth2Client, **extra: str
                    ) -> tuple[httpx.Response, str, str]:
    meta = await metadata(e)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    uri, state = rp.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce,
                                             **extra)
    r = await browser.get(uri.removeprefix(BASE))
    return r, verifier, nonce


async def test_discovery_and_jwks(env):
    meta = await metadata(env)
    assert meta["issuer"] == BASE and meta["authorization_endpoint"] == f"{BASE}/oauth/authorize"
    assert ("RS256" in meta["id_token_signing_alg_values_supported"]
            and meta["code_challenge_methods_supported"] == ["S256"])
    async with env.browser() as b:
        keys = (await b.get("/oauth/jwks")).json()["keys"]
    # one RSA key for ID tokens (RS256) and one EC key for access tokens (ES256); public parts only
    assert sorted((k["kty"], k["alg"]) for k in keys) == [("EC", "ES256"), ("RSA", "RS256")]
    assert not [k for k in keys if "d" in k]


async def test_code_flow_with_pkce_userinfo_refresh_and_logout(env):
    meta = await metadata(env)
    async with env.browser() as browser, env.rp() as rp:
        # No session at the node: the authorize request goes to the login page and comes back.
        r, _, _ = await authorize(env, browser, rp)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Foauth%2Fauthorize")
        logged_in = await portal_login(browser, nxt="/me")
        assert logged_in.status_code == 303 and logged_in.headers["location"] == "/me"
        assert any(ck.name == "__Host-tt_session" and ck.secure for ck in browser.cookies.jar)

        r, verifier, nonce = await authorize(env, browser, rp)
        assert r.status_code == 302, r.text
        location = r.headers["location"]
        assert location.startswith(RP_CB + "?") and "code=" in location

        token = await rp.fetch_token(meta["token_endpoint"], authorization_response=location,
                                     code_verifier=verifier)
        assert token["token_type"].lower() == "bearer" and token["refresh_token"] and token["id_token"]

        async with env.browser() as b:
            jwks = KeySet.import_key_set((await b.get("/oauth/jwks")).json())
        decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
        claims = CodeIDToken(decoded.claims, decoded.header,
                             {"iss": {"value": BASE}, "aud": {"value": env.client_id}, "nonce": {"value": nonce}})
        claims.validate()  # authlib's own checks: iss, aud, exp, iat, nonce, at_hash
        assert claims["preferred_username"] == f"hanako@{NODE}" and claims["email"] == "hanako@example.jp"
        assert decoded.header["kid"] == next(k.kid for k in jwks.keys if k.key_type == "RSA")

        info = (await rp.get(meta["userinfo_endpoint"])).json()
        assert info["sub"] == claims["sub"] and info["name"] == "山田 花子"

        refreshed = await rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] != token["refresh_token"]
        # The old refresh token again: refused, and the whole family (the new one too) is revoked.
        async with env.browser() as b:
            reuse = await b.post("/oauth/token", data={"grant_type": "refresh_token",
                                                       "refresh_token": token["refresh_token"]},
                                 auth=(env.client_id, env.client_secret))
            assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
            after = await b.post("/oauth/token", data={"grant_type": "refresh_token",
                                                       "refresh_token": refreshed["refresh_token"]},
                                 auth=(env.client_id, env.client_secret))
            assert after.status_code == 400 and after.json()["error"] == "invalid_grant"

        # RP-initiated logout: back to the registered URI with the state; the node's session is gone.
        out = await browser.get("/oauth/logout", params={"id_token_hint": token["id_token"],
                                                         "post_logout_redirect_uri": RP_LOGOUT, "state": "s1"})
        assert out.status_code == 302 and out.headers["location"] == f"{RP_LOGOUT}?state=s1"
        r, _, _ = await authorize(env, browser, rp)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_refusals_change_nothing(env):
    meta = await metadata(env)
    async with env.browser() as browser, env.rp() as rp:
        await portal_login(browser)

        # A redirect_uri that is not registered: an error page, never a redirect to it.
        bad, _, _ = await authorize(env, browser, env.rp(redirect_uri="https://evil.example/cb"))
        assert bad.status_code == 400 and "location" not in bad.headers
        assert bad.json()["error"] in ("invalid_request", "invalid_redirect_uri")

        # An unknown client: the same.
        stranger = AsyncOAuth2Client(client_id="nobody", redirect_uri=RP_CB, scope="openid",
                                     code_challenge_method="S256", transport=env.transport)
        r, _, _ = await authorize(env, browser, stranger)
        assert r.status_code in (400, 401) and "location" not in r.headers

        # No PKCE: refused back to the client with invalid_request.
        plain = await browser.get("/oauth/authorize", params={
            "response_type": "code", "client_id": env.client_id, "redirect_uri": RP_CB, "scope": "openid",
            "state": "x"})
        assert plain.status_code == 302
        q = parse_qs(urlsplit(plain.headers["location"]).query)
        assert q["error"] == ["invalid_request"] and q["state"] == ["x"]

        # PKCE mismatch: the code is refused (and burnt).
        r, verifier, _ = await authorize(env, browser, rp)
        location = r.headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        wrong = await browser.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": RP_CB,
            "code_verifier": secrets.token_urlsafe(48)}, auth=(env.client_id, env.client_secret))
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        again = await browser.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": RP_CB, "code_verifier": verifier},
            auth=(env.client_id, env.client_secret))
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

        # Code replay: the second exchange fails and the tokens of the first are revoked.
        r, verifier, _ = await authorize(env, browser, rp)
        code_url = r.headers["location"]
        first = await rp.fetch_token(meta["token_endpoint"], authorization_response=code_url, code_verifier=verifier)
        code = parse_qs(urlsplit(code_url).query)["code"][0]
        replay = await browser.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": RP_CB, "code_verifier": verifier},
            auth=(env.client_id, env.client_secret))
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        revoked = await browser.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
            auth=(env.client_id, env.client_secret))
        assert revoked.status_code == 400 and revoked.json()["error"] == "invalid_grant"

        # A wrong client secret.
        r, verifier, _ = await authorize(env, browser, rp)
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        bad_secret = await browser.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": RP_CB, "code_verifier": verifier},
            auth=(env.client_id, "not-the-secret"))
        assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"

        # Tampered and foreign access tokens at userinfo.
        access = first["access_token"]
        head, body, sig = access.split(".")
        tampered = f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{sig}"
        for bad_token in (tampered, "not.a.jwt", first.get("id_token")):
            r = await browser.get("/oauth/userinfo", headers={"Authorization": f"Bearer {bad_token}"})
            assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]
        r = await browser.get("/oauth/userinfo")
        assert r.status_code == 401

        # A logout redirect that is not registered.
        r = await browser.get("/oauth/logout", params={"id_token_hint": first["id_token"],
                                                       "post_logout_redirect_uri": "https://evil.example/"})
        assert r.status_code == 400 and "location" not in r.headers


async def test_key_rotation_keeps_old_tokens_verifiable(env):
    before = (await metadata(env))["jwks_uri"]
    async with env.browser() as b:
        old = {k["kid"] for k in (await b.get("/oauth/jwks")).json()["keys"]}  # an RSA and an EC key
        rotated = await env.admin(c.EP_KEY_ROTATE)
        keys = (await b.get("/oauth/jwks")).json()["keys"]
    new = {rotated["kid"], rotated["access_token_kid"]}
    assert before.endswith("/oauth/jwks") and len(old) == len(new) == 2 and not old & new
    assert {k["kid"] for k in keys[:2]} == new and {k["kid"] for k in keys[2:]} == old  # newest first


async def test_portal_forms_need_their_csrf_token(env):
    async with env.browser() as browser:
        r = await browser.post("/login", data={"login": "hanako", "password": PW})
        assert r.status_code == 403 and "__Host-tt_session" not in str(browser.cookies.jar)
        await browser.get("/login")  # the nonce cookie, but a forged token
        r = await browser.post("/login", data={"login": "hanako", "password": PW, "csrf": "0" * 64})
        assert r.status_code == 403
        r = await browser.post("/register", data={"handle": "mallory", "display_name": "m",
                                                  "email": "m@example.jp", "password": PW})
        assert r.status_code == 403
    users = await env.admin(c.EP_USER_LIST)
    assert [u["handle"] for u in users["users"]] == ["hanako"]


async def test_expired_and_foreign_tokens_are_refused(env, tmp_path):
    """An access token signed with the node's own key but expired, and one signed by a key the node never had."""
    import time as _time

    from joserfc.jwk import ECKey, RSAKey

    from identity import keys

    meta = await metadata(env)
    async with env.browser() as browser, env.rp() as rp:
        await portal_login(browser)
        r, verifier, _ = await authorize(env, browser, rp)
        token = await rp.fetch_token(meta["token_endpoint"], authorization_response=r.headers["location"],
                                     code_verifier=verifier)
        claims = jwt.decode(token["access_token"], KeySet.import_key_set(
            (await browser.get("/oauth/jwks")).json())).claims
        identity = env.identity
        async with identity.sessions() as s:
            own = await keys.active_key(s)
        now = int(_time.time())
        expired = jwt.encode({"alg": "RS256", "kid": own.kid, "typ": "at+jwt"},
                             {**claims, "iat": now - 7200, "exp": now - 3600}, own.key, ["RS256"])
        stranger = RSAKey.generate_key(2048)
        foreign = jwt.encode({"alg": "RS256", "kid": own.kid, "typ": "at+jwt"}, claims, stranger, ["RS256"])
        # and the same with ES256, the algorithm of this provider's access tokens
        expired_es = jwt.encode({"alg": "ES256", "kid": own.at_kid, "typ": "at+jwt"},
                                {**claims, "iat": now - 7200, "exp": now - 3600}, own.at_key, ["ES256"])
        foreign_es = jwt.encode({"alg": "ES256", "kid": own.at_kid, "typ": "at+jwt"}, claims,
                                ECKey.generate_key("P-256"), ["ES256"])
        not_access = jwt.encode({"alg": "ES256", "kid": own.at_kid, "typ": "JWT"}, claims, own.at_key, ["ES256"])
        for bad in (expired, foreign, expired_es, foreign_es, not_access):
            r = await browser.get("/oauth/userinfo", headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"], r.text
        ok = await browser.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert ok.status_code == 200 and ok.json()["sub"] == claims["sub"]


async def id_token_for(env: Env, browser: httpx.AsyncClient, rp: AsyncOAuth2Client) -> str:
    meta = await metadata(env)
    r, verifier, _ = await authorize(env, browser, rp)
    token = await rp.fetch_token(meta["token_endpoint"], authorization_response=r.headers["location"],
                                 code_verifier=verifier)
    return token["id_token"]


async def logged_in(browser: httpx.AsyncClient) -> bool:
    r = await browser.get("/settings/profile")
    assert r.status_code in (200, 303), r.status_code
    return r.status_code == 200


def question_fields(page: httpx.Response) -> dict[str, str]:
    form = re.search(r'<form method="post" action="/oauth/logout">(.*?)</form>', page.text, re.S)
    assert form, page.text[-1500:]
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', form.group(1)))


async def test_logout_without_a_hint_of_the_person_asks_first(env):
    """RP-Initiated Logout 1.0 §2: without an id_token_hint of the person logged in here, the OP asks; only the
    answer (a POST with the portal's CSRF token) ends the session. Refusals end nothing and clear no cookie."""
    await env.admin(c.EP_USER_ADD, c.UserAddIn(handle="taro", display_name="鈴木 太郎", email="taro@example.jp",
                                               password=PW))
    async with env.browser() as browser, env.browser() as taro, env.rp() as rp:
        await portal_login(taro, login="taro")
        taro_hint = await id_token_for(env, taro, rp)
        await portal_login(browser)
        hint = await id_token_for(env, browser, rp)

        # A plain GET (what an <img src> on any page sends): the question, nothing ended, no cookie touched.
        q = await browser.get("/oauth/logout")
        assert q.status_code == 200 and "ログアウトしますか" in q.text and "山田 花子" in q.text
        assert q.headers["x-frame-options"] == "DENY" and "tt_session" not in q.headers.get("set-cookie", "")
        assert await logged_in(browser)
        assert "Log out?" in (await browser.get("/oauth/logout", params={"lang": "en"})).text
        assert "ログアウトしますか" in (await browser.get("/oauth/logout", params={"lang": "ja"})).text
        # The header the gateway sets after the answer cannot come from the client; a POST like an RP's: asked too.
        r = await browser.get("/oauth/logout", headers={"X-TownTip-Logout-Confirmed": "1"})
        assert r.status_code == 200 and "ログアウトしますか" in r.text and await logged_in(browser)
        r = await browser.post("/oauth/logout", data={"state": "s"})
        assert r.status_code == 200 and "ログアウトしますか" in r.text and await logged_in(browser)

        # A hint that is an ID token of this provider, but of another person: asked too (it is not her session).
        r = await browser.get("/oauth/logout", params={"id_token_hint": taro_hint})
        assert r.status_code == 200 and question_fields(r)["id_token_hint"] == taro_hint
        assert await logged_in(browser) and await logged_in(taro)

        # Refusals the specification prescribes stay refusals, before any question: no redirect, nothing ended.
        head, body, sig = hint.split(".")
        tampered = f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{sig}"
        for params in ({"id_token_hint": tampered}, {"id_token_hint": "not-a-jwt"},
                       {"client_id": env.client_id, "post_logout_redirect_uri": "https://evil.example/"},
                       {"id_token_hint": hint, "client_id": "someone-else"}):
            r = await browser.get("/oauth/logout", params=params)
            assert r.status_code == 400 and "location" not in r.headers, (params, r.text)
            assert r.json()["error"] == "invalid_request"
        assert await logged_in(browser)

        # The question carries the request's parameters to its answer.
        q = await browser.get("/oauth/logout", params={"client_id": env.client_id,
                                                       "post_logout_redirect_uri": RP_LOGOUT, "state": "s2"})
        fields = question_fields(q)
        assert {k: v for k, v in fields.items() if k != "csrf"} == {
            "client_id": env.client_id, "post_logout_redirect_uri": RP_LOGOUT, "state": "s2"}

        # The answer without its CSRF token, with a forged one, or sent from another site: refused, nothing ended.
        answer = {**fields, "confirm": "yes"}
        for data, headers in (({k: v for k, v in answer.items() if k != "csrf"}, {}),
                              ({**answer, "csrf": "0" * 64}, {}),
                              (answer, {"Origin": "https://evil.example"})):
            r = await browser.post("/oauth/logout", data=data, headers=headers)
            assert r.status_code == 403 and "別のサイトから送られました" in r.text, r.text[-800:]
            assert "location" not in r.headers and "tt_session" not in r.headers.get("set-cookie", "")
            assert await logged_in(browser)

        # The answer: logged out, and back to the client's registered URI with its state.
        r = await browser.post("/oauth/logout", data=answer)
        assert r.status_code == 302 and r.headers["location"] == f"{RP_LOGOUT}?state=s2", r.text
        assert not await logged_in(browser) and await logged_in(taro)

        # Another person's hint, answered yes: this session ends (§2: "the OP MUST log out the End-User").
        r = await taro.get("/oauth/logout", params={"id_token_hint": hint})
        assert r.status_code == 200 and await logged_in(taro)
        r = await taro.post("/oauth/logout", data={**question_fields(r), "confirm": "yes"})
        assert r.status_code == 303 and r.headers["location"] == "/?logged_out=1" and not await logged_in(taro)

        # Nobody logged in: nothing to ask about.
        r = await browser.get("/oauth/logout")
        assert r.status_code == 303 and r.headers["location"] == "/?logged_out=1"


async def test_logout_with_an_expired_hint_of_the_person_needs_no_question(env):
    """§4: the OP SHOULD accept an ID token as hint even when its exp has passed (it names the person)."""
    import time as _time

    from identity import keys

    async with env.browser() as browser, env.rp() as rp:
        await portal_login(browser)
        hint = await id_token_for(env, browser, rp)
        claims = jwt.decode(hint, KeySet.import_key_set((await browser.get("/oauth/jwks")).json())).claims
        async with env.identity.sessions() as s:
            own = await keys.active_key(s)
        now = int(_time.time())
        expired = jwt.encode({"alg": "RS256", "kid": own.kid}, {**claims, "iat": now - 7200, "exp": now - 3600},
                             own.key, ["RS256"])
        r = await browser.get("/oauth/logout", params={"id_token_hint": expired,
                                                       "post_logout_redirect_uri": RP_LOGOUT})
        assert r.status_code == 302 and r.headers["location"] == RP_LOGOUT
        assert not await logged_in(browser)
