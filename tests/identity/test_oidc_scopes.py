"""Scopes a standard client asks for (identity/oidc.py): `offline_access` gives a refresh token (OpenID Connect
Core 11) and scopes the provider does not know are ignored (Core 3.1.2.1), not refused with invalid_scope; driven by
authlib's httpx client as a third-party relying party would, through the real gateway and identity service over a
real nats-server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.identity import test_oidc_flow
from tests.identity.test_oidc_flow import RP_CB, authorize, metadata, portal_login
from towntip.kernel.contracts import identity as c

env = test_oidc_flow.env  # identity service, gateway app, a confidential client ("openid profile email"), one user


async def test_discovery_lists_offline_access(env):
    assert "offline_access" in (await metadata(env))["scopes_supported"]


async def test_openid_profile_offline_access_logs_in_and_refreshes(env):
    """What a standard client asks for: a code, tokens with a refresh token granted as offline_access, a refresh."""
    meta = await metadata(env)
    async with env.browser() as browser, env.rp(scope="openid profile offline_access") as rp:
        await portal_login(browser)
        r, verifier, _ = await authorize(env, browser, rp)
        assert r.status_code == 302, r.text
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert "error" not in query and query["code"], query
        token = await rp.fetch_token(meta["token_endpoint"], authorization_response=r.headers["location"],
                                     code_verifier=verifier)
        assert token["scope"].split() == ["openid", "profile", "offline_access"]
        assert token["refresh_token"] and token["id_token"]
        async with env.browser() as b:
            jwks = KeySet.import_key_set((await b.get("/oauth/jwks")).json())
        claims = jwt.decode(token["id_token"], jwks, algorithms=["RS256"]).claims
        assert claims["preferred_username"] == f"hanako@{test_oidc_flow.NODE}" and "email" not in claims
        # authlib's client sends its scope again with the refresh: granted, so accepted
        refreshed = await rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert refreshed["scope"].split() == ["openid", "profile", "offline_access"]
        info = (await rp.get(meta["userinfo_endpoint"])).json()
        assert info["name"] == "山田 花子" and "email" not in info

        # with prompt=consent, as OIDC Core 11 has it: the same (no consent screen: the node's clients are its own)
        r, verifier, _ = await authorize(env, browser, rp, prompt="consent")
        assert r.status_code == 302 and "code=" in r.headers["location"], r.headers.get("location", r.text)
        token = await rp.fetch_token(meta["token_endpoint"], authorization_response=r.headers["location"],
                                     code_verifier=verifier)
        assert "offline_access" in token["scope"].split() and token["refresh_token"]


async def test_unknown_scopes_are_ignored_and_known_limits_still_hold(env):
    meta = await metadata(env)
    async with env.browser() as browser:
        await portal_login(browser)
        async with env.rp(scope="openid email phone urn:example:unknown") as rp:
            r, verifier, _ = await authorize(env, browser, rp)
            assert r.status_code == 302 and "code=" in r.headers["location"], r.headers.get("location", r.text)
            token = await rp.fetch_token(meta["token_endpoint"], authorization_response=r.headers["location"],
                                         code_verifier=verifier)
            assert token["scope"].split() == ["openid", "email"] and token["refresh_token"]
            # a refresh is held to what was granted (RFC 6749 6): an unknown scope there is still refused
            async with env.browser() as b:
                wider = await b.post("/oauth/token", auth=(env.client_id, env.client_secret), data={
                    "grant_type": "refresh_token", "refresh_token": token["refresh_token"],
                    "scope": "openid email phone"})
            assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"

        # a scope the client was not granted (regions: member nodes only) is still refused, not dropped
        async with env.rp(scope=f"openid offline_access {c.REGIONS_SCOPE}") as rp:
            r, _, _ = await authorize(env, browser, rp)
            assert r.status_code == 302, r.text
            query = parse_qs(urlsplit(r.headers["location"]).query)
            assert r.headers["location"].startswith(RP_CB) and query["error"] == ["invalid_scope"]
