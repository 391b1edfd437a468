"""The refresh grant (batched transactions, authlib on the event loop: identity/oidc.py, OidcService.refresh), driven by
authlib's httpx client through the real gateway and identity service over a real nats-server, on SQLite and
PostgreSQL: rotation on each use, a reused token revokes its family, another client's token, a wrong secret, a
wider scope, an expired token, a public client, and two uses of one token at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any

from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from identity import keys
from identity.accounts import digest
from identity.models import oauth_refresh_tokens as rt
from identity.oidc import OidcService
from tests.identity import test_oidc_flow
from tests.identity.test_oidc_flow import BASE, RP_CB, Env, authorize, metadata, portal_login
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import identity as c

env = test_oidc_flow.env  # the same fixture: identity service, gateway app, a confidential client, one user


async def first_tokens(e: Env, rp: AsyncOAuth2Client) -> dict[str, Any]:
    async with e.browser() as browser:
        await portal_login(browser)
        r, verifier, _ = await authorize(e, browser, rp)
        assert r.status_code == 302, r.text
        return await rp.fetch_token((await metadata(e))["token_endpoint"], authorization_response=r.headers["location"],
                                    code_verifier=verifier)


async def family(e: Env, refresh_token: str) -> list[Any]:
    """Every row of the token's family, oldest first."""
    async with e.identity.sessions() as s:
        fam = (await s.execute(select(rt.c.family_id).where(rt.c.token_hash == digest(refresh_token)))).scalar_one()
        return list((await s.execute(select(rt).where(rt.c.family_id == fam).order_by(rt.c.issued_at))).all())


async def post_refresh(e: Env, token: str, auth: tuple[str, str] | None = None, **form: str) -> Any:
    async with e.browser() as b:
        return await b.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token, **form},
                            auth=auth)


async def test_each_refresh_rotates_the_token_and_signs_a_fresh_access_token(env):
    meta = await metadata(env)
    async with env.rp() as rp:
        first = await first_tokens(env, rp)
        async with env.browser() as b:
            jwks = KeySet.import_key_set((await b.get("/oauth/jwks")).json())
        sub = jwt.decode(first["access_token"], jwks, algorithms=["ES256"]).claims["sub"]
        current, seen = first, {first["refresh_token"]}
        for _ in range(3):
            new = await rp.refresh_token(meta["token_endpoint"], refresh_token=current["refresh_token"])
            assert new["refresh_token"] not in seen and new["token_type"].lower() == "bearer"
            assert new["expires_in"] == 600 and new["scope"] == "openid profile email"
            decoded = jwt.decode(new["access_token"], jwks, algorithms=["ES256"])
            assert decoded.header["typ"] == "at+jwt" and decoded.header["kid"] == jwks.keys[0].kid
            claims = decoded.claims
            assert claims["sub"] == sub and claims["iss"] == BASE and claims["aud"] == env.client_id
            assert claims["handle"] == "hanako@tsuru"
            info = (await rp.get(meta["userinfo_endpoint"])).json()
            assert info["sub"] == sub
            seen.add(new["refresh_token"])
            current = new
    rows = await family(env, first["refresh_token"])
    assert len(rows) == 4 and len({r.family_id for r in rows}) == 1 and len({r.auth_time for r in rows}) == 1
    assert [r.used_at is not None for r in rows] == [True, True, True, False]
    assert all(r.revoked_at is None for r in rows)


async def test_a_reused_refresh_token_revokes_its_family(env):
    meta = await metadata(env)
    auth = (env.client_id, env.client_secret)
    async with env.rp() as rp:
        t0 = await first_tokens(env, rp)
        t1 = await rp.refresh_token(meta["token_endpoint"], refresh_token=t0["refresh_token"])
        t2 = await rp.refresh_token(meta["token_endpoint"], refresh_token=t1["refresh_token"])
    reuse = await post_refresh(env, t0["refresh_token"], auth)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert reuse.headers["cache-control"] == "no-store"
    assert all(r.revoked_at is not None for r in await family(env, t0["refresh_token"]))
    newest = await post_refresh(env, t2["refresh_token"], auth)
    assert newest.status_code == 400 and newest.json()["error"] == "invalid_grant"


async def test_refusals_by_client_secret_or_scope_change_nothing(env):
    other = await env.admin(c.EP_CLIENT_ADD, c.ClientAddIn(client_id="rp-other", redirect_uris=[RP_CB]))
    async with env.rp() as rp:
        t0 = await first_tokens(env, rp)
    before = await family(env, t0["refresh_token"])
    token = t0["refresh_token"]

    # authenticated, not its token
    theirs = await post_refresh(env, token, (other["client_id"], other["client_secret"]))
    assert theirs.status_code == 400 and theirs.json()["error"] == "invalid_grant"
    wrong_secret = await post_refresh(env, token, (env.client_id, "not-the-secret"))
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    no_auth = await post_refresh(env, token)
    assert no_auth.status_code in (400, 401) and no_auth.json()["error"] == "invalid_client"
    unknown = await post_refresh(env, token, ("nobody", "x"))
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    wider = await post_refresh(env, token, (env.client_id, env.client_secret), scope="openid profile email phone")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    missing = await post_refresh(env, "", (env.client_id, env.client_secret))
    assert missing.status_code == 400 and missing.json()["error"] in ("invalid_request", "invalid_grant")
    unknown_token = await post_refresh(env, "no-such-token", (env.client_id, env.client_secret))
    assert unknown_token.status_code == 400 and unknown_token.json()["error"] == "invalid_grant"
    assert await family(env, token) == before  # nothing changed

    # The rightful client still refreshes it, with a narrower scope if it asks.
    ok = await post_refresh(env, token, (env.client_id, env.client_secret), scope="openid")
    assert ok.status_code == 200 and ok.json()["scope"] == "openid"
    rows = await family(env, token)
    assert len(rows) == 2 and rows[0].used_at is not None and rows[1].scope == "openid"


async def test_an_expired_refresh_token_is_refused_and_its_family_revoked(env):
    async with env.rp() as rp:
        t0 = await first_tokens(env, rp)
    async with env.identity.sessions() as s, s.begin():
        await s.execute(update(rt).where(rt.c.token_hash == digest(t0["refresh_token"]))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    r = await post_refresh(env, t0["refresh_token"], (env.client_id, env.client_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    rows = await family(env, t0["refresh_token"])
    assert len(rows) == 1 and rows[0].used_at is None and rows[0].revoked_at is not None


async def test_a_public_client_refreshes_with_its_client_id_alone(env):
    await env.admin(c.EP_CLIENT_ADD, c.ClientAddIn(client_id="rp-spa", redirect_uris=[RP_CB], public=True))
    meta = await metadata(env)
    async with env.rp(client_id="rp-spa", client_secret=None, token_endpoint_auth_method="none") as rp:
        t0 = await first_tokens(env, rp)
        t1 = await rp.refresh_token(meta["token_endpoint"], refresh_token=t0["refresh_token"])
        assert t1["refresh_token"] != t0["refresh_token"]
    # A secret it does not have, or the confidential client's token: refused.
    async with env.browser() as b:
        r = await b.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": t1["refresh_token"],
                                               "client_id": "rp-spa", "client_secret": "guess"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = await b.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": t0["refresh_token"],
                                               "client_id": "rp-spa"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # reused: the family is revoked
    assert all(row.revoked_at is not None for row in await family(env, t0["refresh_token"]))


async def test_one_token_used_twice_at_once_gives_one_new_token_then_revokes_the_family(env):
    auth = (env.client_id, env.client_secret)
    async with env.rp() as rp:
        t0 = await first_tokens(env, rp)
    a, b = await asyncio.gather(post_refresh(env, t0["refresh_token"], auth),
                                post_refresh(env, t0["refresh_token"], auth))
    assert sorted([a.status_code, b.status_code]) == [200, 400]
    winner = a if a.status_code == 200 else b
    after = await post_refresh(env, winner.json()["refresh_token"], auth)
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    rows = await family(env, t0["refresh_token"])
    assert len(rows) == 2 and all(r.revoked_at is not None for r in rows)


async def test_after_a_key_rotation_refreshes_sign_with_the_new_key(env):
    meta = await metadata(env)
    async with env.rp() as rp:
        t0 = await first_tokens(env, rp)
        t1 = await rp.refresh_token(meta["token_endpoint"], refresh_token=t0["refresh_token"])
        rotated = await env.admin(c.EP_KEY_ROTATE)
        t2 = await rp.refresh_token(meta["token_endpoint"], refresh_token=t1["refresh_token"])
    async with env.browser() as b:
        jwks = KeySet.import_key_set((await b.get("/oauth/jwks")).json())
    old = jwt.decode(t1["access_token"], jwks, algorithms=["ES256"]).header
    new = jwt.decode(t2["access_token"], jwks, algorithms=["ES256"]).header
    assert old["alg"] == new["alg"] == "ES256" and old["kid"] != new["kid"] == rotated["access_token_kid"]
    assert {old["kid"], new["kid"], rotated["kid"]} <= set(rotated["published"])  # the old key still verifies


async def test_a_refused_first_request_of_a_new_node_leaves_no_unpublished_key(env):
    """The node's first key is made by the first token request; if that request is refused and rolls back, the
    key goes with it, and the next refresh signs with a key that the JWKS publishes."""
    refused = await post_refresh(env, "no-such-token", (env.client_id, "not-the-secret"))
    assert refused.status_code == 401
    meta = await metadata(env)
    async with env.rp() as rp:
        t0 = await first_tokens(env, rp)
        t1 = await rp.refresh_token(meta["token_endpoint"], refresh_token=t0["refresh_token"])
    async with env.browser() as b:
        jwks = (await b.get("/oauth/jwks")).json()
    assert sorted(k["alg"] for k in jwks["keys"]) == ["ES256", "RS256"]  # one pair, the one made on use
    decoded = jwt.decode(t1["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert decoded.header["kid"] == next(k["kid"] for k in jwks["keys"] if k["alg"] == "ES256")


async def test_a_revoked_refresh_token_and_its_family_refresh_no_more(env):
    """RFC 7009 with authlib's client: the client revokes its refresh token; the family goes with it. Refusals
    (no or wrong client authentication, the access-token hint) say why and change nothing; another client's token
    or an unknown one is answered 200 and changes nothing."""
    meta = await metadata(env)
    assert meta["revocation_endpoint"] == f"{BASE}/oauth/revoke"
    async with env.rp() as rp:
        t0 = await first_tokens(env, rp)
        t1 = await rp.refresh_token(meta["token_endpoint"], refresh_token=t0["refresh_token"])
    other = await env.admin(c.EP_CLIENT_ADD, c.ClientAddIn(client_id="rp-revoker", redirect_uris=[RP_CB]))
    before = await family(env, t1["refresh_token"])

    async def revoke(auth: tuple[str, str] | None, **form: str) -> Any:
        async with env.browser() as b:
            return await b.post("/oauth/revoke", data=form, auth=auth)

    mine = (env.client_id, env.client_secret)
    for auth, form, status, error in (
        (None, {"token": t1["refresh_token"]}, 401, "invalid_client"),
        ((env.client_id, "not-the-secret"), {"token": t1["refresh_token"]}, 401, "invalid_client"),
        (mine, {}, 400, "invalid_request"),
        (mine, {"token": t1["access_token"], "token_type_hint": "access_token"}, 400, "unsupported_token_type"),
    ):
        r = await revoke(auth, **form)
        assert r.status_code == status and r.json()["error"] == error, (form, r.text)
    for auth, token in (((other["client_id"], other["client_secret"]), t1["refresh_token"]), (mine, "no-such-token")):
        r = await revoke(auth, token=token)
        assert r.status_code == 200, r.text
    assert await family(env, t1["refresh_token"]) == before  # nothing changed so far

    async with env.rp() as rp:  # authlib's own revocation call
        r = await rp.revoke_token(meta["revocation_endpoint"], token=t1["refresh_token"],
                                  token_type_hint="refresh_token")
    assert r.status_code == 200, r.text
    assert all(row.revoked_at is not None for row in await family(env, t1["refresh_token"]))
    again = await post_refresh(env, t1["refresh_token"], mine)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_a_burst_of_refreshes_is_answered_each_as_if_alone(env):
    """Refreshes that arrive together (served as one batch in one transaction: GroupCommit in
    OidcService._serve_refreshes) get what each would get alone: two rightful
    refreshes succeed; of one token presented twice, one use wins and the other revokes the family, the winner's
    new token included; a wrong secret, a wider scope and an unknown token are refused and change nothing."""
    auth = (env.client_id, env.client_secret)
    async with env.rp() as rp:
        ta, tb, tc, td = [(await first_tokens(env, rp))["refresh_token"] for _ in range(4)]
    before_c, before_d = await family(env, tc), await family(env, td)

    def request(token: str, secret: str = auth[1], **form: str) -> c.OidcRequest:
        return refresh_request(token, (auth[0], secret), **form)

    oidc = env.identity.oidc
    batches = oidc.refresh_batches
    counted = (batches.batches, batches.items)
    burst = [request(ta), request(tb), request(tb), request(tc, "not-the-secret"),
             request(td, scope="openid profile email phone"), request("no-such-token")]
    a, b1, b2, c_wrong, d_wider, unknown = await asyncio.gather(*(oidc.token(r) for r in burst))

    assert a.status == 200 and a.body["refresh_token"] and a.body["access_token"]
    assert sorted([b1.status, b2.status]) == [200, 400]
    winner, loser = (b1, b2) if b1.status == 200 else (b2, b1)
    assert loser.body["error"] == "invalid_grant"
    assert c_wrong.status == 401 and c_wrong.body["error"] == "invalid_client"
    assert d_wider.status == 400 and d_wider.body["error"] == "invalid_scope"
    assert unknown.status == 400 and unknown.body["error"] == "invalid_grant"
    assert all(r.headers.get("Cache-Control") == "no-store" for r in (a, b1, b2, c_wrong, d_wider, unknown))
    # the six were one batch: all were waiting before it began
    assert (batches.batches, batches.items) == (counted[0] + 1, counted[1] + 6)

    rows_a = await family(env, ta)
    assert (len(rows_a) == 2 and rows_a[0].used_at is not None
            and rows_a[1].token_hash == digest(a.body["refresh_token"]))
    rows_b = await family(env, tb)
    assert len(rows_b) == 2 and all(r.revoked_at is not None for r in rows_b)  # the winner's new token too
    assert await family(env, tc) == before_c and await family(env, td) == before_d  # refused: nothing changed

    again = await asyncio.gather(post_refresh(env, a.body["refresh_token"], auth),
                                 post_refresh(env, winner.body["refresh_token"], auth),
                                 post_refresh(env, tc, auth), post_refresh(env, td, auth))
    assert [r.status_code for r in again] == [200, 400, 200, 200]
    assert again[1].json()["error"] == "invalid_grant"


async def test_two_identity_processes_given_one_token_at_once_issue_one_new_token(env):
    """Two providers on one database, as two processes of the identity service (each its own engine and batches):
    one token presented to both at once is used once; the other use revokes the family (on PostgreSQL the tokens
    are read FOR UPDATE, on SQLite BEGIN IMMEDIATE holds the write lock), and another token in both batches
    is refreshed by one of them only."""
    svc = env.identity
    schema = svc.settings.resolved_schema()
    engine = db.create_engine(svc.settings.resolved_database_url(), schema=schema)
    try:
        other = OidcService(sessions=db.sessionmaker(engine), node=svc.node, issuer=BASE)
        auth = (env.client_id, env.client_secret)
        async with env.rp() as rp:
            t0 = (await first_tokens(env, rp))["refresh_token"]
        req = refresh_request(t0, auth)
        for _ in range(3):  # the two batches overlap in time in different ways from run to run
            a, b = await asyncio.gather(svc.oidc.token(req), other.token(req))
            assert sorted([a.status, b.status]) == [200, 400], (a, b)
            rows = await family(env, t0)
            assert len(rows) == 2 and all(r.revoked_at is not None for r in rows)  # the new one with the family
            async with env.rp() as rp:
                t0 = (await first_tokens(env, rp))["refresh_token"]
            req.form["refresh_token"] = t0
    finally:
        await engine.dispose()


async def test_a_token_signed_by_a_key_another_process_made_verifies_at_once(env):
    """userinfo keeps the published key set for up to 10 s, but a token naming a kid it lacks makes it read the
    keys again: a key made by another identity process (a rotation there) verifies here at once; a kid that no
    key has is refused."""
    svc = env.identity
    engine = db.create_engine(svc.settings.resolved_database_url(), schema=svc.settings.resolved_schema())
    try:
        other = OidcService(sessions=db.sessionmaker(engine), node=svc.node, issuer=BASE)
        async with env.rp() as rp:
            t0 = await first_tokens(env, rp)
        assert (await userinfo(svc.oidc, t0["access_token"])).status == 200  # this process has read the keys now
        async with other.sessions() as s, s.begin():
            await keys.rotate(s)  # the other process rotates (this one is not told)
        r = await other.token(refresh_request(t0["refresh_token"], (env.client_id, env.client_secret)))
        assert r.status == 200, r.body
        fresh = r.body["access_token"]
        now_published = KeySet.import_key_set({"keys": await published(other)})
        new_kid = jwt.decode(fresh, now_published, algorithms=["ES256"]).header["kid"]
        assert new_kid != jwt.decode(t0["access_token"], now_published, algorithms=["ES256"]).header["kid"]
        assert (await userinfo(svc.oidc, fresh)).status == 200
        header, _, rest = fresh.partition(".")
        forged_header = base64.urlsafe_b64encode(json.dumps(
            {"alg": "ES256", "kid": "no-such-kid", "typ": "at+jwt"}).encode()).rstrip(b"=").decode()
        refused = await userinfo(svc.oidc, f"{forged_header}.{rest}")
        assert refused.status == 401 and refused.body["error"] == "invalid_token"
    finally:
        await engine.dispose()


async def userinfo(oidc: OidcService, access_token: str) -> c.OidcResponse:
    return await oidc.handle(c.OidcRequest(endpoint="userinfo", method="GET", url=f"{BASE}/oauth/userinfo",
                                           headers={"authorization": f"Bearer {access_token}"}))


async def published(oidc: OidcService) -> list[dict[str, Any]]:
    async with oidc.sessions() as s:
        return await keys.published(s)


def refresh_request(token: str, auth: tuple[str, str], **form: str) -> c.OidcRequest:
    """A refresh request as the gateway hands it to the provider (client_secret_basic)."""
    basic = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return c.OidcRequest(endpoint="token", method="POST", url=f"{BASE}/oauth/token",
                         headers={"authorization": basic, "content-type": "application/x-www-form-urlencoded"},
                         form={"grant_type": "refresh_token", "refresh_token": token, **form})
